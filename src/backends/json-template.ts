import { fastPath } from "../fast-paths.js";

/** The way to a value inside a JSON document: member names and array indexes. */
export type JsonPath = readonly (string | number)[];

/**
 * Templates that no payload matched, after which a stream is parsed in full only: a server whose
 * payloads differ in more than the slots (a counter, a time) would otherwise have one made per token.
 */
const BARREN_LIMIT = 8;
/** Candidates parsed in full before one is made a template: a short answer never uses one (a role chunk, one or two tokens). */
const FIRST_CANDIDATES = 2;

/** A stream decoder's template: the last candidate payload parsed in full, and when to stop making them. */
export class PayloadTemplates {
  private template: JsonTemplate | undefined;
  private barren: number;
  private candidates = 0;

  /**
   * `enabled: false` parses every payload in full: the simple way, and the reference the tests hold
   * the fast path to; by default, the `templates` fast path's setting (fast-paths.ts).
   */
  constructor(
    private readonly slots: readonly JsonPath[],
    enabled = fastPath("templates"),
  ) {
    this.barren = enabled ? 0 : BARREN_LIMIT;
  }

  /** Payloads the current template matched. */
  get hits(): number {
    return this.template?.hits ?? 0;
  }

  /** Whether templates were given up on (or disabled). */
  get givenUp(): boolean {
    return this.barren >= BARREN_LIMIT;
  }

  /** The value `text` parses to when it matches the template, else undefined. */
  match(text: string): any {
    return this.template?.match(text);
  }

  /** A payload parsed in full that could be the pattern of the next ones. */
  offer(text: string, value: unknown): void {
    if (this.barren >= BARREN_LIMIT || ++this.candidates <= FIRST_CANDIDATES) return;
    const template = JsonTemplate.of(text, value, this.slots);
    if (!template) return;
    if (this.template?.hits === 0) this.barren++;
    this.template = template;
  }
}

/**
 * A parsed stream payload kept as the pattern of the next ones. Servers write each token's payload
 * with the same bytes but for a few strings (the token's text, a timestamp), and `JSON.parse` of
 * the whole payload is most of what a token costs. A payload whose bytes around those strings (the
 * slots) are this one's, with a well-formed string literal in each slot, parses to this one's value
 * with only the slots' strings changed: every fixed stretch of bytes is entered in the same state of
 * the JSON grammar (the start of the text, or just after a string), so it reads as the same tokens,
 * and each slot is one string token at the same place, so it fills the same member. `match` checks
 * that and reads only the strings; the value is reused with them written in, so a decoder must read
 * it and keep none of its objects. Anything else (`undefined`) is parsed in full, errors included.
 */
export class JsonTemplate {
  /** Payloads matched since it was made. */
  hits = 0;
  private readonly strings: string[];

  private constructor(
    /** The payload's value; the slots' strings are written into it on each match. */
    readonly value: any,
    /** The bytes before each slot, then the bytes after the last. */
    private readonly fixed: string[],
    /** The object (or array) that holds each slot, and the slot's key in it. */
    private readonly holders: any[],
    private readonly keys: (string | number)[],
  ) {
    this.strings = new Array<string>(keys.length).fill("");
  }

  /**
   * A template of `text` (which parsed to `value`) with a slot for each of `paths` that holds a
   * string there; undefined when none does. A path counts only when the text has exactly one value
   * on it, a string, and `value` holds that string there through arrays at the indexes and objects
   * at the names: then the value came from that literal and no repeated member shadows it.
   */
  static of(text: string, value: unknown, paths: readonly JsonPath[]): JsonTemplate | undefined {
    // the parsed value says cheaply whether there is a string to look for
    const holders: unknown[] = [];
    let any = false;
    for (const path of paths) {
      let holder: unknown = value;
      for (let k = 0; k < path.length - 1 && holder !== undefined; k++) holder = step(holder, path[k]!);
      if (holder !== undefined && typeof step(holder, path[path.length - 1]!) === "string") any = true;
      else holder = undefined;
      holders.push(holder);
    }
    if (!any) return undefined;
    let spans: number[];
    try {
      spans = valueSpans(text, paths);
    } catch {
      return undefined; // not the JSON it should be: no template
    }
    const slots: Array<{ start: number; end: number; holder: any; key: string | number }> = [];
    for (let p = 0; p < paths.length; p++) {
      const start = spans[2 * p]!;
      const end = spans[2 * p + 1]!;
      const holder = holders[p];
      if (holder === undefined || start < 0 || text.charCodeAt(start) !== 0x22) continue;
      const path = paths[p]!;
      const key = path[path.length - 1]!;
      if (step(holder, key) !== JSON.parse(text.slice(start, end))) continue;
      slots.push({ start, end, holder, key });
    }
    if (!slots.length) return undefined;
    slots.sort((a, b) => a.start - b.start);
    const fixed: string[] = [];
    let at = 0;
    for (const s of slots) {
      fixed.push(text.slice(at, s.start));
      at = s.end;
    }
    fixed.push(text.slice(at));
    return new JsonTemplate(
      value,
      fixed,
      slots.map((s) => s.holder),
      slots.map((s) => s.key),
    );
  }

  /** The value `text` parses to when it matches, else undefined. */
  match(text: string): any {
    const fixed = this.fixed;
    const n = this.keys.length;
    const len = text.length;
    let at = 0;
    for (let s = 0; s < n; s++) {
      const before = fixed[s]!;
      // a slice compared whole is several times faster than startsWith (V8 12, Node 20)
      if (text.slice(at, at + before.length) !== before) return undefined;
      at += before.length;
      if (text.charCodeAt(at) !== 0x22) return undefined;
      // the literal runs to the first quote not escaped; a raw control character is not JSON
      let j = at + 1;
      let escaped = false;
      for (;;) {
        if (j >= len) return undefined;
        const c = text.charCodeAt(j);
        if (c === 0x22) break;
        if (c === 0x5c) {
          escaped = true;
          j += 2;
          continue;
        }
        if (c < 0x20) return undefined;
        j++;
      }
      if (!escaped) this.strings[s] = text.slice(at + 1, j);
      else {
        try {
          this.strings[s] = JSON.parse(text.slice(at, j + 1));
        } catch {
          return undefined;
        }
      }
      at = j + 1;
    }
    const after = fixed[n]!;
    if (len - at !== after.length || text.slice(at) !== after) return undefined;
    for (let s = 0; s < n; s++) this.holders[s][this.keys[s]!] = this.strings[s];
    this.hits++;
    return this.value;
  }
}

/** A member of an object or an element of an array, the kind of container checked; else undefined. */
function step(container: unknown, key: string | number): unknown {
  if (typeof key === "number") return Array.isArray(container) ? container[key] : undefined;
  if (container === null || typeof container !== "object" || Array.isArray(container)) return undefined;
  return Object.hasOwn(container, key) ? (container as Record<string, unknown>)[key] : undefined;
}

/**
 * Where the value on each of `paths` lies in `text`, JSON that `JSON.parse` took: its start and end
 * offsets, pairwise, or -1 and -1 when the path has no value or more than one (a repeated member).
 * Member names are compared decoded, indexes counted. Iterative, so nesting depth costs no stack.
 */
function valueSpans(text: string, paths: readonly JsonPath[]): number[] {
  const spans = new Array<number>(paths.length * 2).fill(-1);
  const seen = new Array<number>(paths.length).fill(0);
  const path: (string | number)[] = [];
  const inArray: boolean[] = [];
  const len = text.length;
  let i = 0;
  const ws = (): void => {
    let c = text.charCodeAt(i);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++i);
  };
  const stringEnd = (from: number): number => {
    let j = from + 1;
    for (;;) {
      if (j >= len) throw new SyntaxError("unterminated string");
      const c = text.charCodeAt(j);
      if (c === 0x22) return j + 1;
      j += c === 0x5c ? 2 : 1;
    }
  };
  const key = (): string => {
    ws();
    const start = i;
    i = stringEnd(start);
    const literal = text.slice(start, i);
    ws();
    i++; // the colon
    return literal.includes("\\") ? (JSON.parse(literal) as string) : literal.slice(1, -1);
  };
  /** The index of the path that is `path` now, or -1. */
  const which = (): number => {
    for (let p = 0; p < paths.length; p++) {
      const want = paths[p]!;
      if (want.length !== path.length) continue;
      let k = 0;
      while (k < want.length && want[k] === path[k]) k++;
      if (k === want.length) return p;
    }
    return -1;
  };
  for (;;) {
    ws();
    const start = i;
    const p = which();
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      i++;
      ws();
      if (text.charCodeAt(i) === (c === 0x7b ? 0x7d : 0x5d)) i++;
      else {
        // a container's members have paths of their own; its own span is not needed
        if (p >= 0) seen[p] = 2;
        inArray.push(c === 0x5b);
        path.push(c === 0x5b ? 0 : key());
        continue;
      }
    } else if (c === 0x22) i = stringEnd(i);
    else {
      // a number, true, false or null: runs to a delimiter
      let d = c;
      while (
        i < len &&
        d !== 0x2c &&
        d !== 0x7d &&
        d !== 0x5d &&
        d !== 0x20 &&
        d !== 0x0a &&
        d !== 0x0d &&
        d !== 0x09
      )
        d = text.charCodeAt(++i);
    }
    if (p >= 0) {
      seen[p] = (seen[p] ?? 0) + 1;
      spans[2 * p] = start;
      spans[2 * p + 1] = i;
    }
    // after a value: the next member or element, or the end of its containers
    for (;;) {
      if (!inArray.length) {
        for (let q = 0; q < paths.length; q++) {
          if (seen[q] !== 1) spans[2 * q] = spans[2 * q + 1] = -1;
        }
        return spans;
      }
      ws();
      const d = text.charCodeAt(i++);
      if (d === 0x2c) {
        const top = path.length - 1;
        path[top] = inArray[top] ? (path[top] as number) + 1 : key();
        break;
      }
      if (d !== 0x7d && d !== 0x5d) throw new SyntaxError("not JSON");
      inArray.pop();
      path.pop();
    }
  }
}
