/**
 * Following a JSON value as it streams in, to know where it ends (and, strictly, whether it can
 * still be a call) without parsing it again at each piece.
 */
import type { ToolSet } from "./tool-set.js";

/** Keys a JSON call object may have at its top level (bare JSON with any other key is not a call). */
export const CALL_KEYS = new Set([
  "name",
  "arguments",
  "parameters",
  "input",
  "args",
  "type",
  "function",
  "id",
]);

export type TrackStatus = "more" | "done" | "reject" | "stop";

const WS = /\s/;
const KEY_START = /[A-Za-z_$]/;
const KEY_CHAR = /[\w$-]/;

/**
 * Follows a JSON value as it streams in, one character once: bracket depth and strings (double
 * or single quoted, as models write them), so the value's end is known without re-parsing.
 *
 * Strict mode is for bare JSON, where most `{` are not calls: it decides as early as it can
 * that a value is no call — the first top-level key that is not a call key, a `name` that is
 * not an offered tool, an array element that is not an object — so the text is released
 * without waiting for the value to end.
 *
 * `stops`: strings that end the value early when met outside a string (`</tool_call>` after
 * JSON a model forgot to close).
 */
export class JsonTracker {
  depth = 0;
  private quote = "";
  private escape = false;
  private started = false;
  // strict-mode state, about the object(s) where the call keys live
  private top: "" | "object" | "array" = "";
  private state: "" | "key" | "inKey" | "bareKey" | "afterKey" | "value" | "inName" | "inValue" = "";
  private arrayExpectsElement = false;
  private acc = "";
  private lastKey = "";

  constructor(
    private strict: boolean,
    private readonly tools?: ToolSet,
    private readonly stops: readonly string[] = [],
  ) {}

  /**
   * Following the rest of a rejected value: a raw newline inside a string then ends it as done
   * (JSON strings have none, so what looked like a string was prose with an apostrophe).
   */
  skipping = false;

  /** Inside a string right now. */
  get inString(): boolean {
    return this.quote !== "";
  }

  /**
   * Reads s[from, to). `at`: where reading stopped — after the closing bracket (done), after the
   * offending character (reject; the tracker then goes on non-strict, so a caller can keep
   * following the value), at a stop string (stop), or at the end or a possible stop's start (more).
   */
  feed(s: string, from: number, to = s.length): { status: TrackStatus; at: number } {
    for (let i = from; i < to; i++) {
      const c = s[i]!;
      if (this.quote) {
        if (c === "\n" && this.skipping) {
          this.quote = "";
          this.depth = 0;
          return { status: "done", at: i + 1 };
        }
        if (this.escape) this.escape = false;
        else if (c === "\\") this.escape = true;
        else if (c === this.quote) {
          this.quote = "";
          if (this.strict && !this.endString()) return this.reject(i);
          continue;
        }
        if (this.state === "inKey" || this.state === "inName") this.acc += c;
        continue;
      }
      if (!this.started) {
        if (WS.test(c)) continue;
        this.started = true;
        this.depth = 1;
        if (c === "{") {
          this.top = "object";
          this.state = "key";
          continue;
        }
        if (c === "[") {
          this.top = "array";
          this.arrayExpectsElement = true;
          continue;
        }
        this.depth = 0;
        return { status: "reject", at: i + 1 };
      }
      if (c === "<" && this.stops.length) {
        const rest = s.slice(i, i + 16);
        if (this.stops.some((t) => rest.startsWith(t))) return { status: "stop", at: i };
        if (i + 16 > to && this.stops.some((t) => t.startsWith(s.slice(i, to))))
          return { status: "more", at: i };
      }
      const ok = !this.strict || this.check(c);
      if (c === '"' || c === "'") this.quote = c;
      else if (c === "{" || c === "[") this.depth++;
      else if (c === "}" || c === "]") {
        this.depth--;
        if (this.depth === 0) return { status: ok ? "done" : "reject", at: i + 1 };
      }
      if (!ok) return this.reject(i);
    }
    return { status: "more", at: to };
  }

  private reject(i: number): { status: TrackStatus; at: number } {
    this.strict = false;
    this.state = "";
    return { status: "reject", at: i + 1 };
  }

  /** Strict checks for one character outside strings, before it changes the depth. */
  private check(c: string): boolean {
    const ws = WS.test(c);
    if (this.top === "array" && this.depth === 1) {
      if (ws) return true;
      if (this.arrayExpectsElement) {
        this.arrayExpectsElement = false;
        this.state = "key";
        return c === "{";
      }
      if (c === ",") this.arrayExpectsElement = true;
      return c === "," || c === "]";
    }
    if (this.depth !== (this.top === "object" ? 1 : 2)) return true;
    switch (this.state) {
      case "key":
        if (ws || c === "}") return true;
        if (c === '"' || c === "'") {
          this.state = "inKey";
          this.acc = "";
          return true;
        }
        if (KEY_START.test(c)) {
          this.state = "bareKey";
          this.acc = c;
          return true;
        }
        return false;
      case "bareKey":
        if (KEY_CHAR.test(c)) {
          this.acc += c;
          return true;
        }
        this.lastKey = this.acc;
        if (!CALL_KEYS.has(this.lastKey)) return false;
        this.state = "afterKey";
        return this.check(c);
      case "afterKey":
        if (ws) return true;
        if (c !== ":") return false;
        this.state = "value";
        return true;
      case "value":
        if (ws) return true;
        if (this.lastKey === "name") {
          if (c !== '"' && c !== "'") return false;
          this.state = "inName";
          this.acc = "";
          return true;
        }
        this.state = "inValue";
        if (c === ",") this.state = "key";
        return true;
      case "inValue":
        if (c === ",") this.state = "key";
        return true;
      default:
        return true;
    }
  }

  /** Strict checks when a string closes: a key must be a call key, a name an offered tool. */
  private endString(): boolean {
    if (this.depth !== (this.top === "object" ? 1 : 2)) return true;
    if (this.state === "inKey") {
      this.lastKey = this.acc;
      this.state = "afterKey";
      return CALL_KEYS.has(this.lastKey);
    }
    if (this.state === "inName") {
      this.state = "inValue";
      return this.tools?.has(this.acc) ?? true;
    }
    return true;
  }
}
