import { mergeUsage } from "../../ir/collect.js";
import type { GatewayError } from "../../ir/errors.js";
import type { Event, Request, Response, StopReason, Usage } from "../../ir/types.js";
import type { ErrorAnswer, ResponseMeta, StreamEncoder } from "../types.js";

const ERRORS: Record<GatewayError["kind"], { status: number; type: string; code: string | null }> = {
  invalid_request: { status: 400, type: "invalid_request_error", code: null },
  context_length: { status: 400, type: "invalid_request_error", code: "context_length_exceeded" },
  authentication: { status: 401, type: "invalid_request_error", code: "invalid_api_key" },
  permission: { status: 403, type: "permission_error", code: null },
  not_found: { status: 404, type: "invalid_request_error", code: null },
  request_too_large: { status: 413, type: "invalid_request_error", code: "request_too_large" },
  request_timeout: { status: 408, type: "invalid_request_error", code: "request_timeout" },
  rate_limit: { status: 429, type: "rate_limit_error", code: "rate_limit_exceeded" },
  api_error: { status: 500, type: "server_error", code: null },
  unavailable: { status: 503, type: "server_error", code: "service_unavailable" },
  overloaded: { status: 503, type: "server_error", code: "overloaded" },
  timeout: { status: 504, type: "server_error", code: "timeout" },
};

function errorJson(err: GatewayError) {
  const e = ERRORS[err.kind];
  // OpenAI's own overflow wording, which agent clients match to compact their session
  const message = err.overflow
    ? `This model's maximum context length is ${err.overflow.maxTokens} tokens. However, your messages resulted in ${err.overflow.promptTokens} tokens. Please reduce the length of the messages.${err.overflow.advice ? ` ${err.overflow.advice}` : ""}`
    : err.message;
  return {
    error: {
      message,
      type: e.type,
      param: err.param ?? (err.kind === "context_length" ? "messages" : null),
      code: err.code ?? e.code,
    },
  };
}

export function encodeOpenAIError(err: GatewayError): ErrorAnswer {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (err.retryAfter !== undefined) headers["retry-after"] = String(err.retryAfter);
  return { status: ERRORS[err.kind].status, body: JSON.stringify(errorJson(err)), headers };
}

const FINISH: Record<StopReason, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
};

/**
 * OpenAI's usage: `prompt_tokens` counts the whole prompt, `prompt_tokens_details.cached_tokens` the
 * part the server's prompt cache held (left out where the server does not say, as Ollama).
 */
function usageJson(u: Usage) {
  const prompt = u.inputTokens + (u.cacheReadTokens ?? 0) + (u.cacheWriteTokens ?? 0);
  const j: Record<string, unknown> = {
    prompt_tokens: prompt,
    completion_tokens: u.outputTokens,
    total_tokens: prompt + u.outputTokens,
  };
  if (u.cacheReadTokens !== undefined) j.prompt_tokens_details = { cached_tokens: u.cacheReadTokens };
  return j;
}

/** chat.completion.chunk SSE, ending in `data: [DONE]`. */
export class OpenAIStreamEncoder implements StreamEncoder {
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly head: string;
  /** A text chunk is the one sent most: its text goes between these two. */
  private readonly textHead: string;
  private toolIndex = -1;
  private usage: Usage;
  private done = false;

  constructor(
    meta: ResponseMeta,
    private readonly includeUsage: boolean,
  ) {
    this.usage = { inputTokens: meta.inputTokensEstimate, outputTokens: 0 };
    // Every chunk shares its head; only the choices differ.
    this.head = `{"id":${JSON.stringify(meta.id)},"object":"chat.completion.chunk","created":${this.created},"model":${JSON.stringify(meta.model)},"choices":`;
    this.textHead = `data: ${this.head}[{"index":0,"delta":{"content":`;
  }

  get finished(): boolean {
    return this.done;
  }

  private chunk(delta: unknown, finish: string | null = null): string {
    return `data: ${this.head}[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finish === null ? "null" : JSON.stringify(finish)}}]}\n\n`;
  }

  open(): string {
    return this.chunk({ role: "assistant", content: "" });
  }

  ping(): string {
    return ": keep-alive\n\n";
  }

  event(ev: Event): string {
    if (this.done) return "";
    switch (ev.type) {
      case "textDelta":
        // what this.chunk({ content }) writes, without building the object
        return ev.text
          ? `${this.textHead}${JSON.stringify(ev.text)}},"logprobs":null,"finish_reason":null}]}\n\n`
          : "";
      case "thinkingDelta":
        return ev.text ? this.chunk({ reasoning_content: ev.text }) : "";
      case "toolCallStart":
        this.toolIndex++;
        return this.chunk({
          tool_calls: [
            {
              index: this.toolIndex,
              id: ev.id,
              type: "function",
              function: { name: ev.name, arguments: "" },
            },
          ],
        });
      case "toolCallDelta":
        return ev.json && this.toolIndex >= 0
          ? this.chunk({ tool_calls: [{ index: this.toolIndex, function: { arguments: ev.json } }] })
          : "";
      case "toolCallEnd":
      case "start":
        return "";
      case "usage":
        mergeUsage(this.usage, ev.usage);
        return "";
      case "stop": {
        this.done = true;
        let out = this.chunk({}, FINISH[ev.reason]);
        if (this.includeUsage)
          out += `data: ${this.head}[],"usage":${JSON.stringify(usageJson(this.usage))}}\n\n`;
        return `${out}data: [DONE]\n\n`;
      }
    }
  }

  error(err: GatewayError): string {
    if (this.done) return "";
    this.done = true;
    // The openai SDK raises an APIError for a data line that carries `error`.
    return `data: ${JSON.stringify(errorJson(err))}\n\n`;
  }
}

/** A whole chat.completion object. */
export function encodeOpenAIResponse(res: Response, _req: Request, meta: ResponseMeta): string {
  let text = "";
  let reasoning = "";
  const toolCalls: unknown[] = [];
  for (const p of res.content) {
    if (p.type === "text") text += p.text;
    else if (p.type === "thinking") reasoning += p.text;
    else
      toolCalls.push({
        id: p.id,
        type: "function",
        function: { name: p.name, arguments: JSON.stringify(p.input) },
      });
  }
  const message: Record<string, unknown> = {
    role: "assistant",
    content: text || (toolCalls.length ? null : ""),
  };
  if (reasoning) message.reasoning_content = reasoning;
  if (toolCalls.length) message.tool_calls = toolCalls;
  message.refusal = null;
  return JSON.stringify({
    id: meta.id,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: FINISH[res.stopReason] }],
    usage: usageJson(res.usage),
  });
}
