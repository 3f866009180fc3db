import type { GatewayConfig } from "../config/types.js";
import type { Backend } from "../ir/contract.js";
import { toGatewayError } from "../ir/errors.js";
import type { Signal } from "../ir/signal.js";
import type { Logger } from "../log.js";
import { Breaker, DEFAULT_BREAKER } from "./breaker.js";
import { DEFAULT_MAX_QUEUE, type Lane, type Slot, SlotQueue } from "./queue.js";

/** A backend's queue and circuit breaker, and whether its slot count is still to be asked. */
export interface BackendState {
  queue: SlotQueue;
  breaker: Breaker;
  probe?: { known: boolean; nextAt: number; running?: Promise<void> | undefined };
}

/** Told when a request waits for a place at a backend, and when it gets one. */
export interface PlaceObserver {
  /** Called when the request has to wait for a place at a busy backend. */
  queued?(backend: string, lane: Lane, ahead: number): void;
  /** Called when the request got its place at a backend (waitedMs 0 when one was free). */
  started?(backend: string, lane: Lane, waitedMs: number): void;
}

/**
 * Each backend's state while serving: its queue (as many places as it serves at once: the
 * config's `concurrency`, else what the backend says, asked where it can be), its circuit breaker.
 */
export class BackendStates {
  private readonly states = new Map<string, BackendState>();

  constructor(
    config: GatewayConfig,
    backends: ReadonlyMap<string, Backend>,
    private readonly log: Logger,
    /** The states before a reload, with the config they were made from: a backend configured alike keeps its own. */
    previous?: { states: BackendStates; config: GatewayConfig },
  ) {
    for (const [name, backend] of backends) {
      const b = config.backends.find((x) => x.name === name);
      const was = previous?.config.backends.find((x) => x.name === name);
      const kept = was && JSON.stringify(was) === JSON.stringify(b) ? previous!.states.get(name) : undefined;
      if (kept) {
        // the same places: requests in flight and new ones share the backend's slots
        this.states.set(name, kept);
        continue;
      }
      const state: BackendState = {
        queue: new SlotQueue(name, b?.concurrency ?? backend.concurrency, b?.maxQueue ?? DEFAULT_MAX_QUEUE),
        breaker: new Breaker(name, {
          failures: b?.breaker?.failures ?? DEFAULT_BREAKER.failures,
          cooldownMs: b?.breaker?.cooldownMs ?? DEFAULT_BREAKER.cooldownMs,
        }),
      };
      if (b?.concurrency === undefined && backend.askConcurrency) state.probe = { known: false, nextAt: 0 };
      this.states.set(name, state);
    }
  }

  /** What a backend's queue and breaker say now: for /health and /metrics. */
  get(name: string): BackendState | undefined {
    return this.states.get(name);
  }

  /** How busy a backend is: running and waiting per place, one whose circuit is open last of all. */
  load(name: string): number {
    const state = this.states.get(name);
    if (!state) return 0;
    return (state.breaker.state === "open" ? 1e9 : 0) + state.queue.load;
  }

  /** A place at once, without a turn of the event loop, when one is free and no one waits. */
  placeNow(backend: Backend, lane: Lane, observer: PlaceObserver): Slot | undefined {
    const state = this.states.get(backend.name);
    const probe = state?.probe;
    // a slot count still to be asked goes the long way (place, queueOf)
    if (!state || (probe && !probe.known && performance.now() >= probe.nextAt)) return undefined;
    const slot = state.queue.tryAcquire();
    if (slot) observer.started?.(backend.name, lane, 0);
    return slot;
  }

  /** A place at the backend: at once, or after waiting in the queue (logged, and told to the observer). */
  async place(
    backend: Backend,
    lane: Lane,
    signal: Signal,
    log: Logger,
    observer: PlaceObserver,
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

  /** A backend's queue; where the backend can say how many it serves at once, that is asked first (once it answers). */
  private async queueOf(backend: Backend): Promise<SlotQueue> {
    const state = this.states.get(backend.name)!;
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
}
