import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A random id in the style the client's SDKs expect (`msg_…`, `toolu_…`, `chatcmpl-…`, `call_…`). */
export function newId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let s = prefix;
  for (let i = 0; i < length; i++) s += ALPHABET[bytes[i]! % 62];
  return s;
}
