/** `<tool_calls>[{"name": .., "arguments": {..}}, ..]</tool_calls>`: a list of calls in one tag. */
import { type Candidate, couldBe, type Env, REJECT_ONE, type Step, skipWs, TAGS, WAIT } from "./candidate.js";
import { draftsFromJson } from "./json-calls.js";
import { JsonReader } from "./json-reader.js";

/** `<tool_calls>` + a JSON array of calls (or one call) + `</tool_calls>`. */
export class ToolCallsCandidate implements Candidate {
  private body: JsonReader | undefined;

  constructor(private readonly env: Env) {}

  step(buf: string, final: boolean): Step {
    if (!this.body) {
      const i = skipWs(buf, TAGS.toolCalls.length);
      if (i >= buf.length) return final ? REJECT_ONE : WAIT;
      if (buf[i] !== "[" && buf[i] !== "{") return REJECT_ONE;
      this.body = new JsonReader(i, false, this.env.tools, [TAGS.toolCallsEnd]);
    }
    const r = this.body.read(buf, final);
    if (r.kind === "wait") return WAIT;
    if (r.kind === "fail") return REJECT_ONE;
    const i = skipWs(buf, r.end);
    let end = r.end;
    if (buf.startsWith(TAGS.toolCallsEnd, i)) end = i + TAGS.toolCallsEnd.length;
    else if (!final && (i >= buf.length || couldBe(buf, i, TAGS.toolCallsEnd))) return WAIT;
    else if (!final) return REJECT_ONE;
    const drafts = draftsFromJson(r.value, this.env.tools, "arguments", true);
    const calls = drafts && this.env.finish(drafts, "tool_calls", r.truncated, r.repairs);
    return calls ? { kind: "accept", end, calls } : REJECT_ONE;
  }
}
