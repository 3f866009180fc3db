/**
 * Llama 3.2's pythonic calls: a list of Python calls on a line of its own,
 * `[get_weather(city="Paris"), read_file(path="a.txt")]`. The list opens like a JSON array, so
 * a `[` not followed by a name and `(` is handed to the bare JSON reader.
 */
import { BareJsonCandidate } from "./bare-json.js";
import {
  type CallDraft,
  type Candidate,
  type Env,
  REJECT_ONE,
  type Step,
  skipWs,
  WAIT,
} from "./candidate.js";
import { readPythonCall } from "./python-calls.js";

const NAME_START = /[A-Za-z_]/;

export class PythonicCandidate implements Candidate {
  private json: BareJsonCandidate | undefined;
  private pythonic = false;

  constructor(private readonly env: Env) {}

  step(buf: string, final: boolean): Step {
    if (this.json) return this.json.step(buf, final);
    const first = skipWs(buf, 1);
    if (!this.pythonic) {
      if (first >= buf.length) return final ? this.asJson(buf, final) : WAIT;
      if (!NAME_START.test(buf[first]!)) return this.asJson(buf, final);
    }
    const drafts: CallDraft[] = [];
    let i = first;
    for (;;) {
      const c = readPythonCall(buf, i);
      if (c.kind === "wait") {
        if (final) return this.pythonic ? REJECT_ONE : this.asJson(buf, final);
        return WAIT;
      }
      if (c.kind === "fail") return this.pythonic ? REJECT_ONE : this.asJson(buf, final);
      this.pythonic = true;
      const resolved = this.env.tools.resolve(c.name);
      if (!resolved) return REJECT_ONE;
      drafts.push({ name: resolved.tool.name, args: c.args, repairs: resolved.repairs });
      i = skipWs(buf, c.end);
      if (i >= buf.length) return final ? REJECT_ONE : WAIT;
      if (buf[i] === ",") {
        i = skipWs(buf, i + 1);
        continue;
      }
      if (buf[i] !== "]") return REJECT_ONE;
      break;
    }
    const end = i + 1;
    // as for bare JSON: only blanks may follow on its line, or it is an example in prose
    let k = end;
    while (k < buf.length && (buf[k] === " " || buf[k] === "\t" || buf[k] === "\r")) k++;
    if (k >= buf.length && !final) return WAIT;
    if (k < buf.length && buf[k] !== "\n") return REJECT_ONE;
    const calls = this.env.finish(drafts, "pythonic", false, []);
    return calls ? { kind: "accept", end, calls } : REJECT_ONE;
  }

  private asJson(buf: string, final: boolean): Step {
    this.json = new BareJsonCandidate(this.env);
    return this.json.step(buf, final);
  }
}
