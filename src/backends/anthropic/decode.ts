import { GatewayError, type ErrorKind } from "../../ir/errors.js";
import type { Event, StopReason } from "../../ir/types.js";
import { type JsonPath, PayloadTemplates } from "../json-template.js";

/** The strings of a content_block_delta that change from token to token: the slots of its template. */
const SLOTS: readonly JsonPath[] = [
  ["delta", "text"],
  ["delta", "thinking"],
  ["delta", "partial_json"],
];

const STOP: Record<string, StopReason> = {
  end_turn: "end_turn",
  max_tokens: "max_tokens",
  stop_sequence: "stop_sequence",
  tool_use: "tool_use",
  refusal: "refusal",
  pause_turn: "end_turn",
};

const ERROR_KINDS: Record<string, ErrorKind> = {
  invalid_request_error: "invalid_request",
  authentication_error: "api_error",
  permission_error: "api_error",
  not_found_error: "not_found",
  request_too_large: "request_too_large",
  rate_limit_error: "rate_limit",
  api_error: "api_error",
  overloaded_error: "overloaded",
};

/** Turns Anthropic's SSE events into IR events. */
export class AnthropicEventDecoder {
  private blockType: string | undefined;
  private stop: { reason: StopReason; seq?: string } | undefined;
  private finished = false;
  /** The template of the payloads to come (see json-template.ts). */
  private readonly templates: PayloadTemplates;

  /** `templates: false` parses every payload in full: the reference the tests hold the fast path to. */
  constructor(
    private readonly backend: string,
    templates?: boolean,
  ) {
    this.templates = new PayloadTemplates(SLOTS, templates);
  }

  /** Returns true on message_stop. */
  push(data: string, out: Event[]): boolean {
    const same = this.templates.match(data);
    if (same !== undefined) return this.event(same, out);
    let ev: any;
    try {
      ev = JSON.parse(data);
    } catch {
      throw new GatewayError(
        "api_error",
        `backend ${this.backend} sent a malformed event: ${data.slice(0, 200)}`,
        {
          code: "backend_malformed",
          retryable: true,
        },
      );
    }
    if (ev?.type === "content_block_delta") this.templates.offer(data, ev);
    return this.event(ev, out);
  }

  /** Events for one parsed event; reads it and keeps none of its objects (it may be a template's). */
  private event(ev: any, out: Event[]): boolean {
    switch (ev?.type) {
      case "message_start": {
        const m = ev.message ?? {};
        out.push({ type: "start", id: m.id, model: m.model });
        if (m.usage) out.push({ type: "usage", usage: usageOf(m.usage) });
        break;
      }
      case "content_block_start": {
        const b = ev.content_block ?? {};
        this.blockType = b.type;
        if (b.type === "text" && b.text) out.push({ type: "textDelta", text: b.text });
        else if (b.type === "tool_use" || b.type === "server_tool_use") {
          out.push({ type: "toolCallStart", id: b.id, name: b.name });
          if (b.input && Object.keys(b.input).length)
            out.push({ type: "toolCallDelta", json: JSON.stringify(b.input) });
        } else if (b.type === "thinking" && b.thinking) out.push({ type: "thinkingDelta", text: b.thinking });
        else if (b.type === "redacted_thinking")
          out.push({ type: "thinkingDelta", text: "", redacted: b.data ?? "" });
        break;
      }
      case "content_block_delta": {
        const d = ev.delta ?? {};
        if (d.type === "text_delta") out.push({ type: "textDelta", text: d.text ?? "" });
        else if (d.type === "input_json_delta")
          out.push({ type: "toolCallDelta", json: d.partial_json ?? "" });
        else if (d.type === "thinking_delta") out.push({ type: "thinkingDelta", text: d.thinking ?? "" });
        else if (d.type === "signature_delta")
          out.push({ type: "thinkingDelta", text: "", signature: d.signature ?? "" });
        break;
      }
      case "content_block_stop":
        if (this.blockType === "tool_use" || this.blockType === "server_tool_use")
          out.push({ type: "toolCallEnd" });
        this.blockType = undefined;
        break;
      case "message_delta":
        if (ev.delta?.stop_reason) {
          this.stop = {
            reason: STOP[ev.delta.stop_reason] ?? "end_turn",
            seq: ev.delta.stop_sequence ?? undefined,
          };
        }
        if (ev.usage) out.push({ type: "usage", usage: usageOf(ev.usage) });
        break;
      case "message_stop":
        this.finished = true;
        return true;
      case "error": {
        const kind = ERROR_KINDS[ev.error?.type] ?? "api_error";
        throw new GatewayError(
          kind,
          `backend ${this.backend} failed mid-answer: ${ev.error?.message ?? "unknown error"}`,
          {
            retryable: true,
          },
        );
      }
      default:
        break; // ping and future event types
    }
    return false;
  }

  end(out: Event[]): void {
    if (!this.finished || !this.stop) {
      throw new GatewayError(
        "api_error",
        `backend ${this.backend} ended its stream without finishing the answer`,
        {
          code: "backend_stream_incomplete",
          retryable: true,
        },
      );
    }
    out.push({
      type: "stop",
      reason: this.stop.reason,
      ...(this.stop.seq ? { stopSequence: this.stop.seq } : {}),
    });
  }
}

function usageOf(u: any) {
  const usage: {
    inputTokens?: number;
    outputTokens?: number;
    cacheReadTokens?: number;
    cacheWriteTokens?: number;
  } = {};
  if (typeof u.input_tokens === "number") usage.inputTokens = u.input_tokens;
  if (typeof u.output_tokens === "number") usage.outputTokens = u.output_tokens;
  if (typeof u.cache_read_input_tokens === "number") usage.cacheReadTokens = u.cache_read_input_tokens;
  if (typeof u.cache_creation_input_tokens === "number")
    usage.cacheWriteTokens = u.cache_creation_input_tokens;
  return usage;
}
