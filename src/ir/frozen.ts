/**
 * Values frozen all the way down. Every request body is frozen as parsed, and every decoded
 * request's messages (the rule is in fast-paths.ts): no request can change what another one
 * reads, and code that tries fails in every test. A value the parse cache shares between bodies
 * is remembered with its height, so that freezing, and measuring the depth of, the next body
 * that shares it skips it instead of walking it again.
 */

/** Objects frozen all the way down and remembered, with their height: 1 for one with no object inside, and so on. */
const heights = new WeakMap<object, number>();
/** Values nested deeper than this are not frozen (the request is refused for its depth anyway). */
const MAX_HEIGHT = 256;

/**
 * Freezes a JSON value all the way down. Its height (0 for a primitive), or -1 when it nests
 * deeper than MAX_HEIGHT, in which case only some of it is frozen (and none of it remembered as
 * frozen above the part that is). The value and the `levels` - 1 levels below it are remembered
 * (remembering costs more than freezing: only what is asked about later is); by default nothing is.
 */
export function deepFreeze(v: unknown, levels = 0, room = MAX_HEIGHT): number {
  if (v === null || typeof v !== "object") return 0;
  const known = heights.get(v);
  if (known !== undefined) return known;
  if (room <= 0) return -1;
  let h = 0;
  if (Array.isArray(v)) {
    for (const x of v) {
      const c = deepFreeze(x, levels - 1, room - 1);
      if (c < 0) return -1;
      if (c > h) h = c;
    }
  } else {
    for (const k in v) {
      const c = deepFreeze((v as Record<string, unknown>)[k], levels - 1, room - 1);
      if (c < 0) return -1;
      if (c > h) h = c;
    }
  }
  Object.freeze(v);
  if (levels > 0) heights.set(v, h + 1);
  return h + 1;
}

/** The height of an object `deepFreeze` froze and remembered, or undefined. */
export function frozenHeight(v: object): number | undefined {
  return heights.get(v);
}
