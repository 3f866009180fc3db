import { hookExchange } from "../backends/http.js";
import { GatewayError } from "../ir/errors.js";
import type { Event, EventStream } from "../ir/types.js";
import type { Logger } from "../log.js";

/**
 * Time limits on one exchange with a backend, per model profile. Each phase has its own limit,
 * counted from the start of that phase; 0 turns a limit off.
 */
export interface Timeouts {
  /** Setting up the TCP (TLS) connection. */
  connectMs: number;
  /** Request sent → the backend's first byte (its response headers): model load, JIT warm-up, the server's own queue. */
  loadMs: number;
  /** First byte → first event of the answer: prompt processing. */
  firstTokenMs: number;
  /** Longest silence between two events once the answer has started: a hang. */
  idleMs: number;
  /** The whole exchange, from the request sent to the last event (queue wait not counted). */
  totalMs: number;
}

/**
 * Defaults for local servers: a model load or a kernel JIT takes minutes before the first byte,
 * and prompt processing of an agent's 10k+ token prompt on a small GPU or a CPU takes minutes
 * more; once tokens flow, two minutes of silence is a hang. An hour in all: a long answer from a
 * CPU-bound model is slow, not stuck (the idle limit catches what is stuck).
 */
export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  connectMs: 10_000,
  loadMs: 600_000,
  firstTokenMs: 300_000,
  idleMs: 120_000,
  totalMs: 3_600_000,
};

/** Later layers win: built-in defaults, then the top level, the backend, the target. */
export function mergeTimeouts(...layers: Array<Partial<Timeouts> | undefined>): Timeouts {
  const out: Timeouts = { ...DEFAULT_TIMEOUTS };
  for (const l of layers) {
    if (!l) continue;
    for (const k of Object.keys(out) as Array<keyof Timeouts>) {
      const v = l[k];
      if (v !== undefined) out[k] = v;
    }
  }
  return out;
}

type Phase = "loading" | "prefill" | "streaming" | "done";
type Limit = "load" | "first_token" | "idle" | "total";

const SETTING: Record<Limit, string> = {
  load: "timeouts.load_ms",
  first_token: "timeouts.first_token_ms",
  idle: "timeouts.idle_ms",
  total: "timeouts.total_ms",
};

function seconds(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

/**
 * One attempt at one backend: the abort signal the backend request runs under, the watchdog on
 * its phases (load, first token, idle gaps, total), and what happens when the client goes away.
 *
 * Until the backend's first byte the request counts as loading: a server such as Ollama aborts a
 * model load when its client disconnects, so the next try would start the load over. A client
 * that leaves during that phase lets the backend request run on (bounded by the load limit) and
 * stops it at its first byte; at any later point the backend request is aborted at once.
 */
export class Attempt {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private phase: Phase = "loading";
  private failure: GatewayError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private totalTimer: NodeJS.Timeout | undefined;
  private limit: Limit = "load";
  private armedAt = 0;
  private lastEvent = 0;
  private clientLeft = false;
  private rejectPending: ((e: unknown) => void) | undefined;
  private innerPending = false;
  /** Ways to abort the backend requests under way (see ExchangeHooks.track). */
  private readonly exchanges = new Set<(reason: unknown) => void>();

  constructor(
    private readonly client: AbortSignal,
    private readonly limits: Timeouts,
    private readonly backend: string,
    private readonly log: Logger,
  ) {
    this.signal = this.controller.signal;
    hookExchange(this.signal, {
      connectMs: limits.connectMs,
      onHeaders: () => this.headers(),
      track: (abort) => {
        if (this.signal.aborted) {
          abort(this.signal.reason);
          return () => undefined;
        }
        this.exchanges.add(abort);
        return () => this.exchanges.delete(abort);
      },
    });
    client.addEventListener("abort", this.onClientAbort);
    this.arm("load", limits.loadMs);
    if (limits.totalMs > 0) this.totalTimer = setTimeout(() => this.expire("total"), limits.totalMs);
  }

  /** Whether the backend has sent anything yet. */
  get loading(): boolean {
    return this.phase === "loading";
  }

  /** Whether the answer has started (the first event came). */
  get streaming(): boolean {
    return this.phase === "streaming" || this.phase === "done";
  }

  /** The watchdog's error when a limit ended the attempt. */
  get timedOut(): GatewayError | undefined {
    return this.failure;
  }

  private readonly onClientAbort = () => {
    if (this.phase === "loading") {
      if (this.clientLeft) return;
      this.clientLeft = true;
      this.log.info(
        { backend: this.backend },
        "client left while the backend is loading; the load runs on and is stopped at its first byte",
      );
      return;
    }
    this.abort();
  };

  private abort(reason?: unknown): void {
    if (this.controller.signal.aborted) return;
    this.controller.abort(reason);
    // the backend requests of this attempt, aborted directly (see ExchangeHooks.track)
    for (const abort of this.exchanges) abort(this.controller.signal.reason);
    this.exchanges.clear();
  }

  private arm(limit: Limit, ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.limit = limit;
    this.armedAt = performance.now();
    if (ms > 0) this.timer = setTimeout(this.onTimer, ms);
  }

  private readonly onTimer = () => {
    this.timer = undefined;
    if (this.limit === "idle") {
      // re-armed lazily: events only note their time
      const quiet = performance.now() - this.lastEvent;
      if (quiet < this.limits.idleMs) {
        this.timer = setTimeout(this.onTimer, this.limits.idleMs - quiet);
        return;
      }
    }
    this.expire(this.limit);
  };

  /** The backend's response head arrived: the load is over. */
  private headers(): void {
    if (this.phase !== "loading") return;
    this.phase = "prefill";
    if (this.clientLeft) {
      this.abort();
      return;
    }
    this.arm("first_token", this.limits.firstTokenMs);
  }

  private event(): void {
    this.lastEvent = performance.now();
    if (this.phase === "streaming") return;
    const wasLoading = this.phase === "loading";
    this.phase = "streaming";
    if (wasLoading && this.clientLeft) {
      this.abort();
      return;
    }
    this.arm("idle", this.limits.idleMs);
  }

  private expire(limit: Limit): void {
    if (this.failure || this.phase === "done") return;
    const b = this.backend;
    const ms = limit === "idle" ? this.limits.idleMs : limit === "total" ? this.limits.totalMs : 0;
    const message =
      limit === "load"
        ? `backend ${b} did not answer within ${seconds(this.limits.loadMs)} (${SETTING.load}: model load, warm-up or its own queue)`
        : limit === "first_token"
          ? `backend ${b} answered but sent no token within ${seconds(this.limits.firstTokenMs)} (${SETTING.first_token})`
          : limit === "idle"
            ? `backend ${b} went silent for ${seconds(ms)} in the middle of its answer (${SETTING.idle}); the answer was cut off`
            : `backend ${b} took longer than ${seconds(ms)} for the whole answer (${SETTING.total})`;
    const err = new GatewayError("timeout", message, {
      // before the first event another target may still answer; after it, nothing can be retried
      retryable: !this.streaming,
    });
    this.failure = err;
    this.clearTimers();
    this.log.warn(
      { backend: b, limit, phase: this.phase, afterMs: Math.round(performance.now() - this.armedAt) },
      "backend timed out",
    );
    this.abort(err);
    const reject = this.rejectPending;
    this.rejectPending = undefined;
    reject?.(err);
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.totalTimer) clearTimeout(this.totalTimer);
    this.timer = this.totalTimer = undefined;
  }

  /**
   * The backend's events under the watchdog: each batch notes its time; a limit that runs out
   * aborts the backend request and ends the iteration with a `timeout` error.
   */
  watch(events: EventStream): EventStream {
    const inner = events[Symbol.asyncIterator]();
    const it: AsyncIterator<Event[]> = {
      next: () => {
        if (this.failure) return Promise.reject(this.failure);
        return new Promise<IteratorResult<Event[]>>((resolve, reject) => {
          this.rejectPending = reject;
          this.innerPending = true;
          inner.next().then(
            (r) => {
              this.innerPending = false;
              this.rejectPending = undefined;
              if (r.done) this.phase = "done";
              else this.event();
              resolve(r);
            },
            (e: unknown) => {
              this.innerPending = false;
              this.rejectPending = undefined;
              reject(this.failure ?? e);
            },
          );
        });
      },
      return: async (value?: unknown) => {
        const done = { done: true, value } as IteratorReturnResult<unknown> as IteratorResult<Event[]>;
        if (!inner.return) return done;
        if (this.innerPending) {
          // a next() is still running (aborted, it settles soon); the generator closes after it
          inner.return().catch(() => undefined);
          return done;
        }
        await inner.return().catch(() => undefined);
        return done;
      },
    };
    return { [Symbol.asyncIterator]: () => it };
  }

  /** Ends the attempt: timers cleared, listeners removed, the backend request aborted if still open. */
  dispose(): void {
    this.clearTimers();
    this.client.removeEventListener("abort", this.onClientAbort);
    if (this.phase !== "done") this.abort();
    this.phase = "done";
  }
}
