/**
 * `<function=name>` bodies: Qwen3-Coder's `<parameter=key>value</parameter>` (format
 * `qwen3_coder`), or a JSON object as Llama 3.1 writes custom tool calls (format `llama3`).
 * Used on its own and inside Hermes' `<tool_call>`.
 */
import type { Tool } from "../../../ir/types.js";
import { parseJsonLenient } from "../repair.js";
import {
  type Candidate,
  type Drafts,
  type Env,
  isObject,
  REJECT_ONE,
  type Step,
  skipWs,
  TAGS,
  WAIT,
  couldBe,
} from "./candidate.js";
import { JsonReader } from "./json-reader.js";
import type { ToolSet } from "./tool-set.js";

/**
 * The arguments of a Qwen3-Coder function body. Values are raw text: one newline after the
 * opening tag and before the closing one is layout, not content. A value is turned into a
 * number, object... by the schema (as Qwen's own parser does), so here it stays a string unless
 * the schema wants otherwise: `typed` does that per parameter.
 */
function parseFunctionParameters(
  body: string,
  typed: (key: string, raw: string) => unknown,
): { args: Record<string, unknown>; repairs: string[] } {
  const args: Record<string, unknown> = {};
  const repairs: string[] = [];
  const re = /<parameter=([^>\n]+)>([\s\S]*?)(?:<\/parameter>|(?=<parameter=)|$)/g;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const key = m[1]!.trim();
    let raw = m[2]!;
    if (!m[0].endsWith("</parameter>")) repairs.push("unclosed_parameter");
    if (raw.startsWith("\n")) raw = raw.slice(1);
    if (raw.endsWith("\n")) raw = raw.slice(0, -1);
    args[key] = typed(key, raw);
  }
  return { args, repairs };
}

/** A parameter's raw text as the schema wants it: strings stay raw, anything else parsed if it can be. */
function typedParameter(tool: Tool, key: string, raw: string): unknown {
  const props = tool.inputSchema.properties;
  const schema = isObject(props) && isObject(props[key]) ? props[key] : undefined;
  const type = schema?.type;
  const types = typeof type === "string" ? [type] : Array.isArray(type) ? type : [];
  if (types.includes("string")) return raw;
  const parsed = parseJsonLenient(raw.trim());
  if (parsed && (types.length > 0 || typeof parsed.value !== "string")) return parsed.value;
  // unknown schema type and not JSON: the text itself (the schema coercion may still convert it)
  return raw;
}

/**
 * `<function=name>` then Qwen3-Coder `<parameter=k>v</parameter>`s, or a JSON object (Llama 3.1
 * custom tools), then `</function>`. The name must be an offered tool, or it is no call.
 */
export class FunctionReader {
  private tool: Tool | undefined;
  private bodyStart = -1;
  private json: JsonReader | undefined;
  private searchFrom = 0;

  constructor(
    private readonly start: number,
    private readonly tools: ToolSet,
  ) {}

  read(buf: string, final: boolean): Drafts {
    if (!this.tool) {
      const from = this.start + TAGS.function.length;
      const gt = buf.indexOf(">", from);
      if (gt < 0) {
        const partial = buf.slice(from);
        return final || partial.length > 128 || partial.includes("\n") ? { kind: "fail" } : WAIT;
      }
      const resolved = this.tools.resolve(buf.slice(from, gt).trim());
      if (!resolved) return { kind: "fail" };
      this.tool = resolved.tool;
      this.bodyStart = gt + 1;
      this.searchFrom = this.bodyStart;
    }
    const tool = this.tool;
    const i = skipWs(buf, this.bodyStart);
    if (!this.json && buf[i] === "{") this.json = new JsonReader(i, false, this.tools, [TAGS.functionEnd]);
    if (this.json) {
      const r = this.json.read(buf, final);
      if (r.kind !== "ok") return r;
      if (!isObject(r.value)) return { kind: "fail" };
      const j = skipWs(buf, r.end);
      let end = r.end;
      if (buf.startsWith(TAGS.functionEnd, j)) end = j + TAGS.functionEnd.length;
      else if (!final && couldBe(buf, j, TAGS.functionEnd)) return WAIT;
      const draft = { name: tool.name, args: r.value, repairs: [] };
      return {
        kind: "ok",
        end,
        truncated: r.truncated,
        drafts: [draft],
        repairs: r.repairs,
        format: "llama3",
      };
    }
    if (i >= buf.length) return final ? this.qwen(buf, buf.length, buf.length, true) : WAIT;
    if (!buf.startsWith(TAGS.parameter, i) && !buf.startsWith(TAGS.functionEnd, i)) {
      if (!final && (couldBe(buf, i, TAGS.parameter) || couldBe(buf, i, TAGS.functionEnd))) return WAIT;
      return { kind: "fail" };
    }
    const close = buf.indexOf(TAGS.functionEnd, this.searchFrom);
    if (close >= 0) return this.qwen(buf, close, close + TAGS.functionEnd.length, false);
    if (final) return this.qwen(buf, buf.length, buf.length, true);
    this.searchFrom = Math.max(this.bodyStart, buf.length - TAGS.functionEnd.length + 1);
    return WAIT;
  }

  private qwen(buf: string, bodyEnd: number, end: number, truncated: boolean): Drafts {
    const tool = this.tool!;
    const body = buf.slice(this.bodyStart, bodyEnd);
    const { args, repairs } = parseFunctionParameters(body, (k, raw) => typedParameter(tool, k, raw));
    const draft = { name: tool.name, args, repairs };
    return { kind: "ok", end, truncated, drafts: [draft], repairs: [], format: "qwen3_coder" };
  }
}

/** A `<function=name>` on its own (Qwen3-Coder without the wrapper, Llama 3.1 custom tools). */
export class FunctionCandidate implements Candidate {
  private readonly reader: FunctionReader;

  constructor(private readonly env: Env) {
    this.reader = new FunctionReader(0, env.tools);
  }

  step(buf: string, final: boolean): Step {
    const r = this.reader.read(buf, final);
    if (r.kind === "wait") return WAIT;
    if (r.kind === "fail") return REJECT_ONE;
    const calls = this.env.finish(r.drafts, r.format, r.truncated, r.repairs);
    return calls ? { kind: "accept", end: r.end, calls } : REJECT_ONE;
  }
}
