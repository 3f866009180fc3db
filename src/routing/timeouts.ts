import { GatewayError } from "../ir/errors.js";
import { type Abortable, newAbort, type Signal } from "../ir/signal.js";
import type { Event, EventStream } from "../ir/types.js";
import type { Logger } from "../log.js";
import type { ExchangeHooks, PromptProgress, Timeouts } from "../ir/contract.js";

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
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** How much longer than its measured rate says a prompt may take to be read. */
const READ_MARGIN = 1.5;

/** What a request is doing, in words: "reading the prompt 12,000/20,000". */
export function progressPhase(p: PromptProgress): string {
  return `reading the prompt ${p.processed.toLocaleString("en-US")}/${p.total.toLocaleString("en-US")}`;
}

/** Listens to a request's prompt progress: the figures, and the phase in words (see `progressPhase`). */
export type ProgressListener = (p: PromptProgress, phase: string) => void;

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
  /** The signal the backend request runs under. */
  readonly signal: Abortable;
  /** What the backend's HTTP exchanges tell the watchdog: their head came (and a connect limit). */
  readonly hooks: ExchangeHooks;
  private phase: Phase = "loading";
  private failure: GatewayError | undefined;
  /**
   * One timer for every limit. It never waits longer than the shortest limit of all (`step`), so a
   * phase that starts later, whose limit is at least that, never needs it set again: a request
   * sets it once, whatever phases it goes through, and a long one has it fire once a step to
   * look at the clock.
   */
  private timer: NodeJS.Timeout | undefined;
  private readonly step: number;
  private readonly startedAt: number;
  private limit: Limit = "load";
  private armedAt = 0;
  private lastEvent = 0;
  private clientLeft = false;
  private rejectPending: ((e: unknown) => void) | undefined;
  private innerPending = false;
  /** The server's last report of reading the prompt, and when it came (see `progress`). */
  private lastProgress: PromptProgress | undefined;
  private progressAt = 0;
  /** When the prompt's reading is due to end at the measured rate, with a margin (0: not measured). */
  private readDue = 0;

  constructor(
    private readonly client: Signal,
    private readonly limits: Timeouts,
    private readonly backend: string,
    private readonly log: Logger,
    private readonly onProgress?: ProgressListener,
  ) {
    this.signal = newAbort();
    this.hooks = {
      connectMs: limits.connectMs,
      onHeaders: () => this.headers(),
      onProgress: (p) => this.progress(p),
    };
    client.addEventListener("abort", this.onClientAbort);
    let step = 0;
    for (const ms of [limits.loadMs, limits.firstTokenMs, limits.idleMs, limits.totalMs])
      if (ms > 0 && (step === 0 || ms < step)) step = ms;
    this.step = step;
    this.startedAt = this.armedAt = performance.now();
    this.schedule(this.startedAt);
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
    this.signal.abort(reason);
  }

  /** A new phase begins: its limit counts from now (the timer needs no change, see `timer`). */
  private arm(limit: Limit): void {
    this.limit = limit;
    this.armedAt = performance.now();
  }

  /** The limit of the phase under way, ms (0: none). */
  private phaseMs(): number {
    const l = this.limits;
    return this.limit === "load" ? l.loadMs : this.limit === "first_token" ? l.firstTokenMs : l.idleMs;
  }

  /**
   * When the phase under way runs out (idle: counted from the last event). The first token, once
   * the server reports reading the prompt: the limit counts from its last report, and not before
   * the whole prompt is due at the rate it reads (see `progress`).
   */
  private phaseDue(): number {
    const ms = this.phaseMs();
    if (ms <= 0) return Number.POSITIVE_INFINITY;
    if (this.limit === "first_token" && this.lastProgress)
      return Math.max(this.progressAt + ms, this.readDue);
    return (this.limit === "idle" ? this.lastEvent : this.armedAt) + ms;
  }

  /**
   * The server reported how far it has read the prompt. Reading counts as progress while it moves:
   * the first-token limit then runs from the last report that moved, and is at least the time the
   * whole prompt takes at the rate measured so far (tokens read afresh over the time they took),
   * with a margin. A prompt visibly being read is not cut off however long it is; one whose
   * reading stops is, once the limit has passed since the last step and the rest is overdue.
   */
  private progress(p: PromptProgress): void {
    if (this.phase !== "prefill" && this.phase !== "loading") return;
    const now = performance.now();
    const moved = !this.lastProgress || p.processed > this.lastProgress.processed;
    this.lastProgress = p;
    if (moved) this.progressAt = now;
    const read = p.processed - p.cache;
    if (read > 0 && p.timeMs > 0) {
      const totalMs = ((p.total - p.cache) * p.timeMs) / read;
      this.readDue = now - p.timeMs + totalMs * READ_MARGIN;
    }
    const phase = progressPhase(p);
    this.log.debug({ backend: this.backend, ...p }, phase);
    this.onProgress?.(p, phase);
  }

  private schedule(now: number): void {
    if (this.step <= 0) return;
    let due = Math.min(now + this.step, this.phaseDue());
    if (this.limits.totalMs > 0) due = Math.min(due, this.startedAt + this.limits.totalMs);
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(due - now)));
  }

  private readonly onTimer = () => {
    this.timer = undefined;
    if (this.failure || this.phase === "done") return;
    const now = performance.now();
    if (this.limits.totalMs > 0 && now - this.startedAt >= this.limits.totalMs) this.expire("total");
    // the idle limit runs only while the backend is waited for (see `watch`)
    else if (now >= this.phaseDue() && (this.limit !== "idle" || this.innerPending)) this.expire(this.limit);
    else this.schedule(now);
  };

  /** The backend's response head arrived: the load is over. */
  private headers(): void {
    if (this.phase !== "loading") return;
    this.phase = "prefill";
    if (this.clientLeft) {
      this.abort();
      return;
    }
    this.arm("first_token");
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
    this.arm("idle");
  }

  private expire(limit: Limit): void {
    if (this.failure || this.phase === "done") return;
    const b = this.backend;
    const ms = limit === "idle" ? this.limits.idleMs : limit === "total" ? this.limits.totalMs : 0;
    const message =
      limit === "load"
        ? `backend ${b} did not answer within ${seconds(this.limits.loadMs)} (${SETTING.load}: model load, warm-up or its own queue)`
        : limit === "first_token"
          ? this.lastProgress
            ? this.stalled(this.lastProgress)
            : `backend ${b} answered but sent no token within ${seconds(this.limits.firstTokenMs)} (${SETTING.first_token})`
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

  /** The first-token limit's message for a server whose reading of the prompt stopped. */
  private stalled(p: PromptProgress): string {
    const waited = this.phaseDue() - this.progressAt;
    const where =
      p.processed >= p.total
        ? `read the whole prompt (${p.total.toLocaleString("en-US")} tokens)`
        : `stopped reading the prompt at ${p.processed.toLocaleString("en-US")}/${p.total.toLocaleString("en-US")} tokens`;
    return `backend ${this.backend} ${where} and sent no token within ${seconds(waited)} of its last progress (${SETTING.first_token}: ${seconds(this.limits.firstTokenMs)}, or longer as the whole prompt takes at its measured rate)`;
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
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
        // The idle limit is the backend's silence: it counts from when the next events are asked
        // for, and not while the client takes its time with the last ones (a client that does not
        // read holds the backend's answer back: see server/routes/generation.ts).
        if (this.phase === "streaming") this.lastEvent = performance.now();
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
