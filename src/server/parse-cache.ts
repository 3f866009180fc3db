import { isAscii } from "node:buffer";
import { fastPath } from "../fast-paths.js";
import { deepFreeze } from "../ir/frozen.js";

/**
 * JSON.parse of request bodies that repeat what came before. An agent sends its whole conversation
 * on every turn: the same system prompt, tool definitions and history, and a new turn at the end.
 * The body's bytes are compared with the bodies seen last (a memory compare), and the top-level
 * members and `messages` elements they share, whole, are taken as they were parsed then; only
 * the rest is decoded and parsed. What comes out is what JSON.parse of the whole body gives
 * (same keys, same order, same values), frozen all the way down — every body, whatever its size
 * and whether the cache is on (`parse-cache` in fast-paths.ts) or not — so that no request can
 * change what another one reads, and code that tries fails in every test. A body that does not
 * parse, or anything unusual (a `__proto__` or repeated key at the top level), goes through
 * JSON.parse whole, which throws its own error.
 */

/** Bodies smaller than this are parsed whole: there is little to save. */
const MIN_BYTES = 16 * 1024;
/** Bodies larger than this are parsed whole and not remembered (images, mostly). */
const MAX_BYTES = 4 * 1024 * 1024;
/** Bodies remembered (each with what it parsed to): about one per conversation going on at once. */
const ENTRIES = 8;
/** Bytes of bodies remembered, at most. */
const BUDGET = 16 * 1024 * 1024;
/** The key the rest of `messages` is parsed under (never a real one: such a body is parsed whole). */
const TAIL = "\u0000clawbridge:tail";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;

interface Entry {
  bytes: Buffer;
  /**
   * What a body parsed whole parsed to, frozen: its members and elements are found (a scan of
   * its bytes) only once a later body shares enough of them.
   */
  parsed?: Record<string, unknown>;
  /** Top-level members, in order, each with the offset just after the comma before it (0 for the first). */
  members: Array<{ key: string; value: unknown; at: number }>;
  /** Which member is `messages` (an array), or -1. */
  messagesAt: number;
  /** Elements of `messages`, each with the offset just after the comma before it (0 for the first). */
  elements: Array<{ value: unknown; at: number }>;
  /** Where a later body can take over (see `cutsOf`), found once. */
  cuts?: Array<[at: number, members: number, elements: number]>;
}

/** Where a new body can take over from an entry: everything before `at` is the entry's. */
interface Cut {
  entry: Entry;
  at: number;
  /** Members taken whole. */
  members: number;
  /** Elements of `messages` taken, when the cut is inside it (-1: a cut between members). */
  elements: number;
}

export interface ParseStats {
  bodies: number;
  /** Bodies parsed from an earlier one, and the bytes not parsed again. */
  reused: number;
  reusedBytes: number;
}

export class BodyParser {
  private entries: Entry[] = [];
  readonly stats: ParseStats = { bodies: 0, reused: 0, reusedBytes: 0 };

  /** JSON.parse of the body's UTF-8 bytes, frozen all the way down; throws what JSON.parse throws. */
  parse(bytes: Buffer): unknown {
    this.stats.bodies++;
    if (!fastPath("parse-cache") || bytes.length < MIN_BYTES || bytes.length > MAX_BYTES)
      return parseFrozen(bytes);
    const cut = this.bestCut(bytes);
    let out: Record<string, unknown> | undefined;
    if (cut) {
      try {
        out = this.resume(bytes, cut);
      } catch {
        out = undefined;
      }
    }
    if (!out) {
      const whole: unknown = JSON.parse(text(bytes, 0));
      if (whole !== null && typeof whole === "object" && !Array.isArray(whole)) {
        // its own copy of the top level (a request may change that), and the values frozen
        const parsed: Record<string, unknown> = { ...whole };
        let frozen = true;
        for (const k of Object.keys(parsed)) if (freeze(k, parsed[k]) < 0) frozen = false;
        if (frozen) this.keep({ bytes, parsed, members: [], messagesAt: -1, elements: [] }, undefined);
      }
      // the members are frozen (and remembered as such) already: this walks the top level only
      deepFreeze(whole);
      return whole;
    }
    this.stats.reused++;
    this.stats.reusedBytes += cut!.at;
    deepFreeze(out);
    return out;
  }

  /** The furthest cut of any entry that the body shares all the bytes before. */
  private bestCut(bytes: Buffer): Cut | undefined {
    let best: Cut | undefined;
    // less than this in common, and the body is parsed whole
    const enough = Math.max(MIN_BYTES, bytes.length >>> 2);
    for (const entry of [...this.entries]) {
      if (bytes.length < enough || entry.bytes.length < enough) continue;
      if (bytes.compare(entry.bytes, 0, enough, 0, enough) !== 0) continue;
      if (entry.parsed && !this.prepare(entry)) continue;
      entry.cuts ??= cutsOf(entry);
      const cuts = entry.cuts;
      // the furthest cut whose bytes before it are the same: bytes shared up to a cut are shared
      // up to every earlier one, so only the bytes past the furthest one found so far are compared
      let lo = 0;
      let hi = cuts.length - 1;
      let found = -1;
      let same = enough;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const at = cuts[mid]![0];
        if (at <= same || (at <= bytes.length && bytes.compare(entry.bytes, same, at, same, at) === 0)) {
          found = mid;
          if (at > same) same = at;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (found < 0) continue;
      const [at, members, elements] = cuts[found]!;
      if (at >= enough && (!best || at > best.at)) best = { entry, at, members, elements };
    }
    return best;
  }

  /** Parses the body from a cut on; undefined when it must be parsed whole. */
  private resume(bytes: Buffer, cut: Cut): Record<string, unknown> | undefined {
    const { entry, at } = cut;
    // right after a comma a value or member must follow: `}` or `]` here is a trailing comma
    const first = firstNonSpace(bytes, at);
    if (first < 0 || bytes[first] === 0x7d || bytes[first] === 0x5d) return undefined;
    const inMessages = cut.elements >= 0;
    const rest = text(bytes, at);
    const tail = JSON.parse(inMessages ? `{${JSON.stringify(TAIL)}:[${rest}` : `{${rest}`) as Record<
      string,
      unknown
    >;
    // what the rest holds: its top-level keys, and where its members and elements start
    const scan = scanRest(bytes, at, inMessages);
    if (!scan || scan.keys.includes(TAIL) || scan.keys.includes("__proto__")) return undefined;
    const out: Record<string, unknown> = {};
    const members: Entry["members"] = [];
    /** Whether the body can be remembered: no repeated key, nothing too deep to freeze. */
    let keepable = true;
    let messagesAt = -1;
    let elements: Entry["elements"] = [];
    for (let i = 0; i < cut.members; i++) {
      const m = entry.members[i]!;
      if (i === entry.messagesAt) {
        out[m.key] = entry.elements.map((e) => e.value);
        messagesAt = i;
        elements = entry.elements;
      } else out[m.key] = m.value;
      members.push(m);
    }
    if (inMessages) {
      const more = tail[TAIL] as unknown[];
      if (scan.elementCuts.length !== more.length) return undefined;
      const head = entry.elements.slice(0, cut.elements);
      out.messages = [...head.map((e) => e.value), ...more];
      members.push(entry.members[cut.members]!);
      messagesAt = cut.members;
      for (const value of more) if (deepFreeze(value, 1) < 0) keepable = false;
      elements = [...head, ...more.map((value, k) => ({ value, at: scan.elementCuts[k]! }))];
    }
    // a key the rest repeats: parsed as JSON.parse would (last wins), but not remembered
    const seen = new Set(members.map((m) => m.key));
    for (let k = 0; k < scan.keys.length; k++) {
      const key = scan.keys[k]!;
      if (seen.has(key)) keepable = false;
      seen.add(key);
      const value = tail[key];
      out[key] = value;
      if (key === "messages" && Array.isArray(value)) {
        if (scan.messagesCuts.length !== value.length) keepable = false;
        messagesAt = members.length;
        if (freeze(key, value) < 0) keepable = false;
        elements = value.map((v, i) => ({ value: v, at: scan.messagesCuts[i] ?? -1 }));
        members.push({ key, value: undefined, at: scan.memberCuts[k]! });
      } else {
        if (freeze(key, value) < 0) keepable = false;
        members.push({ key, value, at: scan.memberCuts[k]! });
      }
    }
    if (keepable) this.keep({ bytes, members, messagesAt, elements }, entry);
    return out;
  }

  /**
   * Finds the members and elements of a body parsed whole, the first time a later body shares
   * enough of it. False (and the entry dropped) when that cannot be done.
   */
  private prepare(entry: Entry): boolean {
    const o = entry.parsed!;
    entry.parsed = undefined;
    const bytes = entry.bytes;
    const scan = scanRest(bytes, firstNonSpace(bytes, 0) + 1, false);
    const keys = Object.keys(o);
    // a repeated or odd key: JSON.parse kept one of them; not worth telling which
    const usable =
      scan !== undefined &&
      keys.length === scan.keys.length &&
      !scan.keys.includes("__proto__") &&
      !scan.keys.includes(TAIL) &&
      keys.every((k, i) => k === scan.keys[i]);
    if (!usable) {
      this.entries.splice(this.entries.indexOf(entry), 1);
      return false;
    }
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const value = o[key];
      if (key === "messages" && Array.isArray(value)) {
        if (scan.messagesCuts.length !== value.length) {
          this.entries.splice(this.entries.indexOf(entry), 1);
          return false;
        }
        entry.messagesAt = i;
        entry.elements = value.map((v, k) => ({ value: v, at: scan.messagesCuts[k]! }));
        entry.members.push({ key, value: undefined, at: scan.memberCuts[i]! });
      } else entry.members.push({ key, value, at: scan.memberCuts[i]! });
    }
    return true;
  }

  /** Keeps an entry in place of the one it grew from, or of the oldest. */
  private keep(entry: Entry, from: Entry | undefined): void {
    const i = from ? this.entries.indexOf(from) : -1;
    if (i >= 0) this.entries.splice(i, 1);
    this.entries.push(entry);
    let bytes = 0;
    for (const e of this.entries) bytes += e.bytes.length;
    while (this.entries.length > ENTRIES || bytes > BUDGET) bytes -= this.entries.shift()!.bytes.length;
  }
}

/**
 * JSON.parse of a body, frozen all the way down (and not remembered as frozen: nothing of it is
 * shared with another body). The simple way, and the way of bodies the cache does not keep.
 */
export function parseFrozen(bytes: Buffer): unknown {
  const v: unknown = JSON.parse(text(bytes, 0));
  deepFreeze(v);
  return v;
}

/** An entry's cuts, in order: after each top-level member but the last, and each `messages` element but the last. */
function cutsOf(entry: Entry): Array<[number, number, number]> {
  const cuts: Array<[number, number, number]> = [];
  for (let i = 1; i < entry.members.length; i++) cuts.push([entry.members[i]!.at, i, -1]);
  if (entry.messagesAt >= 0)
    for (let j = 1; j < entry.elements.length; j++) cuts.push([entry.elements[j]!.at, entry.messagesAt, j]);
  cuts.sort((a, b) => a[0] - b[0]);
  return cuts;
}

interface Scan {
  /** Top-level keys from the scan's start, in order. */
  keys: string[];
  /** For each key, the offset just after the comma before it (the start, for the first). */
  memberCuts: number[];
  /** When the scan starts inside `messages`: for each element from there, where it starts. */
  elementCuts: number[];
  /** When `messages` begins within the scan: for each of its elements, where it starts. */
  messagesCuts: number[];
}

/**
 * Finds the top-level members and `messages` elements of a body that JSON.parse took, from
 * `from` on: just after `{` or a comma between members, or (`inMessages`) just after `[` or a
 * comma inside `messages`. Strings are skipped with indexOf; only structure is looked at.
 * Undefined when the bytes are not what was expected.
 */
function scanRest(b: Buffer, from: number, inMessages: boolean): Scan | undefined {
  const keys: string[] = [];
  const memberCuts: number[] = [];
  const elementCuts: number[] = [];
  const messagesCuts: number[] = [];
  const n = b.length;
  let depth = inMessages ? 2 : 1;
  /** The depth of the elements of `messages`, while inside it; 0 elsewhere. */
  let msgDepth = inMessages ? 2 : 0;
  /** Where the starts of `messages` elements go. */
  let starts = inMessages ? elementCuts : messagesCuts;
  /** Where the next element of `messages` starts, until its first token is seen. */
  let pendingElement = inMessages ? from : -1;
  /** Where the next member starts, until its key is seen. */
  let pendingMember = inMessages ? -1 : from;
  let expectKey = !inMessages;
  /** The key just read, whose value comes next. */
  let keyOfValue: string | undefined;
  for (let i = from; i < n; i++) {
    const c = b[i]!;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === COLON) continue;
    if (c === COMMA) {
      if (depth === 1) {
        expectKey = true;
        pendingMember = i + 1;
      } else if (depth === msgDepth) pendingElement = i + 1;
      continue;
    }
    if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth < msgDepth) msgDepth = 0;
      if (depth === 0) return { keys, memberCuts, elementCuts, messagesCuts };
      continue;
    }
    if (depth === 1 && expectKey) {
      if (c !== QUOTE || pendingMember < 0) return undefined;
      const end = closingQuote(b, i + 1);
      if (end < 0) return undefined;
      keyOfValue = JSON.parse(text(b, i, end + 1)) as string;
      keys.push(keyOfValue);
      memberCuts.push(pendingMember);
      pendingMember = -1;
      expectKey = false;
      i = end;
      continue;
    }
    // a value starts here
    if (depth === msgDepth && pendingElement >= 0) {
      starts.push(pendingElement);
      pendingElement = -1;
    }
    const messagesValue = depth === 1 && keyOfValue === "messages";
    if (depth === 1) keyOfValue = undefined;
    if (c === QUOTE) {
      const end = closingQuote(b, i + 1);
      if (end < 0) return undefined;
      i = end;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      depth++;
      if (messagesValue && c === 0x5b) {
        // a second `messages`: its elements would mix with the first's
        if (messagesCuts.length || msgDepth) return undefined;
        msgDepth = 2;
        starts = messagesCuts;
        pendingElement = i + 1;
      }
      continue;
    }
    // a number, true, false or null: to its end
    while (i + 1 < n) {
      const d = b[i + 1]!;
      if (d === COMMA || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09)
        break;
      i++;
    }
  }
  return undefined;
}

/** The index of the quote that closes a string whose content starts at `from`, or -1. */
function closingQuote(b: Buffer, from: number): number {
  let i = from;
  for (;;) {
    const q = b.indexOf(QUOTE, i);
    if (q < 0) return -1;
    let slashes = 0;
    for (let k = q - 1; k >= from && b[k] === BACKSLASH; k--) slashes++;
    if ((slashes & 1) === 0) return q;
    i = q + 1;
  }
}

function firstNonSpace(b: Buffer, from: number): number {
  for (let i = from; i < b.length; i++) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
  }
  return -1;
}

/** UTF-8 bytes as a string; ASCII (most JSON) by the cheaper one-byte copy. */
export function text(b: Buffer, from: number, to = b.length): string {
  const part = from === 0 && to === b.length ? b : b.subarray(from, to);
  return part.toString(isAscii(part) ? "latin1" : "utf8");
}

/**
 * Freezes a top-level member's value (see `ir/frozen.ts`), remembered as frozen with its height,
 * and each element of `messages` with its own: the next body that shares them neither freezes
 * nor measures them again.
 */
function freeze(key: string, value: unknown): number {
  if (key === "messages" && Array.isArray(value)) {
    let h = 0;
    for (const v of value) {
      const c = deepFreeze(v, 1);
      if (c < 0) return -1;
      if (c > h) h = c;
    }
    Object.freeze(value);
    return h + 1;
  }
  return deepFreeze(value, 1);
}
