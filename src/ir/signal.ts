import { fastPath } from "../fast-paths.js";

/**
 * What the request path passes down to say "stop": the client went away, or a watchdog ended an
 * attempt. It is the part of AbortSignal the path uses, so a real AbortSignal fits wherever one is
 * asked for (a caller of the router, a test, `AbortSignal.timeout` for discovery).
 */
export interface Signal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/**
 * A Signal and the means to abort it, as AbortController and its signal in one object, without
 * EventTarget: Node 20 takes ~4 µs to build an AbortSignal and as long again to add and remove a
 * listener, and every request made two of them (the client's and the attempt's). Listeners are
 * called once, in the order they were added, as EventTarget calls them; one added twice is kept
 * once; one added after the abort is never called.
 */
export class Abort implements Signal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | undefined;

  /** Aborts with `reason` (an AbortError, as AbortController's, when none is given). */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason =
      reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (!listeners) return;
    // every listener runs even if one throws; the first error is thrown after them
    let failed = false;
    let error: unknown;
    for (const listener of listeners) {
      try {
        listener();
      } catch (e) {
        if (!failed) error = e;
        failed = true;
      }
    }
    if (failed) throw error;
  }

  addEventListener(_type: "abort", listener: () => void): void {
    if (this.aborted) return;
    const listeners = this.listeners;
    if (!listeners) this.listeners = [listener];
    else if (!listeners.includes(listener)) listeners.push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const listeners = this.listeners;
    if (!listeners) return;
    const i = listeners.indexOf(listener);
    if (i >= 0) listeners.splice(i, 1);
  }
}

/** A Signal with the means to abort it. */
export interface Abortable extends Signal {
  abort(reason?: unknown): void;
}

/** AbortController and its signal as one Abortable: the simple way. */
class NativeAbort implements Abortable {
  private readonly controller = new AbortController();

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  get reason(): unknown {
    return this.controller.signal.reason;
  }

  abort(reason?: unknown): void {
    this.controller.abort(reason);
  }

  addEventListener(type: "abort", listener: () => void): void {
    this.controller.signal.addEventListener(type, listener, { once: true });
  }

  removeEventListener(type: "abort", listener: () => void): void {
    this.controller.signal.removeEventListener(type, listener);
  }
}

/** A new abort signal: the light one (`light-abort`, fast-paths.ts) or AbortController's. */
export function newAbort(): Abortable {
  return fastPath("light-abort") ? new Abort() : new NativeAbort();
}
