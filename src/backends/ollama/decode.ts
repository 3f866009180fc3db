import { GatewayError } from "../../ir/errors.js";
import { newId } from "../../ir/ids.js";
import type { Event } from "../../ir/types.js";
import { type JsonPath, PayloadTemplates } from "../json-template.js";

/**
 * The strings of a line that change from token to token: the slots of its template. `created_at`
 * is a new time on every line.
 */
const SLOTS: readonly JsonPath[] = [["created_at"], ["message", "content"], ["message", "thinking"]];

/** Turns Ollama's NDJSON /api/chat lines into IR events. */
export class OllamaLineDecoder {
  private started = false;
  private sawToolCall = false;
  private doneReason: string | undefined;
  /** The template of the payloads to come (see json-template.ts). */
  private readonly templates: PayloadTemplates;

  /** `templates: false` parses every payload in full: the reference the tests hold the fast path to. */
  constructor(
    private readonly backend: string,
    templates?: boolean,
  ) {
    this.templates = new PayloadTemplates(SLOTS, templates);
  }

  /** Events for one line. Returns true on the `done: true` line. */
  push(line: string, out: Event[]): boolean {
    const same = this.templates.match(line);
    if (same !== undefined) return this.line(same, out);
    let j: any;
    try {
      j = JSON.parse(line);
    } catch {
      throw new GatewayError(
        "api_error",
        `backend ${this.backend} sent a malformed stream line: ${line.slice(0, 200)}`,
        {
          code: "backend_malformed",
          retryable: true,
        },
      );
    }
    if (j?.error === undefined && j?.done === false) this.templates.offer(line, j);
    return this.line(j, out);
  }

  /** Events for one parsed line; reads it and keeps none of its objects (it may be a template's). */
  private line(j: any, out: Event[]): boolean {
    if (typeof j?.error === "string") {
      throw new GatewayError("api_error", `backend ${this.backend} failed mid-answer: ${j.error}`, {
        retryable: true,
      });
    }
    if (!this.started) {
      this.started = true;
      out.push({ type: "start", model: typeof j.model === "string" ? j.model : undefined });
    }
    const msg = j.message;
    if (msg) {
      if (typeof msg.thinking === "string" && msg.thinking)
        out.push({ type: "thinkingDelta", text: msg.thinking });
      if (typeof msg.content === "string" && msg.content) out.push({ type: "textDelta", text: msg.content });
      if (Array.isArray(msg.tool_calls)) {
        for (const tc of msg.tool_calls) {
          const fn = tc?.function ?? {};
          const args = fn.arguments;
          this.sawToolCall = true;
          out.push({
            type: "toolCallStart",
            id: typeof tc.id === "string" && tc.id ? tc.id : newId("call_"),
            name: String(fn.name ?? ""),
          });
          out.push({
            type: "toolCallDelta",
            json: typeof args === "string" ? args : JSON.stringify(args ?? {}),
          });
          out.push({ type: "toolCallEnd" });
        }
      }
    }
    if (j.done === true) {
      this.doneReason = typeof j.done_reason === "string" ? j.done_reason : "stop";
      out.push({
        type: "usage",
        usage: {
          inputTokens: typeof j.prompt_eval_count === "number" ? j.prompt_eval_count : 0,
          outputTokens: typeof j.eval_count === "number" ? j.eval_count : 0,
        },
      });
      return true;
    }
    return false;
  }

  end(out: Event[]): void {
    if (this.doneReason === undefined) {
      throw new GatewayError(
        "api_error",
        `backend ${this.backend} ended its stream without finishing the answer`,
        {
          code: "backend_stream_incomplete",
          retryable: true,
        },
      );
    }
    const reason = this.doneReason === "length" ? "max_tokens" : this.sawToolCall ? "tool_use" : "end_turn";
    out.push({ type: "stop", reason });
  }
}
