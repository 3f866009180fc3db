/**
 * Llama 3: `<|python_tag|>{"name": .., "parameters": {..}}` (several separated by `;`), or a
 * built-in tool called as `<|python_tag|>name.call(k="v")`.
 */
import {
  type CallDraft,
  type Candidate,
  couldBe,
  type Env,
  REJECT_ONE,
  type Step,
  skipWs,
  TAGS,
  WAIT,
} from "./candidate.js";
import { draftsFromJson } from "./json-calls.js";
import { JsonReader } from "./json-reader.js";
import { closingParen, parsePythonKwargs } from "./python-calls.js";

/** Llama's end-of-message tokens, printed by servers that do not strip them. */
const LLAMA_EOM = ["<|eom_id|>", "<|eot_id|>"];

/**
 * `<|python_tag|>` + JSON calls (`{"name", "parameters"}`, several separated by `;`) or a
 * built-in tool call `name.call(key="value")`; an end-of-message token after it is swallowed.
 */
export class PythonTagCandidate implements Candidate {
  private readers: JsonReader[] = [];
  /** How many readers' values are already in `drafts`. */
  private taken = 0;
  private drafts: CallDraft[] = [];
  private repairs: string[] = [];
  private truncated = false;

  constructor(private readonly env: Env) {}

  step(buf: string, final: boolean): Step {
    let i = skipWs(buf, TAGS.pythonTag.length);
    if (this.readers.length === 0) {
      if (i >= buf.length) return final ? REJECT_ONE : WAIT;
      if (buf[i] !== "{") return this.pythonCall(buf, i, final);
      this.readers.push(new JsonReader(i, false, this.env.tools, LLAMA_EOM));
    }
    for (;;) {
      const reader = this.readers.at(-1)!;
      const r = reader.read(buf, final);
      if (r.kind === "wait") return WAIT;
      if (r.kind === "fail") return REJECT_ONE;
      if (this.taken < this.readers.length) {
        this.taken++;
        const d = draftsFromJson(r.value, this.env.tools, "parameters", true);
        if (!d) return REJECT_ONE;
        this.drafts.push(...d);
        this.repairs.push(...r.repairs);
        this.truncated ||= r.truncated;
      }
      i = skipWs(buf, r.end);
      if (buf[i] === ";") {
        const k = skipWs(buf, i + 1);
        if (k >= buf.length && !final) return WAIT;
        if (buf[k] === "{") {
          this.readers.push(new JsonReader(k, false, this.env.tools, LLAMA_EOM));
          continue;
        }
        return this.accept(buf, i + 1, final);
      }
      if (i >= buf.length && !final) return WAIT;
      return this.accept(buf, r.end, final);
    }
  }

  private accept(buf: string, end: number, final: boolean): Step {
    const i = skipWs(buf, end);
    const eom = LLAMA_EOM.find((t) => buf.startsWith(t, i));
    if (eom) end = i + eom.length;
    else if (!final && LLAMA_EOM.some((t) => couldBe(buf, i, t))) return WAIT;
    const calls = this.env.finish(this.drafts, "llama3", this.truncated, this.repairs);
    return calls ? { kind: "accept", end, calls } : REJECT_ONE;
  }

  /** `brave_search.call(query="...")`: Llama's built-in tool syntax, for offered tools of that name. */
  private pythonCall(buf: string, i: number, final: boolean): Step {
    const m = /^[A-Za-z_][\w.]*/.exec(buf.slice(i, i + 200));
    if (!m) return REJECT_ONE;
    const open = i + m[0].length;
    if (open >= buf.length) return final ? REJECT_ONE : WAIT;
    if (buf[open] !== "(" || !m[0].endsWith(".call")) return REJECT_ONE;
    const resolved = this.env.tools.resolve(m[0].slice(0, -".call".length));
    if (!resolved) return REJECT_ONE;
    const close = closingParen(buf, open);
    if (close < 0) return final ? REJECT_ONE : WAIT;
    const args = parsePythonKwargs(buf.slice(open + 1, close));
    if (!args) return REJECT_ONE;
    this.drafts = [{ name: resolved.tool.name, args, repairs: resolved.repairs }];
    return this.accept(buf, close + 1, final);
  }
}
