import type { Dispatcher } from "../backends/http/client.js";
import { createBackend, listedAs } from "../backends/registry.js";
import type { GatewayConfig, TargetConfig } from "../config/types.js";
import type { Backend, ContextInfo, DiscoveredModel, ModelProfile } from "../ir/contract.js";
import { GatewayError, toGatewayError } from "../ir/errors.js";
import type { Logger } from "../log.js";
import { claudeTierAlias } from "../surfaces/anthropic/claude-names.js";
import { ModelState } from "./model-state.js";
import { type Place, discoveredProfile, profileOf } from "./profiles.js";

export interface ServedModel {
  id: string;
  backend: string;
  model: string;
  /** The window requests are kept inside: what clients are told. */
  contextWindow?: number;
  source: "config" | "discovered";
  /** Where the window came from: served, configured, trained, why. */
  context?: ContextInfo;
  /** Where the window is chosen per request: the one sent with every request (Ollama's num_ctx). */
  numCtx?: number;
}

/** One model on one backend that a name resolves to: its profile, what is learned of it, its requests now. */
export class Target {
  /** Requests on it now (replicas: the least busy goes first). */
  inFlight = 0;
  constructor(
    readonly state: ModelState,
    /** Its configuration, when it has one (a discovered model has none). */
    readonly config?: TargetConfig,
  ) {}

  get profile(): ModelProfile {
    return this.state.profile;
  }
}

/** What a second look at a backend found: models listed anew, models no longer listed. */
export interface DiscoveryChange {
  added: string[];
  vanished: string[];
}

interface Entry {
  alias: string;
  targets: Target[];
  source: "config" | "discovered";
}

/**
 * The models a client may name: profiles from the config and from what each backend discovers,
 * and what a name resolves to — its replicas, then its fallback chain.
 */
export class ModelRegistry {
  readonly backends = new Map<string, Backend>();
  /** Backends that answered discovery, and what they said. */
  readonly discovered = new Map<string, DiscoveredModel[] | GatewayError>();
  private readonly entries = new Map<string, Entry>();
  private readonly fallbacks: Record<string, string[]>;
  private readonly discoverOn: Set<string>;

  constructor(
    private readonly config: GatewayConfig,
    dispatcher: Dispatcher,
    private readonly log: Logger,
  ) {
    for (const b of config.backends) this.backends.set(b.name, createBackend(b, dispatcher));
    for (const m of config.models) {
      this.entries.set(m.alias, {
        alias: m.alias,
        source: "config",
        targets: m.targets.map(
          (t) => new Target(new ModelState(profileOf(m.alias, t, this.placeOf(t.backend))), t),
        ),
      });
    }
    this.oneNumCtx();
    this.fallbacks = config.fallbacks;
    this.discoverOn = new Set(config.backends.filter((b) => b.discover).map((b) => b.name));
  }

  private placeOf(backend: string): Place {
    return {
      backend: this.backends.get(backend)!,
      config: this.config.backends.find((b) => b.name === backend),
      timeouts: this.config.timeouts,
    };
  }

  /**
   * Asks every backend what it has. Configured models are resolved again with what the server
   * says (context, tool support); backends with discovery on also serve their models under their
   * own names.
   */
  async discover(): Promise<void> {
    await Promise.all([...this.backends.keys()].map((name) => this.discoverOne(name)));
  }

  /**
   * Asks one backend what it has (again: the watch asks on a period and when it starts or stops
   * answering). A model whose listing is unchanged keeps its profile and what was learned of it;
   * one listed anew is served; a discovered one no longer listed is no longer served. Resolves
   * with what changed, or the error when the backend did not answer (what it had is kept).
   */
  async discoverOne(name: string): Promise<DiscoveryChange | GatewayError> {
    const backend = this.backends.get(name);
    if (!backend) return { added: [], vanished: [] };
    let models: DiscoveredModel[];
    try {
      models = await backend.discover();
    } catch (e) {
      const err = toGatewayError(e);
      const before = this.discovered.get(backend.name);
      this.discovered.set(backend.name, err);
      // said once when it stops answering, not on every look while it stays down
      if (!(before instanceof GatewayError) || before.message !== err.message)
        this.log.warn({ backend: backend.name, err: err.message }, "backend did not answer discovery");
      return err;
    }
    const before = this.discovered.get(backend.name);
    const had = new Map(Array.isArray(before) ? before.map((m) => [m.name, JSON.stringify(m)]) : []);
    this.discovered.set(backend.name, models);
    const byName = new Map(models.map((m) => [m.name, m]));
    const at = this.placeOf(backend.name);
    const change: DiscoveryChange = { added: [], vanished: [] };
    for (const m of models) if (Array.isArray(before) && !had.has(m.name)) change.added.push(m.name);
    for (const n of had.keys()) if (!byName.has(n)) change.vanished.push(n);
    for (const entry of this.entries.values()) {
      for (const t of entry.targets) {
        if (t.profile.backend !== backend) continue;
        const d = listedAs(backend.kind, t.profile.model)
          .map((n) => byName.get(n))
          .find((x) => x !== undefined);
        // what the server says of it is what it said: its profile and what was learned stay
        if (!d || had.get(d.name) === JSON.stringify(d)) continue;
        t.state.resolved(t.config ? profileOf(entry.alias, t.config, at, d) : discoveredProfile(d, at));
        this.reportWindow(t.profile);
      }
    }
    if (!this.discoverOn.has(backend.name)) {
      this.oneNumCtx(backend);
      return change;
    }
    for (const d of models) {
      if (this.entries.has(d.name)) continue;
      const profile = discoveredProfile(d, at);
      this.reportWindow(profile);
      this.entries.set(d.name, {
        alias: d.name,
        source: "discovered",
        targets: [new Target(new ModelState(profile))],
      });
    }
    // a discovered model its server no longer lists is no longer served (requests in flight keep their target)
    for (const [alias, entry] of this.entries) {
      if (entry.source !== "discovered") continue;
      const t = entry.targets[0]!;
      if (t.profile.backend === backend && !byName.has(t.profile.model)) this.entries.delete(alias);
    }
    this.oneNumCtx(backend);
    return change;
  }

  /**
   * One model gets one num_ctx, whatever name a client uses for it: two values make Ollama load
   * the model again on every switch. Where aliases of one model would send different ones, all
   * send one: the largest one configured (num_ctx, context_window, vram_gb), else the largest.
   */
  private oneNumCtx(only?: Backend): void {
    const groups = new Map<string, Target[]>();
    for (const entry of this.entries.values())
      for (const t of entry.targets) {
        const p = t.profile;
        if (p.numCtx === undefined || (only && p.backend !== only)) continue;
        const key = `${p.backend.name}\0${listedAs(p.backend.kind, p.model).at(-1)}`;
        const g = groups.get(key);
        if (g) g.push(t);
        else groups.set(key, [t]);
      }
    for (const g of groups.values()) {
      const values = new Set(g.map((t) => t.profile.numCtx!));
      if (values.size < 2) continue;
      const chosen = (ts: Target[]) => Math.max(...ts.map((t) => t.profile.numCtx!));
      const stated = g.filter(
        (t) => t.profile.context?.source === "config" || t.profile.context?.source === "memory",
      );
      const n = chosen(stated.length ? stated : g);
      const from = (stated.length ? stated : g).find((t) => t.profile.numCtx === n)!.profile.alias;
      for (const t of g) {
        const p = t.profile;
        if (p.numCtx === n) continue;
        const info = p.context!;
        const why = `num_ctx ${n}, as for '${from}': one model gets one num_ctx (two make the server load it again)`;
        const warning = `'${p.alias}' would send num_ctx ${p.numCtx} (${info.why}), but '${from}' names the same model with ${n}: ${n} is sent for both`;
        this.log.warn({ model: p.alias, backend: p.backend.name, num_ctx: n, was: p.numCtx }, warning);
        t.state.resolved(
          Object.freeze({
            ...p,
            numCtx: n,
            contextWindow: n,
            context: Object.freeze({ ...info, why, warnings: Object.freeze([...info.warnings, warning]) }),
          }),
        );
      }
    }
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

  /** Every model a client may name, with the window it is served with now. */
  models(): ServedModel[] {
    return [...this.entries.values()].map((e) => {
      const { state } = e.targets[0]!;
      const p = state.profile;
      const m: ServedModel = { id: e.alias, backend: p.backend.name, model: p.model, source: e.source };
      if (state.window !== undefined) m.contextWindow = state.window;
      if (state.context) m.context = state.context;
      if (p.numCtx !== undefined) m.numCtx = p.numCtx;
      return m;
    });
  }

  /**
   * The name a model is served under, for the metrics: the name itself when an entry has it
   * (configured or discovered), "*" when the catch-all entry serves it, undefined when nothing
   * does. Never the client's name for a model no entry has: it would be a label without bound.
   */
  servedAs(model: string): string | undefined {
    return this.entryFor(model)?.alias;
  }

  /**
   * The entry a client's name means: its own; for a Claude name the config has no entry for, the
   * alias of its tier (see claude-names.ts); then the catch-all `*`.
   */
  private entryFor(model: string): Entry | undefined {
    const own = this.entries.get(model);
    if (own) return own;
    const tier = claudeTierAlias(model, this.entries.keys());
    return (tier !== undefined ? this.entries.get(tier) : undefined) ?? this.entries.get("*");
  }

  /**
   * The targets for a model name, in the order they are tried: its replicas (ordered by `busy`,
   * least first; ties keep config order), then its fallback chain.
   */
  resolve(model: string, busy?: (t: Target) => number): readonly Target[] {
    const entry = this.entryFor(model);
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
    return chain.flatMap((e) =>
      e.targets.length < 2 || !busy ? e.targets : [...e.targets].sort((a, b) => busy(a) - busy(b)),
    );
  }
}
