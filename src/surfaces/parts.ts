import { fastPath } from "../fast-paths.js";
import { deepFreeze, isDeepFrozen } from "../ir/frozen.js";

/**
 * IR decoded from a conversation's history, kept for the next turn. An agent resends its whole
 * history every turn; the request parser hands back the very same frozen objects for what a body
 * shares with an earlier one (`server/parse-cache.ts`). What a surface decodes from such an object
 * is the same value every time, so it is kept by the object's identity, frozen all the way down:
 * the next turn gets the same IR objects, and the backends' encoders find the JSON text they wrote
 * for them by identity too (`Fragments` in `backends/json-body.ts`) instead of writing it again.
 *
 * Only what a raw value alone decides is kept: anything that depends on the rest of the body
 * (a tool result's tool name, found from an earlier message) is checked by the caller on a hit.
 * The `history` fast path (fast-paths.ts): off, nothing is kept and every turn is decoded afresh.
 */
export class FrozenMemo<T extends object> {
  private readonly kept = new WeakMap<object, T>();

  /** @param levels how deep the kept values are remembered as frozen (see `deepFreeze`) */
  constructor(private readonly levels: number) {}

  /** The value kept for `raw` (only ever one that cannot change). */
  get(raw: object): T | undefined {
    return fastPath("history") ? this.kept.get(raw) : undefined;
  }

  /**
   * Keeps `value` for `raw`, frozen with it, when `frozen` says that `raw` is frozen all the way
   * down (it is, or is inside, a message `frozenMessage` said so of); returns `value`.
   */
  keep(raw: object, value: T, frozen: boolean): T {
    if (frozen && deepFreeze(value, this.levels) >= 0) this.kept.set(raw, value);
    return value;
  }
}

/** Whether a body's message is frozen all the way down (shared with, or kept for, other bodies). */
export function frozenMessage(raw: unknown): boolean {
  return fastPath("history") && isDeepFrozen(raw);
}
