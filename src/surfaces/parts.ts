import { deepFreeze } from "../ir/frozen.js";

/**
 * Freezes the messages of a decoded request all the way down, every request's whatever its size
 * (fast-paths.ts has the rule): a stage that changes one makes a new one, and one that tried to
 * change it in place would fail in every test, not only in those with large bodies.
 */
export function freezeMessages(messages: readonly object[]): void {
  for (const m of messages) deepFreeze(m);
}
