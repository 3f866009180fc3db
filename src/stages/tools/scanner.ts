/**
 * Finds tool calls that a model wrote as text, in a stream of text pieces. Text that cannot be
 * part of a call is given back at once; text that might be is held only until that is decided.
 *
 * Scanning is incremental: a regular expression jumps from one trigger character (`<`, `[`,
 * `{`, a backtick) to the next, so plain prose costs one pass and is never held. At a trigger, a
 * candidate for the format it may start (see formats/index.ts) takes the text from there and says,
 * piece by piece, whether to wait, accept calls, or reject (the text goes out as it came).
 */
import type { Tool } from "../../ir/types.js";
import {
  type CallDraft,
  type Candidate,
  type Env,
  type JsonTracker,
  OPENERS,
  type Opener,
  type ScanCall,
  TAGS,
  type ToolFormat,
  ToolSet,
} from "./formats/index.js";
import { coerceToSchema } from "./repair.js";

export type { ScanCall, ToolFormat } from "./formats/index.js";

export type ScanOutput = { type: "text"; text: string } | { type: "thinking"; text: string } | ScanCall;

/** Openers by their first character, tags in the order OPENERS lists them. */
const BY_FIRST = new Map<string, Array<[string, Opener]>>();
for (const o of OPENERS)
  for (const tag of o.tags) {
    const list = BY_FIRST.get(tag[0]!) ?? [];
    list.push([tag, o]);
    BY_FIRST.set(tag[0]!, list);
  }
const charClass = (cs: Iterable<string>) =>
  new RegExp(`[${[...new Set(cs)].map((c) => c.replace(/[\\\]^-]/g, "\\$&")).join("")}]`, "g");
/**
 * Characters where something may start: an opener, inline code (a backtick), `<think>`.
 * Everything between two of them is plain text.
 */
const TRIGGER = charClass([...BY_FIRST.keys(), "`", "<"]);
/** In a rejected JSON value being followed to its end: only tags start candidates. */
const TAG_TRIGGER = charClass(OPENERS.filter((o) => !o.lineStart).flatMap((o) => o.tags.map((t) => t[0]!)));
/** In inline code: only its end (a backtick, or the end of the line) matters. */
const INLINE_END = /[`\n]/g;
const THINK_OPEN = "<think>";
const THINK_CLOSE = "</think>";
/** A candidate holding more than this is given up (its text goes out): holding is for calls. */
const MAX_HOLD = 1 << 20;
const MISSING = "required, missing";
/** Held candidates longer than this are stepped lazily (see push). */
const LAZY_ABOVE = 4096;

export class ToolCallScanner {
  private readonly env: Env;
  /** Text not yet given out: a held candidate (from index 0) or a trigger cut at the piece's end. */
  private buf = "";
  /** Pieces not yet appended to `buf` while a long candidate is held (see push). */
  private tail: string[] = [];
  private tailLength = 0;
  private candidate: Candidate | undefined;
  /** Only blanks since the last newline (or the start) before `buf`. */
  private lineStart = true;
  /** Inside a code fence that is not a call: nothing starts a candidate until it closes. */
  private fence = false;
  /** Following a JSON value that was rejected, so its inner lines do not trigger. */
  private skip: JsonTracker | undefined;
  /** Inside `inline code` (a tag or JSON there is quoted, not made). */
  private inline = false;
  /** Inside a `<think>` block of the text. */
  private think = false;
  private out: ScanOutput[] = [];

  constructor(tools: readonly Tool[] | ToolSet) {
    const set = tools instanceof ToolSet ? tools : new ToolSet(tools);
    this.env = { tools: set, finish: (d, f, t, r) => this.finish(d, f, t, r) };
  }

  /** Feeds a piece of text; returns what is decided so far, in order. */
  push(text: string): ScanOutput[] {
    if (!text) return [];
    // The common case, cheaply: nothing held and no trigger in the piece.
    if (!this.buf && !this.candidate && !this.skip && !this.inline) {
      TRIGGER.lastIndex = 0;
      if (!TRIGGER.test(text)) {
        this.lineStart = lineStartAfter(text, this.lineStart);
        return [{ type: "text", text }];
      }
    }
    // A long candidate (a call writing a file, say) is looked at again only once what came since
    // is a quarter of it: appending to a long string and reading it copies it whole each time,
    // so stepping at every piece would be quadratic. Its decision is at most that much later.
    if (this.candidate && this.buf.length > LAZY_ABOVE) {
      this.tail.push(text);
      this.tailLength += text.length;
      if (this.tailLength * 4 < this.buf.length) return [];
    } else this.tail.push(text);
    this.buf += this.tail.join("");
    this.tail = [];
    this.tailLength = 0;
    return this.run(false);
  }

  /** The text is over: decides what is still held (a cut-off call is repaired if it can be). */
  end(): ScanOutput[] {
    this.buf += this.tail.join("");
    this.tail = [];
    this.tailLength = 0;
    const out = this.run(true);
    this.buf = "";
    this.candidate = undefined;
    this.lineStart = true;
    this.fence = false;
    this.skip = undefined;
    this.inline = false;
    this.think = false;
    return out;
  }

  private run(final: boolean): ScanOutput[] {
    while (this.buf.length) {
      if (!this.candidate) {
        if (!this.scan(final)) break;
        continue;
      }
      let step = this.candidate.step(this.buf, final);
      if (step.kind === "wait") {
        if (final) step = { kind: "reject", release: 1 };
        else if (this.buf.length > MAX_HOLD) step = { kind: "reject", release: 1 };
        else break;
      }
      this.candidate = undefined;
      if (step.kind === "accept") {
        for (const l of step.lead ?? []) if (l.text) this.out.push({ type: l.type, text: l.text });
        for (const c of step.calls) this.out.push(c);
        this.buf = this.buf.slice(step.end);
        this.lineStart = false;
      } else {
        this.emit(Math.max(1, step.release));
        if (step.fence) this.fence = true;
        if (step.skip) {
          step.skip.skipping = true;
          this.skip = step.skip;
        }
      }
    }
    const out = this.out;
    this.out = [];
    return out;
  }

  /**
   * Scans `buf` for the next candidate from its start, giving out the plain text before it.
   * Returns true when a candidate starts (at index 0 of `buf`), false when the scan is done
   * for now (all text out, or a possible trigger cut off at the end kept back).
   */
  private scan(final: boolean): boolean {
    const buf = this.buf;
    let i = 0;
    while (i < buf.length) {
      const re = this.inline ? INLINE_END : this.skip ? TAG_TRIGGER : TRIGGER;
      re.lastIndex = i;
      const m = re.exec(buf);
      const j = m ? m.index : buf.length;
      if (this.skip) {
        const r = this.skip.feed(buf, i, j);
        if (r.status === "done") {
          this.skip = undefined;
          i = r.at;
          continue;
        }
      }
      if (!m) return this.emitAll(buf.length);
      i = j + 1;
      const c = buf[j]!;
      if (this.inline) {
        if (c === "\n") this.inline = false;
        else {
          const run = backticks(buf, j);
          if (j + run >= buf.length && !final) return this.hold(j);
          this.inline = false;
          i = j + run;
        }
        continue;
      }
      if (this.fence) {
        if (c !== "`" || !this.lineStartAt(j)) continue;
        if (buf.startsWith(TAGS.fence, j)) {
          this.fence = false;
          i = j + TAGS.fence.length;
        } else if (!final && TAGS.fence.startsWith(buf.slice(j))) return this.hold(j);
        continue;
      }
      // while following a rejected value, a tag inside one of its strings is not one
      const starts = this.skip?.inString ? undefined : this.opener(buf, j, c, final);
      if (starts === "hold") return this.hold(j);
      if (starts) {
        this.skip = undefined;
        this.emit(j);
        this.candidate = starts(this.env);
        return true;
      }
      if (c === "`" && !this.skip) {
        // a run of backticks opens inline code; a run cut by the end of the piece may be longer
        const run = backticks(buf, j);
        if (j + run >= buf.length && !final) return this.hold(j);
        this.inline = true;
        i = j + run;
        continue;
      }
      if (c === "<" && !this.skip) {
        if (buf.startsWith(THINK_OPEN, j)) this.think = true;
        else if (buf.startsWith(THINK_CLOSE, j)) this.think = false;
        else if (!final && (couldStart(buf, j, THINK_OPEN) || couldStart(buf, j, THINK_CLOSE)))
          return this.hold(j);
      }
      if (this.skip) {
        const r = this.skip.feed(buf, j, j + 1);
        if (r.status === "done") this.skip = undefined;
      }
    }
    return this.emitAll(buf.length);
  }

  /** What a trigger at `j` starts: a candidate's maker, "hold" (cut off, may be one), or nothing. */
  private opener(
    buf: string,
    j: number,
    c: string,
    final: boolean,
  ): ((env: Env) => Candidate) | "hold" | undefined {
    for (const [tag, o] of BY_FIRST.get(c) ?? []) {
      if (o.lineStart && (this.skip || !this.lineStartAt(j))) continue;
      if (buf.startsWith(tag, j)) return o.make;
      if (!final && couldStart(buf, j, tag)) return "hold";
    }
    return undefined;
  }

  /** Only blanks between the last newline (or what came before `buf`) and index `j`. */
  private lineStartAt(j: number): boolean {
    let k = j - 1;
    while (k >= 0 && isBlank(this.buf[k]!)) k--;
    return k < 0 ? this.lineStart : this.buf[k] === "\n";
  }

  /** Keeps `buf` from `j` on (a trigger cut off at the end of the piece), gives out the rest. */
  private hold(j: number): false {
    this.emit(j);
    return false;
  }

  private emitAll(n: number): false {
    this.emit(n);
    return false;
  }

  /** Gives out the first `n` characters of `buf` as text. */
  private emit(n: number): void {
    if (n <= 0) return;
    this.lineStart = this.lineStartAt(n);
    const text = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    const last = this.out.at(-1);
    if (last?.type === "text") last.text += text;
    else this.out.push({ type: "text", text });
  }

  /** Drafts checked against their tools' schemas; see Env.finish. */
  private finish(drafts: CallDraft[], format: ToolFormat, truncated: boolean, repairs: string[]) {
    const calls: ScanCall[] = [];
    for (const d of drafts) {
      const tool = this.env.tools.resolve(d.name)?.tool;
      if (!tool) return undefined;
      const c = coerceToSchema(d.args, tool.inputSchema);
      if (truncated && c.problems.some((p) => p.endsWith(MISSING))) return undefined;
      const all = new Set([...repairs, ...d.repairs, ...c.repairs]);
      if (truncated) all.add("truncated");
      const call: ScanCall = {
        type: "call",
        name: tool.name,
        input: c.input,
        format,
        repairs: [...all],
        problems: c.problems,
      };
      if (this.think) call.thinking = true;
      calls.push(call);
    }
    return calls;
  }
}

/** The length of the run of backticks at `j`. */
function backticks(buf: string, j: number): number {
  let k = j;
  while (buf[k] === "`") k++;
  return k - j;
}

function isBlank(c: string): boolean {
  return c === " " || c === "\t" || c === "\r";
}

/** `buf` from `j` to its end is a beginning of `word`, too short to tell. */
function couldStart(buf: string, j: number, word: string): boolean {
  return buf.length - j < word.length && word.startsWith(buf.slice(j));
}

/** Whether the position after `text` is at the start of a line (only blanks since a newline). */
function lineStartAfter(text: string, before: boolean): boolean {
  let k = text.length - 1;
  while (k >= 0 && isBlank(text[k]!)) k--;
  return k < 0 ? before : text[k] === "\n";
}
