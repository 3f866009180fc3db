import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * Random bytes drawn from the system's generator a page at a time: an id costs no call into it
 * of its own (a few microseconds each, on every request).
 */
const pool = Buffer.alloc(4096);
let used = pool.length;

/** A random id in the style the client's SDKs expect (`msg_…`, `toolu_…`, `chatcmpl-…`, `call_…`). */
export function newId(prefix: string, length = 24): string {
  if (length > pool.length) throw new RangeError(`id length ${length} is too long`);
  if (used + length > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  let s = prefix;
  for (let i = 0; i < length; i++) s += ALPHABET[pool[used + i]! % 62];
  used += length;
  return s;
}
