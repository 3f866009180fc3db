import type { Signal } from "../ir/signal.js";
import { GatewayError } from "../ir/errors.js";

/** Priority lanes: the agent's own turn goes before background work (titles, summaries). */
export type Lane = "foreground" | "background";
export const LANES: readonly Lane[] = ["foreground", "background"];

/** Requests that may wait for a backend by default. */
export const DEFAULT_MAX_QUEUE = 128;

/** A held place at the backend; release it exactly once (later calls do nothing). */
export interface Slot {
  /** How long the request waited for it, ms (0 when a place was free). */
  readonly waitedMs: number;
  release(): void;
}

interface Waiter {
  lane: Lane;
  since: number;
  resolve(slot: Slot): void;
  reject(e: unknown): void;
  signal: Signal;
  onAbort(): void;
}

export interface WaitOptions {
  /** Called once when the request has to wait, with the count of requests ahead of it. */
  onWait?(ahead: number): void;
}

/**
 * The places one backend really has (llama.cpp slots, Ollama's parallel setting, 1 for TinyGrad)
 * and the requests waiting for them: FIFO within a lane, the foreground lane first, at most
 * `maxQueue` waiting; beyond that a request is refused at once as overloaded, with a Retry-After
 * from how long places are held. A waiting request whose client goes away leaves the queue.
 */
export class SlotQueue {
  private active_ = 0;
  private readonly waiters: Record<Lane, Waiter[]> = { foreground: [], background: [] };
  /** Moving average of how long a place is held, ms. */
  private holdMs = 0;

  /**
   * @param limit places at the backend; 0: no limit
   * @param maxQueue requests that may wait; 0: none wait, a busy backend refuses
   */
  constructor(
    readonly backend: string,
    private limit_: number,
    readonly maxQueue: number,
  ) {}

  get limit(): number {
    return this.limit_;
  }

  /** Changes the limit (discovered slots); waiting requests move up if places opened. */
  set limit(n: number) {
    this.limit_ = Math.max(0, Math.floor(n));
    this.dispatch();
  }

  get active(): number {
    return this.active_;
  }

  waiting(lane?: Lane): number {
    return lane ? this.waiters[lane].length : this.waiters.foreground.length + this.waiters.background.length;
  }

  /** How full the backend is: requests held and waiting per place (for least-busy routing). */
  get load(): number {
    return (this.active_ + this.waiting()) / (this.limit_ || 1_000_000);
  }

  private free(): boolean {
    return this.limit_ === 0 || this.active_ < this.limit_;
  }

  /** A place now, without waiting, or undefined when the backend is busy (or others wait). */
  tryAcquire(): Slot | undefined {
    if (!this.free() || this.waiting() > 0) return undefined;
    this.active_++;
    return this.slot(0);
  }

  /**
   * A place: at once when one is free, else after waiting in `lane`. Rejects with `overloaded`
   * when the queue is full, and when `signal` aborts while waiting.
   */
  acquire(lane: Lane, signal: Signal, opts: WaitOptions = {}): Promise<Slot> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    if (signal.aborted) return Promise.reject(gone(this.backend));
    if (this.waiting() >= this.maxQueue) return Promise.reject(this.full());
    const ahead = this.waiting("foreground") + (lane === "background" ? this.waiting("background") : 0);
    return new Promise<Slot>((resolve, reject) => {
      const w: Waiter = {
        lane,
        since: performance.now(),
        resolve,
        reject,
        signal,
        onAbort: () => {
          const list = this.waiters[lane];
          const i = list.indexOf(w);
          if (i >= 0) list.splice(i, 1);
          reject(gone(this.backend));
        },
      };
      signal.addEventListener("abort", w.onAbort, { once: true });
      this.waiters[lane].push(w);
      opts.onWait?.(ahead);
    });
  }

  private slot(waitedMs: number): Slot {
    const start = performance.now();
    let held = true;
    return {
      waitedMs,
      release: () => {
        if (!held) return;
        held = false;
        const ms = performance.now() - start;
        this.holdMs = this.holdMs === 0 ? ms : this.holdMs * 0.8 + ms * 0.2;
        this.active_--;
        this.dispatch();
      },
    };
  }

  private dispatch(): void {
    while (this.free()) {
      const w = this.waiters.foreground.shift() ?? this.waiters.background.shift();
      if (!w) return;
      w.signal.removeEventListener("abort", w.onAbort);
      this.active_++;
      w.resolve(this.slot(performance.now() - w.since));
    }
  }

  /** Seconds a refused client should wait: the queue ahead of it, at the pace places free up. */
  retryAfterS(): number {
    const perPlace = (this.holdMs || 5000) / 1000;
    const rounds = (this.waiting() + 1) / (this.limit_ || 1);
    return Math.min(120, Math.max(1, Math.ceil(perPlace * rounds)));
  }

  private full(): GatewayError {
    const s = this.retryAfterS();
    return new GatewayError(
      "overloaded",
      `backend ${this.backend} is busy: ${this.active_} request(s) running on its ${this.limit_} place(s) and ${this.waiting()} waiting, the most the queue holds (max_queue ${this.maxQueue}); retry in ${s} s`,
      { retryable: true, retryAfter: s },
    );
  }
}

function gone(backend: string): GatewayError {
  return new GatewayError("api_error", `the client went away while waiting for backend ${backend}`, {
    retryable: false,
    code: "client_gone",
  });
}
