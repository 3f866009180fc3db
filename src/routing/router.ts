import type { Dispatcher } from "../backends/http.js";
import { createBackend, kindOf } from "../backends/registry.js";
import type { Backend, ContextInfo, DiscoveredModel, ModelProfile, Timeouts } from "../ir/contract.js";
import type { BackendConfig, GatewayConfig, TargetConfig } from "../config/types.js";
import { countPrompt } from "../context/count.js";
import { chooseWindow } from "../context/window.js";
import { GatewayError, toGatewayError } from "../ir/errors.js";
import { Abort, type Signal } from "../ir/signal.js";
import type { Event, Request } from "../ir/types.js";
import type { Logger } from "../log.js";
import { context } from "../stages/context.js";
import { requestStages, responseStages } from "../stages/pipeline.js";
import type { PromptCount, StageContext } from "../stages/types.js";
import { Breaker, DEFAULT_BREAKER, isBackendFailure } from "./breaker.js";
import { DEFAULT_BACKGROUND_RULES, LaneRules } from "./lanes.js";
import { DEFAULT_MAX_QUEUE, type Lane, type Slot, SlotQueue } from "./queue.js";
import { Attempt, mergeTimeouts } from "./timeouts.js";

export interface ServedModel {
  id: string;
  backend: string;
  model: string;
  /** The window requests are kept inside: what clients are told. */
  contextWindow?: number;
  source: "config" | "discovered";
  /** Where the window came from: served, configured, trained, why. */
  context?: ContextInfo;
  /** Ollama: the num_ctx sent with every request. */
  numCtx?: number;
}

export interface RouteObserver {
  /** Called for each note a stage made (dropped fields and the like). */
  note?(what: string): void;
  /** Called for each thing a response stage did (a rescued tool call, a repair). */
  count?(what: string, n?: number): void;
  /** Called when routing moves on from a failed target. */
  switched?(from: ModelProfile, reason: GatewayError): void;
  /** Called when the request has to wait for a place at a busy backend. */
  queued?(backend: string, lane: Lane, ahead: number): void;
  /** Called when the request got its place at a backend (waitedMs 0 when one was free). */
  started?(backend: string, lane: Lane, waitedMs: number): void;
}

/** A backend's queue and circuit breaker, and whether its slot count is still to be asked. */
export interface BackendState {
  queue: SlotQueue;
  breaker: Breaker;
  probe?: { known: boolean; nextAt: number; running?: Promise<void> | undefined };
}

interface Entry {
  alias: string;
  targets: Target[];
  source: "config" | "discovered";
}

interface Target {
  profile: ModelProfile;
  inFlight: number;
}

/**
 * Resolves the model a client names to the targets that serve it: its replicas (least busy
 * first), then its fallback chain. Runs the request stages and the backend for one target, and
 * moves to the next only while nothing has reached the client.
 */
export class Router {
  readonly backends = new Map<string, Backend>();
  private readonly entries = new Map<string, Entry>();
  private readonly fallbacks: Record<string, string[]>;
  /** Backends that answered discovery, and what they said. */
  readonly discovered = new Map<string, DiscoveredModel[] | GatewayError>();
  // resilience (queues, breakers, time limits): set up by setUpResilience
  private readonly backendState = new Map<string, BackendState>();
  private readonly breakers = new Map<string, Breaker>();
  private readonly backendTimeouts = new Map<string, Timeouts>();
  private timeouts: Partial<Timeouts> | undefined;
  private lanes = new LaneRules();
  /** The configuration each configured profile came from (for re-resolving its window). */
  private readonly configOf = new WeakMap<ModelProfile, TargetConfig>();
  private readonly backendConfigs = new Map<string, BackendConfig>();

  constructor(
    config: GatewayConfig,
    dispatcher: Dispatcher,
    private readonly log: Logger,
  ) {
    for (const b of config.backends) {
      this.backendConfigs.set(b.name, b);
      this.backends.set(b.name, createBackend(b, dispatcher));
    }
    for (const m of config.models) {
      this.entries.set(m.alias, {
        alias: m.alias,
        source: "config",
        targets: m.targets.map((t) => ({ profile: this.profileOf(m.alias, t), inFlight: 0 })),
      });
    }
    this.fallbacks = config.fallbacks;
    this.discoverOn = new Set(config.backends.filter((b) => b.discover).map((b) => b.name));
    this.setUpResilience(config);
  }

  private readonly discoverOn: Set<string>;

  private profileOf(alias: string, t: TargetConfig): ModelProfile {
    const backend = this.backends.get(t.backend)!;
    const p: ModelProfile = {
      alias,
      backend,
      model: t.model,
      dropParams: t.dropParams ?? true,
    };
    if (t.contextWindow !== undefined) p.contextWindow = t.contextWindow;
    if (t.maxOutputTokens !== undefined) p.maxOutputTokens = t.maxOutputTokens;
    if (t.supportsTools !== undefined) p.supportsTools = t.supportsTools;
    if (t.toolMode !== undefined) p.toolMode = t.toolMode;
    if (t.toolFormat !== undefined) p.toolFormat = t.toolFormat;
    if (t.strictAlternation !== undefined) p.strictAlternation = t.strictAlternation;
    if (t.keepAlive !== undefined) p.keepAlive = t.keepAlive;
    if (t.fitPolicy !== undefined) p.fitPolicy = t.fitPolicy;
    if (t.reserveOutputTokens !== undefined) p.reserveOutputTokens = t.reserveOutputTokens;
    const memory = this.backendConfigs.get(t.backend)?.memoryBytes;
    if (memory !== undefined) p.memoryBytes = memory;
    if (t.temperature !== undefined) p.temperature = t.temperature;
    if (t.topP !== undefined) p.topP = t.topP;
    if (t.topK !== undefined) p.topK = t.topK;
    if (t.extraBody !== undefined) p.extraBody = t.extraBody;
    if (t.forceTool !== undefined) p.forceTool = t.forceTool;
    this.configOf.set(p, t);
    // until discovery says more: the configured window, and for Ollama a num_ctx all the same
    this.applyWindow(p, undefined);
    return p;
  }

  /** Sets a profile's window (and Ollama's num_ctx) from its config and what discovery found. */
  private applyWindow(p: ModelProfile, d: DiscoveredModel | undefined): void {
    const t = this.configOf.get(p);
    const choice = chooseWindow({
      ...(t?.contextWindow !== undefined ? { configuredWindow: t.contextWindow } : {}),
      ...(t?.numCtx !== undefined ? { configuredNumCtx: t.numCtx } : {}),
      ...(p.memoryBytes !== undefined ? { memoryBytes: p.memoryBytes } : {}),
      ...(d ? { discovered: d } : {}),
      perRequest: d?.windowPerRequest ?? kindOf(p.backend.kind)?.windowPerRequest ?? false,
    });
    if (choice.window !== undefined) p.contextWindow = choice.window;
    else delete p.contextWindow;
    if (choice.numCtx !== undefined) p.numCtx = choice.numCtx;
    else delete p.numCtx;
    p.context = choice.info;
  }

  /** Says, once discovery is done, which window each model got and why, and what disagrees. */
  private reportWindow(p: ModelProfile): void {
    const info = p.context;
    if (!info) return;
    const where = { model: p.alias, backend: p.backend.name, window: p.contextWindow };
    if (p.numCtx !== undefined)
      this.log.info({ ...where, num_ctx: p.numCtx, why: info.why }, "num_ctx chosen");
    else this.log.debug({ ...where, why: info.why }, "context window");
    for (const w of info.warnings) this.log.warn(where, w);
  }

  /**
   * Asks every backend what it has. Configured profiles learn what the server says (context,
   * tool support); backends with discovery on also serve their models under their own names.
   */
  async discover(): Promise<void> {
    await Promise.all(
      [...this.backends.values()].map(async (backend) => {
        let models: DiscoveredModel[];
        try {
          models = await backend.discover();
        } catch (e) {
          const err = toGatewayError(e);
          this.discovered.set(backend.name, err);
          this.log.warn({ backend: backend.name, err: err.message }, "backend did not answer discovery");
          return;
        }
        this.discovered.set(backend.name, models);
        const byName = new Map(models.map((m) => [m.name, m]));
        for (const entry of this.entries.values()) {
          for (const t of entry.targets) {
            if (t.profile.backend !== backend) continue;
            const d = byName.get(t.profile.model) ?? byName.get(`${t.profile.model}:latest`);
            if (!d) continue;
            if (t.profile.supportsTools === undefined && d.tools !== undefined)
              t.profile.supportsTools = d.tools;
            this.applyWindow(t.profile, d);
            this.reportWindow(t.profile);
          }
        }
        if (!this.discoverOn.has(backend.name)) return;
        for (const d of models) {
          if (this.entries.has(d.name)) continue;
          const profile: ModelProfile = {
            alias: d.name,
            backend,
            model: d.name,
            dropParams: true,
          };
          const memory = this.backendConfigs.get(backend.name)?.memoryBytes;
          if (memory !== undefined) profile.memoryBytes = memory;
          this.applyWindow(profile, d);
          this.reportWindow(profile);
          if (d.tools !== undefined) profile.supportsTools = d.tools;
          this.entries.set(d.name, {
            alias: d.name,
            source: "discovered",
            targets: [{ profile, inFlight: 0 }],
          });
        }
      }),
    );
  }

  /** Every model a client may name. */
  models(): ServedModel[] {
    return [...this.entries.values()].map((e) => {
      const p = e.targets[0]!.profile;
      const m: ServedModel = { id: e.alias, backend: p.backend.name, model: p.model, source: e.source };
      if (p.contextWindow !== undefined) m.contextWindow = p.contextWindow;
      if (p.context) m.context = p.context;
      if (p.numCtx !== undefined) m.numCtx = p.numCtx;
      return m;
    });
  }

  /**
   * The prompt tokens a request costs on the model it names (its first target), counted as it
   * would be sent: after the request stages that reshape it, by the server where it can count.
   */
  async countTokens(req: Request, log: Logger): Promise<PromptCount> {
    const { profile } = this.resolve(req.model)[0]!;
    const ctx: StageContext = { profile, log, notes: [], client: req, signal: new Abort() };
    let shaped = req;
    for (const stage of requestStages) {
      if (stage === context) break;
      shaped = await stage(shaped, ctx);
    }
    return countPrompt(shaped, profile, true, log);
  }

  /** The targets for a model name, in the order they are tried. */
  resolve(model: string): readonly Target[] {
    const entry = this.entries.get(model) ?? this.entries.get("*");
    if (!entry) {
      const known = [...this.entries.keys()];
      throw new GatewayError(
        "not_found",
        `model '${model}' is not served here${known.length ? ` (served: ${known.slice(0, 20).join(", ")})` : "; no models are configured — see /health"}`,
        { param: "model", code: "model_not_found", retryable: false },
      );
    }
    // one target and no fallbacks (most configs): the entry's own list, read only by the callers
    if (entry.targets.length < 2 && !this.fallbacks[entry.alias]?.length) return entry.targets;
    const chain = [entry];
    const seen = new Set([entry.alias]);
    const queue = [...(this.fallbacks[entry.alias] ?? [])];
    while (queue.length) {
      const alias = queue.shift()!;
      if (seen.has(alias)) continue;
      seen.add(alias);
      const fb = this.entries.get(alias);
      if (!fb) continue;
      chain.push(fb);
      queue.push(...(this.fallbacks[alias] ?? []));
    }
    // Replicas: the least busy first (running and waiting per place at their backend, one whose
    // circuit is open last); ties keep config order.
    return chain.flatMap((e) =>
      e.targets.length < 2 ? e.targets : [...e.targets].sort((a, b) => this.busy(a) - this.busy(b)),
    );
  }

  private busy(t: Target): number {
    const state = this.backendState.get(t.profile.backend.name);
    if (!state) return t.inFlight;
    return (state.breaker.state === "open" ? 1e9 : 0) + state.queue.load + t.inFlight * 1e-9;
  }

  /**
   * A model that answered it does not support tools is switched to emulated tools for the rest
   * of the process, and the request is tried once more; the refusal never reaches the client.
   */
  private learnToolRefusal(
    err: GatewayError,
    profile: ModelProfile,
    ctx: StageContext,
    log: Logger,
  ): boolean {
    if (err.code !== "tools_unsupported" || ctx.toolMode === "emulate" || ctx.toolMode === "strip")
      return false;
    profile.supportsTools = false;
    if (profile.toolMode === "native" || profile.toolMode === "rescue") profile.toolMode = "emulate";
    log.warn(
      { model: profile.alias, backend: profile.backend.name, reason: err.message },
      "the model refused tools; emulating them from now on",
    );
    ctx.count?.("learned_emulate");
    return true;
  }

  /**
   * The one path from an IR request to an IR event stream: for each target in turn, its circuit
   * breaker, the request stages, a place in its backend's queue, then the backend under the
   * watchdog of the profile's time limits. A target that fails before its first event is left for
   * the next (a replica, then the fallback chain), each switch logged with its reason; once an
   * event went out nothing is retried.
   */
  async *stream(
    req: Request,
    signal: Signal,
    log: Logger,
    observer: RouteObserver = {},
  ): AsyncGenerator<Event[]> {
    const targets = this.resolve(req.model);
    const lane = this.lanes.laneOf(req);
    let lastError: GatewayError | undefined;
    /** The place held for the same target tried again (a learned tool refusal): it keeps its turn. */
    let kept: Slot | undefined;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      const { profile } = target;
      const backend = profile.backend;
      const next = targets[i + 1];
      const breaker = this.breakers.get(backend.name) ?? this.addBackendState(backend).breaker;
      let slot = kept;
      kept = undefined;
      // An open circuit is skipped while another target can serve; the last one left is tried
      // all the same (an error either way, and an answer if the backend has recovered).
      let admission = breaker.admit();
      if (admission instanceof GatewayError) {
        lastError = admission;
        if (next) {
          slot?.release();
          this.switching(profile, next.profile, admission, log, observer);
          continue;
        }
        admission = "ok";
      }
      let heard = false;
      let counted = false;
      let attempt: Attempt | undefined;
      let iterator: AsyncIterator<Event[]> | undefined;
      try {
        const ctx: StageContext = { profile, log, notes: [], client: req, signal };
        if (observer.count) ctx.count = observer.count;
        let shaped = req;
        // a stage that had nothing to wait for is not awaited: each await is a turn of the event loop
        for (const stage of requestStages) {
          const r = stage(shaped, ctx);
          shaped = r instanceof Promise ? await r : r;
        }
        if (ctx.notes.length) {
          log.debug({ notes: ctx.notes, backend: backend.name }, "request reshaped for the backend");
          for (const n of ctx.notes) observer.note?.(n.slice(0, n.indexOf(":")));
        }
        try {
          slot ??=
            this.placeNow(backend, lane, observer) ??
            (await this.place(backend, lane, signal, log, observer));
        } catch (e) {
          const err = toGatewayError(e);
          if (signal.aborted || !next) throw err;
          lastError = err;
          this.switching(profile, next.profile, err, log, observer);
          continue;
        }
        target.inFlight++;
        counted = true;
        attempt = new Attempt(signal, this.timeoutsOf(profile), backend.name, log);
        let events = attempt.watch(backend.send(shaped, { profile, signal: attempt.signal, log }));
        for (const stage of responseStages) events = stage(events, shaped, ctx);
        iterator = events[Symbol.asyncIterator]();
        let first: IteratorResult<Event[]>;
        try {
          first = await iterator.next();
        } catch (e) {
          const err = toGatewayError(e);
          if (signal.aborted) throw err; // the client left: no verdict on the backend
          lastError = err;
          heard = true;
          if (isBackendFailure(err)) breaker.failure(err);
          else if (err.upstreamStatus !== undefined)
            breaker.success(); // it answered: it is up
          else heard = false;
          if (this.learnToolRefusal(err, profile, ctx, log)) {
            i--; // the same target again, now with emulated tools, in the same place
            kept = slot;
            continue;
          }
          if (!err.retryable || !next) throw err;
          this.switching(profile, next.profile, err, log, observer);
          continue;
        }
        heard = true;
        breaker.success();
        if (first.done) return;
        yield first.value;
        for (;;) {
          let r: IteratorResult<Event[]>;
          try {
            r = await iterator.next();
          } catch (e) {
            const err = toGatewayError(e);
            if (!signal.aborted && isBackendFailure(err)) {
              breaker.failure(err);
              breaker.suspect = true;
              log.warn(
                { backend: backend.name, model: profile.alias, reason: err.message },
                "backend broke off an answer; marked suspect",
              );
            }
            throw err;
          }
          if (r.done) {
            breaker.suspect = false;
            return;
          }
          yield r.value;
        }
      } finally {
        if (!heard) breaker.settle(admission);
        // an attempt ended early (client gone, error, timeout) aborts its backend request first
        attempt?.dispose();
        await iterator?.return?.().catch(() => undefined);
        if (counted) target.inFlight--;
        if (slot && kept !== slot) slot.release();
      }
    }
    throw lastError ?? new GatewayError("api_error", `no target could serve '${req.model}'`);
  }

  /** Logs and counts a move from a failed target to the next. */
  private switching(
    from: ModelProfile,
    to: ModelProfile,
    reason: GatewayError,
    log: Logger,
    observer: RouteObserver,
  ): void {
    log.warn(
      {
        from: `${from.alias}@${from.backend.name}`,
        to: `${to.alias}@${to.backend.name}`,
        reason: reason.message,
        kind: reason.kind,
      },
      "target failed before answering; trying the next",
    );
    observer.switched?.(from, reason);
  }

  /** A place at the backend: at once, or after waiting in the queue (logged, and told to the observer). */
  private async place(
    backend: Backend,
    lane: Lane,
    signal: Signal,
    log: Logger,
    observer: RouteObserver,
  ): Promise<Slot> {
    const queue = await this.queueOf(backend);
    let waited = false;
    const slot = await queue.acquire(lane, signal, {
      onWait: (ahead) => {
        waited = true;
        log.info(
          { backend: backend.name, lane, ahead, running: queue.active, limit: queue.limit },
          "waiting for a place at the backend",
        );
        observer.queued?.(backend.name, lane, ahead);
      },
    });
    if (waited)
      log.info(
        { backend: backend.name, lane, waitedMs: Math.round(slot.waitedMs) },
        "got a place at the backend after waiting",
      );
    observer.started?.(backend.name, lane, slot.waitedMs);
    return slot;
  }

  /** A place at once, without a turn of the event loop, when one is free and no one waits. */
  private placeNow(backend: Backend, lane: Lane, observer: RouteObserver): Slot | undefined {
    const state = this.backendState.get(backend.name);
    const probe = state?.probe;
    // a slot count still to be asked goes the long way (place, queueOf)
    if (!state || (probe && !probe.known && performance.now() >= probe.nextAt)) return undefined;
    const slot = state.queue.tryAcquire();
    if (slot) observer.started?.(backend.name, lane, 0);
    return slot;
  }

  /** A backend's queue; for a llama.cpp server, its slot count is asked first (once it answers). */
  private async queueOf(backend: Backend): Promise<SlotQueue> {
    const state = this.backendState.get(backend.name) ?? this.addBackendState(backend);
    const probe = state.probe;
    if (probe && !probe.known && performance.now() >= probe.nextAt) {
      probe.running ??= backend.askConcurrency!()
        .then(
          (n) => {
            probe.known = true;
            if (n === undefined) return;
            state.queue.limit = n;
            this.log.info(
              { backend: backend.name, slots: n },
              "the backend serves this many requests at once",
            );
          },
          (e: unknown) => {
            probe.nextAt = performance.now() + 30_000;
            this.log.debug(
              { backend: backend.name, err: toGatewayError(e).message },
              "could not ask the backend for its slots; 1 at a time until it answers",
            );
          },
        )
        .finally(() => {
          probe.running = undefined;
        });
      await probe.running;
    }
    return state.queue;
  }

  private timeoutsOf(profile: ModelProfile): Timeouts {
    return profile.timeouts ?? this.backendTimeouts.get(profile.backend.name) ?? mergeTimeouts(this.timeouts);
  }

  /** Queues, breakers and time limits per backend, from the config (defaults by kind). */
  private setUpResilience(config: GatewayConfig): void {
    this.timeouts = config.timeouts;
    this.lanes = new LaneRules(config.backgroundLane ?? DEFAULT_BACKGROUND_RULES);
    for (const b of config.backends) {
      const backend = this.backends.get(b.name);
      if (!backend) continue;
      this.backendTimeouts.set(b.name, mergeTimeouts(config.timeouts, b.timeouts));
      this.addBackendState(backend, b);
    }
    for (const m of config.models) {
      const entry = this.entries.get(m.alias);
      m.targets.forEach((t, i) => {
        const target = entry?.targets[i];
        if (!target) return;
        const b = config.backends.find((x) => x.name === t.backend);
        target.profile.timeouts = mergeTimeouts(config.timeouts, b?.timeouts, t.timeouts);
      });
    }
  }

  private addBackendState(backend: Backend, b?: BackendConfig): BackendState {
    const limit = b?.concurrency ?? backend.concurrency;
    const state: BackendState = {
      queue: new SlotQueue(backend.name, limit, b?.maxQueue ?? DEFAULT_MAX_QUEUE),
      breaker: new Breaker(backend.name, {
        failures: b?.breaker?.failures ?? DEFAULT_BREAKER.failures,
        cooldownMs: b?.breaker?.cooldownMs ?? DEFAULT_BREAKER.cooldownMs,
      }),
    };
    if (b?.concurrency === undefined && backend.askConcurrency) state.probe = { known: false, nextAt: 0 };
    this.backendState.set(backend.name, state);
    this.breakers.set(backend.name, state.breaker);
    return state;
  }

  /** What a backend's queue and breaker say now: for /health and /metrics. */
  resilience(name: string): BackendState | undefined {
    return this.backendState.get(name);
  }
}
