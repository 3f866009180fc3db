/**
 * Checks for the common case, before any zod runs. A zod parse of a 150 KB agent request walks
 * and copies every message and block, then each block is parsed again on its own; most requests
 * are well-formed, and for those a hand-written walk that only looks is enough. The checks here
 * accept a subset of what the surfaces' zod schemas accept — anything unusual fails them — and a
 * request that fails them goes through zod as before, which names what is wrong in the same words.
 */

export type Obj = Record<string, unknown>;

/** What zod's object schemas take: an object that is not an array. */
export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isStr(v: unknown): v is string {
  return typeof v === "string";
}

/** z.number(): finite. */
export function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** z.number().int(): a safe integer. */
export function isInt(v: unknown): v is number {
  return Number.isSafeInteger(v);
}

export function optStr(v: unknown): boolean {
  return v === undefined || typeof v === "string";
}

export function optBool(v: unknown): boolean {
  return v === undefined || typeof v === "boolean";
}

/** A finite number in [min, max], or absent. */
export function optRange(v: unknown, min: number, max: number): boolean {
  return v === undefined || (isNum(v) && v >= min && v <= max);
}

/** An array of strings, or absent. */
export function optStrings(v: unknown): boolean {
  if (v === undefined) return true;
  if (!Array.isArray(v)) return false;
  for (const x of v) if (typeof x !== "string") return false;
  return true;
}
