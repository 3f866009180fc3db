/** Hermes: `<tool_call>{"name": .., "arguments": {..}}</tool_call>` (Qwen 2.5, Hermes, many). */
import {
  type Candidate,
  couldBe,
  type Drafts,
  type Env,
  REJECT_ONE,
  type Step,
  skipWs,
  TAGS,
  WAIT,
} from "./candidate.js";
import { FunctionReader } from "./function.js";
import { draftsFromJson } from "./json-calls.js";
import { JsonReader } from "./json-reader.js";

/** `<tool_call>` + JSON (one call or an array) or a `<function=` body, + `</tool_call>`. */
export class HermesCandidate implements Candidate {
  private body: JsonReader | FunctionReader | undefined;
  private done: Extract<Drafts, { kind: "ok" }> | undefined;

  constructor(private readonly env: Env) {}

  step(buf: string, final: boolean): Step {
    if (!this.body) {
      let i = skipWs(buf, TAGS.toolCall.length);
      // some models fence the JSON inside the tag
      if (buf.startsWith(TAGS.fence, i)) {
        const nl = buf.indexOf("\n", i);
        if (nl < 0) return final ? REJECT_ONE : WAIT;
        i = skipWs(buf, nl + 1);
      } else if (!final && couldBe(buf, i, TAGS.fence)) return WAIT;
      if (i >= buf.length) return final ? REJECT_ONE : WAIT;
      const c = buf[i];
      if (c === "{" || c === "[") this.body = new JsonReader(i, false, this.env.tools, [TAGS.toolCallEnd]);
      else if (buf.startsWith(TAGS.function, i)) this.body = new FunctionReader(i, this.env.tools);
      else return !final && couldBe(buf, i, TAGS.function) ? WAIT : REJECT_ONE;
    }
    if (!this.done) {
      const r = this.readBody(buf, final);
      if (r.kind === "wait") return WAIT;
      if (r.kind === "fail") return REJECT_ONE;
      this.done = r;
    }
    // after the body: an optional closing fence, stray closing brackets, then </tool_call>
    const r = this.done;
    let i = skipWs(buf, r.end);
    if (buf.startsWith(TAGS.fence, i)) i = skipWs(buf, i + TAGS.fence.length);
    let stray = false;
    while (buf[i] === "}" || buf[i] === "]") {
      i = skipWs(buf, i + 1);
      stray = true;
    }
    let end = r.end;
    const repairs = [...r.repairs];
    if (buf.startsWith(TAGS.toolCallEnd, i)) {
      end = i + TAGS.toolCallEnd.length;
      if (stray) repairs.push("extra_brackets");
    } else if (
      !final &&
      (i >= buf.length || couldBe(buf, i, TAGS.toolCallEnd) || couldBe(buf, i, TAGS.fence))
    )
      return WAIT;
    const calls = this.env.finish(r.drafts, r.format, r.truncated, repairs);
    return calls ? { kind: "accept", end, calls } : REJECT_ONE;
  }

  private readBody(buf: string, final: boolean): Drafts {
    if (this.body instanceof FunctionReader) return this.body.read(buf, final);
    const r = this.body!.read(buf, final);
    if (r.kind !== "ok") return r;
    const drafts = draftsFromJson(r.value, this.env.tools, "arguments", true);
    if (!drafts) return { kind: "fail" };
    return { kind: "ok", end: r.end, truncated: r.truncated, drafts, repairs: r.repairs, format: "hermes" };
  }
}
