import {
  type CallDraft,
  type Candidate,
  couldBe,
  type Env,
  type Step,
  skipWs,
  TAGS,
  WAIT,
} from "./candidate.js";
import { draftsFromJson } from "./json-calls.js";
import { JsonReader } from "./json-reader.js";
import { TOOL_CODE_LANG, toolCodeDrafts } from "./tool-code.js";

const JSON_FENCE_LANGS = new Set(["", "json", "json5", "jsonc"]);

/**
 * A ``` fence at the start of a line. Only ```json (or a bare ```) whose whole content is calls,
 * or Gemma's ```tool_code whose every line is a call (tool-code.ts), is a call; anything else is
 * released at once, and its content is then code: nothing in it starts a candidate until the
 * fence closes.
 */
export class FenceCandidate implements Candidate {
  private bodyStart = -1;
  private cur = 0;
  private readers: JsonReader[] = [];
  private toolCode = false;

  constructor(private readonly env: Env) {}

  step(buf: string, final: boolean): Step {
    if (this.bodyStart < 0) {
      const nl = buf.indexOf("\n", TAGS.fence.length);
      if (nl < 0) {
        if (final || buf.length > 64) return { kind: "reject", release: buf.length, fence: true };
        return WAIT;
      }
      const lang = buf.slice(TAGS.fence.length, nl).trim().toLowerCase();
      this.bodyStart = this.cur = nl + 1;
      this.toolCode = lang === TOOL_CODE_LANG;
      if (!this.toolCode && !JSON_FENCE_LANGS.has(lang)) return this.code();
    }
    if (this.toolCode) return this.stepToolCode(buf, final);
    for (;;) {
      const last = this.readers.at(-1);
      if (last) {
        const r = last.read(buf, final);
        if (r.kind === "wait") return WAIT;
        if (r.kind === "fail") return this.code();
        if (r.truncated) return this.finish(buf.length, true);
        this.cur = r.end;
      }
      const i = skipWs(buf, this.cur);
      if (i >= buf.length) return final ? this.finish(buf.length, true) : WAIT;
      if (buf.startsWith(TAGS.fence, i)) return this.finish(i + TAGS.fence.length, false);
      if (buf[i] === "{" || buf[i] === "[") {
        this.readers.push(new JsonReader(i, true, this.env.tools));
        continue;
      }
      if (!final && couldBe(buf, i, TAGS.fence)) return WAIT;
      return this.code();
    }
  }

  /** A tool_code block: decided once its closing fence (at a line start) has come. */
  private stepToolCode(buf: string, final: boolean): Step {
    let close = -1;
    for (let i = buf.indexOf(TAGS.fence, this.cur); i >= 0; i = buf.indexOf(TAGS.fence, i + 1))
      if (buf[i - 1] === "\n" || /^\n[ \t]*$/.test(buf.slice(buf.lastIndexOf("\n", i - 1), i))) {
        close = i;
        break;
      }
    if (close < 0 && !final) {
      this.cur = Math.max(this.bodyStart, buf.length - TAGS.fence.length);
      return WAIT;
    }
    const bodyEnd = close < 0 ? buf.length : close;
    const drafts = toolCodeDrafts(buf.slice(this.bodyStart, bodyEnd), this.env.tools);
    if (!drafts) return this.code();
    const calls = this.env.finish(drafts, "tool_code", close < 0, []);
    return calls
      ? { kind: "accept", end: close < 0 ? buf.length : close + TAGS.fence.length, calls }
      : this.code();
  }

  /** Not calls: the fence line goes out as text, and the rest is read as inside a code fence. */
  private code(): Step {
    return { kind: "reject", release: this.bodyStart, fence: true };
  }

  private finish(end: number, truncated: boolean): Step {
    const drafts: CallDraft[] = [];
    const repairs: string[] = [];
    for (const reader of this.readers) {
      const r = reader.read("", true);
      if (r.kind !== "ok") return this.code();
      const d = draftsFromJson(r.value, this.env.tools, "arguments", false);
      if (!d) return this.code();
      drafts.push(...d);
      repairs.push(...r.repairs);
    }
    if (drafts.length === 0) return this.code();
    const calls = this.env.finish(drafts, "json_fence", truncated, repairs);
    return calls ? { kind: "accept", end, calls } : this.code();
  }
}
