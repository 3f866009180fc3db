import { mergeUsage } from "../../ir/collect.js";
import type { GatewayError } from "../../ir/errors.js";
import type { Event, Request, Response, Usage } from "../../ir/types.js";
import type { ErrorAnswer, ResponseMeta, StreamEncoder } from "../types.js";

const ERROR_TYPES: Record<GatewayError["kind"], string> = {
  invalid_request: "invalid_request_error",
  context_length: "invalid_request_error",
  authentication: "authentication_error",
  permission: "permission_error",
  not_found: "not_found_error",
  request_too_large: "request_too_large",
  // Anthropic has no 408 of its own: the request was at fault
  request_timeout: "invalid_request_error",
  rate_limit: "rate_limit_error",
  api_error: "api_error",
  // Anthropic's own type for a server-side failure; 503, which the SDKs and Claude Code retry
  unavailable: "api_error",
  overloaded: "overloaded_error",
  timeout: "timeout_error",
};

function anthropicErrorBody(err: GatewayError): string {
  // Anthropic's own overflow wording, which agent clients match to compact their session
  const message = err.overflow
    ? `prompt is too long: ${err.overflow.promptTokens} tokens > ${err.overflow.maxTokens} maximum${err.overflow.advice ? `. ${err.overflow.advice}` : ""}`
    : err.message;
  return JSON.stringify({ type: "error", error: { type: ERROR_TYPES[err.kind], message } });
}

export function encodeAnthropicError(err: GatewayError): ErrorAnswer {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (err.retryAfter !== undefined) headers["retry-after"] = String(err.retryAfter);
  // Anthropic answers an overload with 529; a timeout of ours reads as 504 in both dialects.
  return { status: err.status, body: anthropicErrorBody(err), headers };
}

/** Tool-use ids must match ^[a-zA-Z0-9_-]+$ for Anthropic clients (and Anthropic, on the way back). */
function toolUseId(id: string): string {
  return /^[a-zA-Z0-9_-]+$/.test(id) ? id : id.replace(/[^a-zA-Z0-9_-]/g, "_") || "toolu_";
}

function sse(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Anthropic's usage: `input_tokens` is the part of the prompt read afresh, `cache_read_input_tokens`
 * the part the server's prompt cache held (null where the server does not say, as Ollama).
 */
function usageJson(u: Usage) {
  return {
    input_tokens: u.inputTokens,
    output_tokens: u.outputTokens,
    cache_creation_input_tokens: u.cacheWriteTokens ?? 0,
    cache_read_input_tokens: u.cacheReadTokens ?? null,
  };
}

/** The Messages API event sequence, exactly as Anthropic emits it. */
export class AnthropicStreamEncoder implements StreamEncoder {
  private index = -1;
  private open_: "text" | "thinking" | "tool" | undefined;
  private usage: Usage;
  private done = false;

  constructor(private readonly meta: ResponseMeta) {
    this.usage = { inputTokens: meta.inputTokensEstimate, outputTokens: 0 };
  }

  get finished(): boolean {
    return this.done;
  }

  open(): string {
    return sse("message_start", {
      type: "message_start",
      message: {
        id: this.meta.id,
        type: "message",
        role: "assistant",
        model: this.meta.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        stop_details: null,
        usage: usageJson({ inputTokens: this.usage.inputTokens, outputTokens: 1 }),
      },
    });
  }

  ping(): string {
    return sse("ping", { type: "ping" });
  }

  private startBlock(kind: "text" | "thinking" | "tool", block: unknown): string {
    const close = this.closeBlock();
    this.index++;
    this.open_ = kind;
    return (
      close +
      sse("content_block_start", { type: "content_block_start", index: this.index, content_block: block })
    );
  }

  private closeBlock(): string {
    if (!this.open_) return "";
    this.open_ = undefined;
    return sse("content_block_stop", { type: "content_block_stop", index: this.index });
  }

  private delta(delta: unknown): string {
    return sse("content_block_delta", { type: "content_block_delta", index: this.index, delta });
  }

  event(ev: Event): string {
    if (this.done) return "";
    switch (ev.type) {
      case "textDelta": {
        const start = this.open_ === "text" ? "" : this.startBlock("text", { type: "text", text: "" });
        // what this.delta({ type: "text_delta", text }) writes, without building the object
        return ev.text
          ? `${start}event: content_block_delta\ndata: {"type":"content_block_delta","index":${this.index},"delta":{"type":"text_delta","text":${JSON.stringify(ev.text)}}}\n\n`
          : start;
      }
      case "thinkingDelta": {
        if (ev.redacted !== undefined) {
          return (
            this.startBlock("thinking", { type: "redacted_thinking", data: ev.redacted }) + this.closeBlock()
          );
        }
        let out = "";
        if (this.open_ !== "thinking") {
          if (!ev.text && ev.signature) return ""; // a signature with no block to sign
          out = this.startBlock("thinking", { type: "thinking", thinking: "", signature: "" });
        }
        if (ev.text) out += this.delta({ type: "thinking_delta", thinking: ev.text });
        if (ev.signature) out += this.delta({ type: "signature_delta", signature: ev.signature });
        return out;
      }
      case "toolCallStart":
        return this.startBlock("tool", { type: "tool_use", id: toolUseId(ev.id), name: ev.name, input: {} });
      case "toolCallDelta":
        return this.open_ === "tool" && ev.json
          ? this.delta({ type: "input_json_delta", partial_json: ev.json })
          : "";
      case "toolCallEnd":
        return this.open_ === "tool" ? this.closeBlock() : "";
      case "usage":
        mergeUsage(this.usage, ev.usage);
        return "";
      case "stop": {
        this.done = true;
        return (
          this.closeBlock() +
          sse("message_delta", {
            type: "message_delta",
            delta: {
              stop_reason: ev.reason,
              stop_sequence: ev.stopSequence ?? null,
              stop_details: null,
            },
            usage: usageJson(this.usage),
          }) +
          sse("message_stop", { type: "message_stop" })
        );
      }
      case "start":
        return "";
    }
  }

  error(err: GatewayError): string {
    if (this.done) return "";
    this.done = true;
    return sse("error", JSON.parse(anthropicErrorBody(err)));
  }
}

/** A whole Messages API response. */
export function encodeAnthropicResponse(res: Response, _req: Request, meta: ResponseMeta): string {
  return JSON.stringify({
    id: meta.id,
    type: "message",
    role: "assistant",
    model: meta.model,
    content: res.content.map((p) => {
      if (p.type === "text") return { type: "text", text: p.text };
      if (p.type === "toolCall")
        return { type: "tool_use", id: toolUseId(p.id), name: p.name, input: p.input };
      return p.redacted !== undefined
        ? { type: "redacted_thinking", data: p.redacted }
        : { type: "thinking", thinking: p.text, signature: p.signature ?? "" };
    }),
    stop_reason: res.stopReason,
    stop_sequence: res.stopSequence ?? null,
    stop_details: null,
    usage: usageJson(res.usage),
  });
}
