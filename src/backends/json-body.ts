import { fastPath } from "../fast-paths.js";
import type { Tool } from "../ir/types.js";

/**
 * Request bodies for the backends, written straight to bytes. An agent sends the same large
 * things on every turn — a system prompt of tens of KB, its tool definitions, the tool results
 * of the history — and `JSON.stringify` escapes each of them again, character by character, into
 * a string that Node then measures, joins to the request head and encodes to UTF-8 once more.
 * Here a long string's JSON text is kept as bytes, found again by its content (for a long string
 * a lookup is a length-keyed hash and one memory compare), and a tool definition's by its name,
 * checked against the schema it was made from. The body is a Buffer: it goes to the socket as it is.
 */

/** Strings at least this long have their JSON text kept for the next request. */
export const LONG_STRING = 64;
/** Bytes of JSON text kept at most, over all the long strings (their keys are as big again). */
const STRING_BUDGET = 4 * 1024 * 1024;
/** Long strings kept at most. */
const MAX_STRINGS = 8192;
/** A string whose JSON text is bigger than this is not kept (a large image, say). */
const MAX_ENTRY = STRING_BUDGET / 4;
/** Text gathered before it is encoded into the body. */
const FLUSH_AT = 8192;

/** JSON text already encoded, written as it is into a body. */
export class RawJson {
  constructor(readonly bytes: Buffer[]) {}
}

/** What writes a body: text as it is, strings and values as JSON. */
export interface JsonWriter {
  /** JSON text, written as it is. */
  add(text: string): void;
  /** A string as JSON (a long one from the cache). */
  str(s: string): void;
  /** Any JSON value, as JSON.stringify would write it. */
  value(v: unknown): void;
  /** JSON text already encoded, written as it is. */
  bytes(b: Buffer): void;
}

/** A value that writes its own JSON text into the body, where it stands. */
export class JsonText {
  constructor(readonly write: (w: JsonWriter) => void) {}
}

interface Kept {
  key: string;
  bytes: Buffer;
  used: number;
}

/**
 * A cheap fingerprint of a string: its length and a few characters spread over it. V8 hashes
 * every character of a string up to 16K long before a Map can look it up (about 2 ns a
 * character, half of what escaping it costs); the fingerprint finds the few candidates, and `===`
 * (a memory compare) settles it.
 */
function fingerprint(s: string): number {
  const n = s.length;
  let h = n;
  const step = n >>> 3 || 1;
  for (let i = n >>> 4; i < n; i += step) h = Math.imul(h ^ s.charCodeAt(i), 0x9e3779b1);
  return (h ^ s.charCodeAt(n - 1)) >>> 0;
}

/** A content-keyed cache of the JSON text of long strings, least recently used dropped first. */
class StringCache {
  private readonly map = new Map<number, Kept | Kept[]>();
  private size = 0;
  private count = 0;
  private tick = 0;
  hits = 0;
  misses = 0;

  get(s: string): Buffer {
    const h = fingerprint(s);
    const slot = this.map.get(h);
    if (slot !== undefined) {
      if (!Array.isArray(slot)) {
        if (slot.key === s) return this.hit(slot);
      } else {
        for (const kept of slot) if (kept.key === s) return this.hit(kept);
      }
    }
    this.misses++;
    const bytes = own(Buffer.from(JSON.stringify(s)));
    if (bytes.length <= MAX_ENTRY) {
      const kept: Kept = { key: s, bytes, used: ++this.tick };
      if (slot === undefined) this.map.set(h, kept);
      else if (Array.isArray(slot)) slot.push(kept);
      else this.map.set(h, [slot, kept]);
      this.size += bytes.length;
      this.count++;
      if (this.size > STRING_BUDGET || this.count > MAX_STRINGS) this.evict();
    }
    return bytes;
  }

  private hit(kept: Kept): Buffer {
    kept.used = ++this.tick;
    this.hits++;
    return kept.bytes;
  }

  /** Drops the least recently used entries until half the budget is free. */
  private evict(): void {
    const all: Kept[] = [];
    for (const slot of this.map.values()) {
      if (Array.isArray(slot)) all.push(...slot);
      else all.push(slot);
    }
    all.sort((a, b) => a.used - b.used);
    const drop = new Set<Kept>();
    for (const kept of all) {
      if (this.size <= STRING_BUDGET / 2 && this.count <= MAX_STRINGS / 2) break;
      drop.add(kept);
      this.size -= kept.bytes.length;
      this.count--;
    }
    for (const [h, slot] of this.map) {
      if (!Array.isArray(slot)) {
        if (drop.has(slot)) this.map.delete(h);
        continue;
      }
      const left = slot.filter((k) => !drop.has(k));
      if (!left.length) this.map.delete(h);
      else this.map.set(h, left.length === 1 ? left[0]! : left);
    }
  }

  clear(): void {
    this.map.clear();
    this.size = 0;
    this.count = 0;
  }
}

const strings = new StringCache();

/**
 * Bytes that hold no more memory than their own: a small Buffer is a slice of a shared 8 KB pool,
 * and one kept for long would keep the whole slab.
 */
function own(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return b;
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

/** The cache's counters, for tests and the benchmark. */
export function jsonCacheStats(): { hits: number; misses: number } {
  return { hits: strings.hits, misses: strings.misses };
}

/** Empties the caches (tests). */
export function clearJsonCache(): void {
  strings.clear();
  strings.hits = 0;
  strings.misses = 0;
  for (const c of toolCaches) c.clear();
}

/**
 * Buffers bodies are written into. A body is handed out as a view of one; whoever made it gives
 * it back with `releaseBody` once the socket is done with the bytes (the backends do, when
 * `postJson` calls their `onBodyDone`), and the
 * next body is written into it: no buffer the size of a body is allocated, filled and copied per
 * request (fresh memory costs more to fill than the copy itself). A body never given back is
 * simply collected.
 */
const free: Buffer[] = [];
/** The bytes of the free buffers. */
let freeBytes = 0;
/** Buffers given out as bodies and not given back (a body is given back once). */
const lent = new WeakSet<ArrayBufferLike>();
/**
 * Free buffers kept: as many as requests at once may give back (below 64, a gateway under load
 * would drop most of what came back and allocate anew for the next requests: garbage outside the
 * JavaScript heap, 64 KiB a request), within 4 MiB, none larger than 1 MiB.
 */
const FREE_MAX = 64;
const FREE_BYTES_MAX = 4 * 1024 * 1024;
const POOLED_MAX = 1024 * 1024;
const FIRST_SIZE = 64 * 1024;

/** The largest free buffer (a body then seldom has to grow), or a new one. */
function takeBuffer(): Buffer {
  if (!free.length) return Buffer.allocUnsafeSlow(FIRST_SIZE);
  let best = 0;
  for (let i = 1; i < free.length; i++) if (free[i]!.length > free[best]!.length) best = i;
  const b = free[best]!;
  free[best] = free[free.length - 1]!;
  free.pop();
  freeBytes -= b.length;
  return b;
}

/** Keeps a buffer for the next body; when the pool is full, in place of smaller ones. */
function giveBack(b: Buffer): void {
  if (b.length > POOLED_MAX) return;
  // make room by dropping the smallest free buffers, as long as they are smaller than this one
  while (free.length >= FREE_MAX || freeBytes + b.length > FREE_BYTES_MAX) {
    if (!free.length) return;
    let least = 0;
    for (let i = 1; i < free.length; i++) if (free[i]!.length < free[least]!.length) least = i;
    const dropped = free[least]!;
    if (dropped.length >= b.length) return;
    free[least] = free[free.length - 1]!;
    free.pop();
    freeBytes -= dropped.length;
  }
  free.push(b);
  freeBytes += b.length;
}

/**
 * Gives a body `jsonBody` made back to be written over: its maker does, once the HTTP client says
 * no request writes it any more (`onBodyDone`). Only for one the caller will not read again, nor
 * anything it lent it to; anything else (a string, a buffer the pool never lent, one given back
 * already) is ignored.
 */
export function releaseBody(body: string | Buffer): void {
  if (typeof body === "string") return;
  const ab = body.buffer;
  if (body.byteOffset !== 0 || !lent.has(ab)) return;
  lent.delete(ab);
  giveBack(Buffer.from(ab));
}

/**
 * Gathers a body's JSON text as bytes: small text joined into a string and encoded into the
 * buffer every few KB, kept bytes copied in as they are. Nothing the size of the whole body is
 * made in the JavaScript heap. A pooled writer writes a body (`jsonBody`) into a buffer of the
 * pool and hands it out as it is; another (a fragment kept for later) copies its bytes out.
 */
class BodyWriter implements JsonWriter {
  private buf: Buffer;
  private at = 0;
  private text = "";

  constructor(private readonly pooled = false) {
    this.buf = pooled ? takeBuffer() : Buffer.allocUnsafe(4096);
  }

  add(s: string): void {
    this.text += s;
    if (this.text.length >= FLUSH_AT) this.flush();
  }

  bytes(b: Buffer): void {
    this.flush();
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  private flush(): void {
    const text = this.text;
    if (!text) return;
    this.text = "";
    // a UTF-16 unit is at most 3 bytes of UTF-8
    this.room(text.length * 3);
    this.at += this.buf.write(text, this.at);
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const old = this.buf;
    const size = Math.max(old.length * 2, this.at + n);
    this.buf = this.pooled ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
    this.buf.set(old.subarray(0, this.at));
    if (this.pooled) giveBack(old);
  }

  finish(): Buffer {
    this.flush();
    if (!this.pooled) {
      const out = Buffer.allocUnsafe(this.at);
      this.buf.copy(out, 0, 0, this.at);
      return out;
    }
    lent.add(this.buf.buffer);
    return this.buf.subarray(0, this.at);
  }

  /** Gives the buffer back after a failure. */
  done(): void {
    if (this.pooled) giveBack(this.buf);
  }

  str(s: string): void {
    if (s.length >= LONG_STRING) this.bytes(strings.get(s));
    else this.add(JSON.stringify(s));
  }

  /** Writes a JSON value as JSON.stringify would, long strings from the cache. */
  value(v: unknown): void {
    if (typeof v === "string") {
      this.str(v);
      return;
    }
    if (v === null || typeof v !== "object") {
      // numbers, booleans; undefined and functions have no JSON text (arrays write null for them)
      this.add(JSON.stringify(v) ?? "null");
      return;
    }
    if (v instanceof RawJson) {
      for (const b of v.bytes) this.bytes(b);
      return;
    }
    if (v instanceof JsonText) {
      v.write(this);
      return;
    }
    if (Array.isArray(v)) {
      this.add("[");
      for (let i = 0; i < v.length; i++) {
        if (i) this.add(",");
        this.value(v[i]);
      }
      this.add("]");
      return;
    }
    if (typeof (v as { toJSON?: unknown }).toJSON === "function") {
      this.add(JSON.stringify(v));
      return;
    }
    this.add("{");
    let first = true;
    for (const k in v) {
      if (!Object.hasOwn(v, k)) continue;
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || typeof x === "function" || typeof x === "symbol") continue;
      if (!first) this.add(",");
      first = false;
      this.add(keyText(k));
      this.value(x);
    }
    this.add("}");
  }
}

/** `"key":` for the keys seen (a body has a handful of distinct keys, written hundreds of times). */
const KEYS = new Map<string, string>();

function keyText(k: string): string {
  let t = KEYS.get(k);
  if (t === undefined) {
    t = `${JSON.stringify(k)}:`;
    if (KEYS.size < 1024) KEYS.set(k, t);
  }
  return t;
}

/**
 * The JSON text of `value` as UTF-8 bytes: what `Buffer.from(JSON.stringify(value))` gives, with
 * long strings and `RawJson` parts taken as they are kept, `JsonText` parts writing themselves. For
 * plain JSON data (objects, arrays, strings, numbers, booleans, null), which is what the encoders
 * build. The bytes are a view of a pooled buffer: `releaseBody` gives it back when they are sent.
 */
export function jsonBody(value: unknown): Buffer {
  const w = new BodyWriter(fastPath("body-pool"));
  try {
    w.value(value);
  } catch (e) {
    w.done();
    throw e;
  }
  return w.finish();
}

interface KeptTool {
  description: string | undefined;
  /** The schema the bytes were made from, as a token list (see `tokens`). */
  schema: unknown[];
  bytes: Buffer;
}

/** Tool definitions kept per name; a cache holds at most this many. */
const MAX_TOOLS = 256;
const toolCaches: ToolCache[] = [];

/**
 * The JSON text of tool definitions in one wire's shape, kept per tool name and used again while
 * the name, description and schema are the same (compared as values, key order included).
 */
export class ToolCache {
  private readonly map = new Map<string, KeptTool>();

  constructor(private readonly render: (t: Tool) => unknown) {
    toolCaches.push(this);
  }

  /** The tools as one JSON array. */
  array(tools: Tool[]): RawJson {
    const parts: Buffer[] = [OPEN];
    for (let i = 0; i < tools.length; i++) {
      if (i) parts.push(COMMA);
      parts.push(this.one(tools[i]!));
    }
    parts.push(CLOSE);
    return new RawJson(parts);
  }

  private one(t: Tool): Buffer {
    const kept = this.map.get(t.name);
    if (
      kept &&
      kept.description === t.description &&
      matches(t.inputSchema, kept.schema, 0) === kept.schema.length
    )
      return kept.bytes;
    const w = new BodyWriter();
    w.value(this.render(t));
    const bytes = own(w.finish());
    if (!kept && this.map.size >= MAX_TOOLS) this.map.clear();
    this.map.set(t.name, { description: t.description, schema: tokens(t.inputSchema, []), bytes });
    return bytes;
  }

  clear(): void {
    this.map.clear();
  }
}

/** Markers in a token list. */
const OBJECT = Symbol("{");
const ARRAY = Symbol("[");
const END = Symbol("}");

/**
 * A JSON value as a flat list: primitives as they are, objects as OBJECT key value … END,
 * arrays as ARRAY value … END. Comparing a value with it walks the value once, allocating nothing.
 */
function tokens(v: unknown, out: unknown[]): unknown[] {
  if (v === null || typeof v !== "object") out.push(v);
  else if (Array.isArray(v)) {
    out.push(ARRAY);
    for (const x of v) tokens(x, out);
    out.push(END);
  } else {
    out.push(OBJECT);
    for (const k in v) {
      out.push(k);
      tokens((v as Record<string, unknown>)[k], out);
    }
    out.push(END);
  }
  return out;
}

/** Where `v` ends in the token list if it matches it from `at`, or -1. */
function matches(v: unknown, t: unknown[], at: number): number {
  if (v === null || typeof v !== "object") return t[at] === v ? at + 1 : -1;
  if (Array.isArray(v)) {
    if (t[at] !== ARRAY) return -1;
    at++;
    for (let i = 0; i < v.length; i++) {
      at = matches(v[i], t, at);
      if (at < 0) return -1;
    }
    return t[at] === END ? at + 1 : -1;
  }
  if (t[at] !== OBJECT) return -1;
  at++;
  for (const k in v) {
    if (t[at] !== k) return -1;
    at = matches((v as Record<string, unknown>)[k], t, at + 1);
    if (at < 0) return -1;
  }
  return t[at] === END ? at + 1 : -1;
}

const OPEN = Buffer.from("[");
const COMMA = Buffer.from(",");
const CLOSE = Buffer.from("]");
