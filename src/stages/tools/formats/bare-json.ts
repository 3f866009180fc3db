import { type Candidate, type Env, type Step, WAIT } from "./candidate.js";
import { draftsFromJson } from "./json-calls.js";
import { JsonReader } from "./json-reader.js";

/**
 * A bare JSON object or array at the start of a line. The weakest signal of all, so the
 * strictest test: every key a call key, every name an offered tool, arguments present, and
 * nothing after it on its line. Rejected early, the value is followed to its end (`skip`) so
 * its inner lines cannot start candidates of their own.
 */
export class BareJsonCandidate implements Candidate {
  private readonly reader: JsonReader;

  constructor(private readonly env: Env) {
    this.reader = new JsonReader(0, true, env.tools);
  }

  step(buf: string, final: boolean): Step {
    const r = this.reader.read(buf, final);
    if (r.kind === "wait") return WAIT;
    if (r.kind === "fail") {
      const t = this.reader.tracker;
      return t.depth > 0
        ? { kind: "reject", release: this.reader.cur, skip: t }
        : { kind: "reject", release: this.reader.cur };
    }
    const notCall: Step = { kind: "reject", release: r.end };
    // only blanks may follow on its line: JSON with prose after it is an example, not a call
    let i = r.end;
    while (i < buf.length && (buf[i] === " " || buf[i] === "\t" || buf[i] === "\r")) i++;
    if (i >= buf.length && !final) return WAIT;
    if (i < buf.length && buf[i] !== "\n") return notCall;
    const drafts = draftsFromJson(r.value, this.env.tools, "arguments", false);
    const calls = drafts && this.env.finish(drafts, "json", r.truncated, r.repairs);
    return calls ? { kind: "accept", end: r.end, calls } : notCall;
  }
}
