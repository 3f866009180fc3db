import {
  type CallDraft,
  type Candidate,
  couldBe,
  type Env,
  isObject,
  REJECT_ONE,
  type Step,
  skipWs,
  TAGS,
  WAIT,
} from "./candidate.js";
import { draftsFromJson } from "./json-calls.js";
import { JsonReader } from "./json-reader.js";

/** `[TOOL_CALLS]` + a JSON array of calls, or the newer `[TOOL_CALLS]name[CALL_ID]id[ARGS]{..}`. */
export class MistralCandidate implements Candidate {
  private reader: JsonReader | undefined;
  private name: string | undefined;
  private nameRepairs: string[] = [];

  constructor(private readonly env: Env) {}

  step(buf: string, final: boolean): Step {
    if (!this.reader) {
      const i = skipWs(buf, TAGS.mistral.length);
      if (i >= buf.length) return final ? REJECT_ONE : WAIT;
      if (buf[i] === "[" || buf[i] === "{") this.reader = new JsonReader(i, false, this.env.tools);
      else {
        const m = /^[\w.-]+/.exec(buf.slice(i, i + 200));
        if (!m) return REJECT_ONE;
        let j = i + m[0].length;
        if (j >= buf.length) return final ? REJECT_ONE : WAIT;
        const resolved = this.env.tools.resolve(m[0]);
        if (!resolved) return REJECT_ONE;
        if (buf.startsWith(TAGS.mistralCallId, j)) {
          const idEnd = buf.indexOf("[", j + TAGS.mistralCallId.length);
          if (idEnd < 0) return final || buf.length - j > 64 ? REJECT_ONE : WAIT;
          j = idEnd;
        } else if (!final && couldBe(buf, j, TAGS.mistralCallId)) return WAIT;
        if (!buf.startsWith(TAGS.mistralArgs, j))
          return !final && couldBe(buf, j, TAGS.mistralArgs) ? WAIT : REJECT_ONE;
        const k = skipWs(buf, j + TAGS.mistralArgs.length);
        if (k >= buf.length) return final ? REJECT_ONE : WAIT;
        this.name = resolved.tool.name;
        this.nameRepairs = resolved.repairs;
        this.reader = new JsonReader(k, false, this.env.tools);
      }
    }
    const r = this.reader.read(buf, final);
    if (r.kind === "wait") return WAIT;
    if (r.kind === "fail") return REJECT_ONE;
    let drafts: CallDraft[] | undefined;
    if (this.name !== undefined) {
      drafts = isObject(r.value)
        ? [{ name: this.name, args: r.value, repairs: this.nameRepairs }]
        : undefined;
    } else drafts = draftsFromJson(r.value, this.env.tools, "arguments", true);
    if (!drafts) return REJECT_ONE;
    const calls = this.env.finish(drafts, "mistral", r.truncated, r.repairs);
    return calls ? { kind: "accept", end: r.end, calls } : REJECT_ONE;
  }
}
