import type { Dispatcher } from "../backends/http/client.js";
import { DEFAULT_WATCH_INTERVAL_MS, type GatewayConfig } from "../config/types.js";
import type { Backend, DiscoveredModel } from "../ir/contract.js";
import type { GatewayError } from "../ir/errors.js";
import type { Signal } from "../ir/signal.js";
import type { Event, Request } from "../ir/types.js";
import type { Logger } from "../log.js";
import type { PromptCount } from "../stages/types.js";
import { Attempts, type RouteObserver } from "./attempts.js";
import { type BackendState, BackendStates } from "./backend-state.js";
import type { RecentConversations } from "./conversations.js";
import { DEFAULT_BACKGROUND_RULES, LaneRules } from "./lanes.js";
import { ModelRegistry, type ServedModel, type Target } from "./models.js";
import { type BackendHealth, BackendWatch } from "./watch.js";

export type { BackendHealth, BackendState, RouteObserver, ServedModel };

/**
 * Routing, one job per part: the model registry (profiles, discovery, what a name resolves to),
 * the backends' state (queues, slot counts, breakers) and the attempt runner (stages, places,
 * the backend, moving on to the next target while nothing has reached the client).
 */
export class Router {
  private readonly registry: ModelRegistry;
  private readonly states: BackendStates;
  private readonly attempts: Attempts;
  private readonly watch: BackendWatch;

  /** `previous`: the router a reload replaces; a backend configured alike keeps its queue and breaker. */
  constructor(
    private readonly config: GatewayConfig,
    dispatcher: Dispatcher,
    log: Logger,
    previous?: Router,
  ) {
    this.registry = new ModelRegistry(config, dispatcher, log);
    this.states = new BackendStates(
      config,
      this.registry.backends,
      log,
      previous && { states: previous.states, config: previous.config },
    );
    this.watch = new BackendWatch(
      this.registry,
      this.states,
      this.registry.backends.keys(),
      config.server.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS,
      log,
      previous?.watch,
    );
    this.attempts = new Attempts(
      (model) => this.resolve(model),
      this.states,
      new LaneRules(config.backgroundLane ?? DEFAULT_BACKGROUND_RULES),
    );
  }

  get backends(): ReadonlyMap<string, Backend> {
    return this.registry.backends;
  }

  /** Backends that answered discovery, and what they said. */
  get discovered(): ReadonlyMap<string, DiscoveredModel[] | GatewayError> {
    return this.registry.discovered;
  }

  /** Asks every backend what it has (see ModelRegistry.discover). */
  discover(): Promise<void> {
    return this.registry.discover();
  }

  /**
   * Watches the backends from now on (after the first discovery): each is asked again on the
   * period and when it starts or stops answering (see BackendWatch).
   */
  startWatching(): void {
    this.watch.start();
  }

  /** Looks at one backend again now (what it lists, whether it answers). */
  recheck(name: string): Promise<void> {
    return this.watch.check(name);
  }

  /** Stops watching (its timers). */
  close(): void {
    this.watch.close();
  }

  /** A backend's health: up, down or degraded, since when, why. */
  health(name: string): BackendHealth | undefined {
    return this.watch.health(name);
  }

  /** Every model a client may name. */
  models(): ServedModel[] {
    return this.registry.models();
  }

  /** The name a model is served under, for the metrics (see ModelRegistry.servedAs). */
  servedAs(model: string): string | undefined {
    return this.registry.servedAs(model);
  }

  /** The targets for a model name, in the order they are tried: replicas least busy first. */
  resolve(model: string): readonly Target[] {
    return this.registry.resolve(model, (t) => this.states.load(t.profile.backend.name) + t.inFlight * 1e-9);
  }

  /** The prompt tokens a request costs on the model it names, counted as it would be sent. */
  countTokens(req: Request, log: Logger): Promise<PromptCount> {
    return this.attempts.countTokens(req, log);
  }

  /** The one path from an IR request to an IR event stream (see Attempts.stream). */
  stream(req: Request, signal: Signal, log: Logger, observer?: RouteObserver): AsyncGenerator<Event[]> {
    return this.attempts.stream(req, signal, log, observer);
  }

  /** The last conversations a backend answered, the least recent first (see RecentConversations). */
  recentConversations(backend: string): ReturnType<RecentConversations["list"]> {
    return this.attempts.recent.get(backend)?.list() ?? [];
  }

  /** What a backend's queue and breaker say now: for /health and /metrics. */
  resilience(name: string): BackendState | undefined {
    return this.states.get(name);
  }
}
