import type { DiscoveredModel } from "../ir/contract.js";
import { GatewayError } from "../ir/errors.js";
import type { Logger } from "../log.js";
import type { BackendStates } from "./backend-state.js";
import { isBackendFailure } from "./breaker.js";
import type { DiscoveryChange } from "./models.js";

/** A backend's health in one word: up, down (nothing answers), degraded (it answers, but not well). */
export type HealthWord = "up" | "down" | "degraded";

/** What /health and `clawbridge status` say of one backend. */
export interface BackendHealth {
  state: HealthWord;
  /** When the word last changed (the watch's start, at first). */
  since: Date;
  /** Why it is not up, in plain words (the last error). */
  reason?: string;
  /** Models it listed at its last answer; undefined before it answered once. */
  models?: number;
  /** Models it listed before and lists no more. */
  gone?: string[];
}

/** What the watch needs of the model registry: a second look at one backend, and what it said last. */
export interface Discovery {
  discoverOne(name: string): Promise<DiscoveryChange | GatewayError>;
  readonly discovered: ReadonlyMap<string, DiscoveredModel[] | GatewayError>;
}

interface Watched {
  name: string;
  word: HealthWord;
  since: Date;
  reason?: string;
  /** A request succeeded since discovery last failed: it serves, though it does not list. */
  servedSinceFailure: boolean;
  gone: Set<string>;
  running?: Promise<void> | undefined;
  timer?: NodeJS.Timeout | undefined;
  /** When a look was last started because of a request's verdict (one a second at most). */
  lastNudge: number;
  /** What its breaker tells of each request's verdict. */
  hook?: (err?: GatewayError) => void;
  /** A look a verdict asked for, waiting its turn. */
  nudge?: NodeJS.Timeout | undefined;
}

/** Looks started by requests' verdicts: at most one a second per backend. */
const NUDGE_EVERY_MS = 1000;

/**
 * Watches every backend: asks it again what it has every `intervalMs` (0: never on a period) and
 * at once when it starts or stops answering (a request that could not reach it, a success while it
 * was down), so a server started after the gateway and models pulled later are served without a
 * restart; keeps each backend's health word, since when, and why.
 */
export class BackendWatch {
  private readonly watched = new Map<string, Watched>();
  private closed = false;

  constructor(
    private readonly discovery: Discovery,
    private readonly states: BackendStates,
    names: Iterable<string>,
    private readonly intervalMs: number,
    private readonly log: Logger,
    /** The watch a reload replaces: a backend watched there keeps its word, since when, and what it lost. */
    previous?: BackendWatch,
  ) {
    const now = new Date();
    for (const name of names) {
      const was = previous?.watched.get(name);
      const w: Watched = {
        name,
        word: was?.word ?? "up",
        since: was?.since ?? now,
        servedSinceFailure: false,
        gone: new Set(was?.gone),
        lastNudge: 0,
      };
      this.watched.set(name, w);
      w.hook = (err) => this.verdict(w, err);
      const breaker = this.states.get(name)?.breaker;
      if (breaker) breaker.onVerdict = w.hook;
    }
  }

  /** Takes the first discovery's outcome as the starting words, and starts the period. */
  start(): void {
    for (const w of this.watched.values()) {
      this.refresh(w, true);
      this.schedule(w);
    }
  }

  /** Stops every timer (requests' verdicts start no more looks). */
  close(): void {
    this.closed = true;
    for (const w of this.watched.values()) {
      clearTimeout(w.timer);
      clearTimeout(w.nudge);
      w.timer = undefined;
      w.nudge = undefined;
      const breaker = this.states.get(w.name)?.breaker;
      // a breaker kept across a reload is the next watch's now
      if (breaker && breaker.onVerdict === w.hook) breaker.onVerdict = undefined;
    }
  }

  /** Looks at a backend now (a look already running is joined). */
  check(name: string): Promise<void> {
    const w = this.watched.get(name);
    if (!w) return Promise.resolve();
    w.running ??= this.look(w).finally(() => {
      w.running = undefined;
    });
    return w.running;
  }

  /** A backend's health now. */
  health(name: string): BackendHealth | undefined {
    const w = this.watched.get(name);
    if (!w) return undefined;
    this.refresh(w);
    const d = this.discovery.discovered.get(name);
    return {
      state: w.word,
      since: w.since,
      ...(w.reason ? { reason: w.reason } : {}),
      ...(Array.isArray(d) ? { models: d.length } : {}),
      ...(w.gone.size ? { gone: [...w.gone] } : {}),
    };
  }

  private schedule(w: Watched): void {
    if (this.closed || this.intervalMs <= 0) return;
    clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      w.timer = undefined;
      this.check(w.name).finally(() => this.schedule(w));
    }, this.intervalMs);
    w.timer.unref();
  }

  private async look(w: Watched): Promise<void> {
    const change = await this.discovery.discoverOne(w.name);
    if (this.closed) return;
    if (change instanceof GatewayError) {
      w.servedSinceFailure = false;
    } else {
      const breaker = this.states.get(w.name)?.breaker;
      // it answers again: a circuit opened because it could not be reached is closed
      if (breaker && breaker.state !== "closed" && breaker.lastError?.code === "backend_unreachable") {
        breaker.success();
      }
      if (change.added.length) {
        for (const m of change.added) w.gone.delete(m);
        this.log.info({ backend: w.name, models: change.added }, "backend lists new models: served now");
      }
      if (change.vanished.length) {
        for (const m of change.vanished) w.gone.add(m);
        this.log.warn(
          { backend: w.name, models: change.vanished },
          "backend no longer lists models: not served under their own names",
        );
      }
    }
    this.refresh(w);
  }

  /** A request's verdict on a backend: a failure to reach it, or a success while it was down, is looked at now. */
  private verdict(w: Watched, err?: GatewayError): void {
    if (this.closed) return;
    if (!err) {
      if (w.word === "up") return;
      if (this.discovery.discovered.get(w.name) instanceof GatewayError) w.servedSinceFailure = true;
      this.refresh(w);
      this.nudge(w);
      return;
    }
    if (!isBackendFailure(err)) return;
    this.refresh(w);
    this.nudge(w);
  }

  /** A look now, or as soon as the last one a verdict started is a second old. */
  private nudge(w: Watched): void {
    if (w.nudge || this.closed) return;
    const wait = w.lastNudge + NUDGE_EVERY_MS - performance.now();
    const go = () => {
      w.nudge = undefined;
      if (this.closed) return;
      w.lastNudge = performance.now();
      // a look already running may have started before the verdict: one more after it
      (w.running ?? Promise.resolve()).then(() => this.check(w.name)).catch(() => {});
    };
    if (wait <= 0) {
      go();
      return;
    }
    w.nudge = setTimeout(go, wait);
    w.nudge.unref();
  }

  /** Works the word out again; a change is logged and dated. */
  private refresh(w: Watched, first = false): void {
    const d = this.discovery.discovered.get(w.name);
    const state = this.states.get(w.name);
    const breaker = state?.breaker;
    let word: HealthWord = "up";
    let reason: string | undefined;
    if (d instanceof GatewayError) {
      if (w.servedSinceFailure) {
        word = "degraded";
        reason = `it does not list its models (${d.message}), but answers requests`;
      } else {
        word = "down";
        reason = d.message;
      }
    } else if (breaker && breaker.state !== "closed") {
      word = "degraded";
      reason = `circuit ${breaker.state.replace("_", "-")} after ${breaker.failures} failure(s) in a row: ${breaker.lastError?.message ?? "unknown"}`;
    } else if (breaker?.suspect) {
      word = "degraded";
      reason = `an answer broke off: ${breaker.lastError?.message ?? "unknown"}`;
    }
    const changed = word !== w.word;
    w.reason = reason;
    if (!changed) return;
    const was = w.word;
    w.word = word;
    w.since = new Date();
    // at the start, discovery has said already what did not answer
    if (first) return;
    const where = { backend: w.name, state: word, was };
    if (word === "up") this.log.info(where, "backend is up again");
    else this.log.warn({ ...where, reason }, `backend is ${word}`);
  }
}
