/**
 * A fake Anthropic Messages API (POST /v1/messages, POST /v1/messages/count_tokens).
 *
 * The stream follows captures of the real API: `event: NAME\ndata: JSON\n\n` frames; message_start (usage with
 * cache fields and service_tier), then per content block content_block_start / content_block_delta... /
 * content_block_stop in the order thinking, text, tool_use; one `ping` after the first block starts (its data is
 * `{"type": "ping"}`, with a space, as the API sends it); message_delta with stop_reason and usage; message_stop.
 * Like the real API, message_start and content_block_start pad their data with spaces before the last brace.
 * A thinking block starts as `{"type":"thinking","thinking":"","signature":""}` and ends with a signature_delta;
 * a tool_use block starts with `"input":{}` and its first input_json_delta is `""`.
 */
import {
  ALNUM,
  type ErrorResponse,
  type Exchange,
  type FakeHost,
  type Payload,
  type Plan,
  estimateTokens,
  parseArgs,
  planReply,
  randomString,
  sseEvent,
  startFake,
} from "./core.js";
import type { FakeServer, ReplyFn, ScriptedReply } from "./script.js";

export interface AnthropicFakeOptions {
  reply?: ReplyFn | ScriptedReply;
  /** When set, `x-api-key: <apiKey>` (or `Authorization: Bearer <apiKey>`) is required. */
  apiKey?: string;
  /** The API answers 400 without an `anthropic-version` header. Default true. */
  requireVersionHeader?: boolean;
}

type Obj = Record<string, unknown>;

const JSON_HEADERS = { "content-type": "application/json" };

/**
 * The API verifies every thinking block sent back: one without a signature is a validation error, one whose
 * signature it did not issue (a local model's, which has none, sent as "") is refused.
 */
function unsignedThinking(messages: unknown): string | undefined {
  if (!Array.isArray(messages)) return undefined;
  for (const [i, m] of messages.entries()) {
    const content = (m as Obj | null)?.content;
    if (!Array.isArray(content)) continue;
    for (const [j, b] of content.entries()) {
      const blk = b as Obj | null;
      if (blk?.type !== "thinking") continue;
      if (typeof blk.signature !== "string")
        return `messages.${i}.content.${j}.thinking.signature: Field required`;
      if (!Buffer.from(blk.signature, "base64").toString().startsWith("fake-signature:"))
        return `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`;
    }
  }
  return undefined;
}

export async function startAnthropicFake(opts: AnthropicFakeOptions = {}): Promise<FakeServer> {
  const requireVersion = opts.requireVersionHeader ?? true;
  return startFake(async (ex, host) => {
    const messages = ex.pathname === "/v1/messages";
    const count = ex.pathname === "/v1/messages/count_tokens";
    if (ex.method !== "POST" || (!messages && !count)) return sendError(ex, host, 404, "Not Found");
    if (opts.apiKey !== undefined) {
      const key = ex.req.headers["x-api-key"];
      const bearer = ex.req.headers.authorization;
      if (key === undefined && bearer === undefined)
        return sendError(ex, host, 401, "x-api-key header is required");
      if (key !== opts.apiKey && bearer !== `Bearer ${opts.apiKey}`)
        return sendError(ex, host, 401, "invalid x-api-key");
    }
    if (requireVersion && ex.req.headers["anthropic-version"] === undefined) {
      return sendError(ex, host, 400, "anthropic-version: header is required");
    }
    if (!ex.bodyIsJson || typeof ex.body !== "object" || ex.body === null || Array.isArray(ex.body)) {
      const message =
        "There was an error parsing the body of your request. Please ensure your request body is valid JSON.";
      return sendError(ex, host, 400, message);
    }
    const body = ex.body as Obj;
    for (const field of messages ? ["model", "max_tokens", "messages"] : ["model", "messages"]) {
      if (body[field] === undefined) return sendError(ex, host, 400, `${field}: Field required`);
    }
    const unsigned = unsignedThinking(body.messages);
    if (unsigned) return sendError(ex, host, 400, unsigned);
    const inputTokens = estimateTokens({ system: body.system, messages: body.messages, tools: body.tools });
    if (count)
      return host.send(ex, 200, JSON.stringify({ input_tokens: inputTokens }), withRequestId(JSON_HEADERS));
    return message(ex, host, body, inputTokens);
  }, opts.reply);
}

function errorType(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 504:
      return "timeout_error";
    case 529:
      return "overloaded_error";
    default:
      return "api_error";
  }
}

function requestId(): string {
  return `req_011C${randomString(ALNUM, 20)}`;
}

function withRequestId(headers: Record<string, string>): Record<string, string> {
  return { ...headers, "request-id": requestId() };
}

function error(status: number, message: string): ErrorResponse {
  const headers = withRequestId(JSON_HEADERS);
  const body = {
    type: "error",
    error: { type: errorType(status), message },
    request_id: headers["request-id"],
  };
  return { body: JSON.stringify(body), headers };
}

function sendError(ex: Exchange, host: FakeHost, status: number, message: string): void {
  const err = error(status, message);
  host.send(ex, status, err.body, err.headers);
}

function stopReason(plan: Plan): string {
  if (plan.finish === "length") return "max_tokens";
  if (plan.finish === "tool_calls") return "tool_use";
  return "end_turn";
}

/** The API pads some frames with spaces before the closing brace; it is still the same JSON. */
function padded(value: Obj): string {
  return `${JSON.stringify(value).slice(0, -1)}              }`;
}

const RAW_MARK = "__fake_raw_input_";

async function message(ex: Exchange, host: FakeHost, body: Obj, inputTokens: number): Promise<void> {
  const reply = await host.reply(ex.recorded);
  const plan = planReply(reply, () => `toolu_01${randomString(ALNUM, 22)}`);
  const id = `msg_01${randomString(ALNUM, 22)}`;
  const model = body.model;
  const input = reply.usage?.prompt ?? inputTokens;
  const output = reply.usage?.completion ?? plan.contentChunks;
  const signature = Buffer.from(`fake-signature:${id}:${plan.reasoning.length}`).toString("base64");
  const usage = (outputTokens: number) => ({
    input_tokens: input,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    output_tokens: outputTokens,
    service_tier: "standard",
  });

  if (body.stream !== true) {
    const content: Obj[] = [];
    if (plan.reasoning) content.push({ type: "thinking", thinking: plan.reasoning, signature });
    if (plan.text) content.push({ type: "text", text: plan.text });
    for (const call of plan.toolCalls) {
      const parsed = parseArgs(call.args);
      const inputValue = parsed !== undefined ? parsed.value : `${RAW_MARK}${call.index}__`;
      content.push({ type: "tool_use", id: call.id, name: call.name, input: inputValue });
    }
    const msg = {
      id,
      type: "message",
      role: "assistant",
      model,
      content,
      stop_reason: stopReason(plan),
      stop_sequence: null,
      usage: usage(output),
    };
    let text = JSON.stringify(msg);
    for (const call of plan.toolCalls) {
      if (parseArgs(call.args) === undefined) text = text.replace(`"${RAW_MARK}${call.index}__"`, call.args);
    }
    const payload: Payload = {
      headers: withRequestId(JSON_HEADERS),
      chunks: [text],
      streaming: false,
      garbage: "\n<html>502 Bad Gateway</html>",
    };
    return host.deliver(ex, payload, reply.fault, (status) => error(status, statusMessage(status)));
  }

  const frames: string[] = [];
  const emit = (event: string, data: Obj, pad = false) =>
    frames.push(sseEvent(event, pad ? padded(data) : JSON.stringify(data)));
  const delta = (index: number, d: Obj) =>
    emit("content_block_delta", { type: "content_block_delta", index, delta: d });
  const start = (index: number, block: Obj) => {
    emit("content_block_start", { type: "content_block_start", index, content_block: block }, true);
    if (index === 0) frames.push(sseEvent("ping", '{"type": "ping"}'));
  };
  const stop = (index: number) => emit("content_block_stop", { type: "content_block_stop", index });

  emit(
    "message_start",
    {
      type: "message_start",
      message: {
        model,
        id,
        type: "message",
        role: "assistant",
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: usage(1),
      },
    },
    true,
  );
  let index = 0;
  if (plan.reasoning) {
    start(index, { type: "thinking", thinking: "", signature: "" });
    for (const thinking of plan.reasoningChunks) delta(index, { type: "thinking_delta", thinking });
    delta(index, { type: "signature_delta", signature });
    stop(index++);
  }
  let textFrames: { from: number; to: number } | undefined;
  if (plan.text) {
    start(index, { type: "text", text: "" });
    const from = frames.length;
    for (const text of plan.textChunks) delta(index, { type: "text_delta", text });
    textFrames = { from, to: frames.length };
    stop(index++);
  }
  for (const call of plan.toolCalls) {
    start(index, { type: "tool_use", id: call.id, name: call.name, input: {} });
    delta(index, { type: "input_json_delta", partial_json: "" });
    for (const partial of call.argChunks)
      if (partial) delta(index, { type: "input_json_delta", partial_json: partial });
    stop(index++);
  }
  if (index === 0) frames.push(sseEvent("ping", '{"type": "ping"}'));
  const finalUsage = {
    input_tokens: input,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: output,
  };
  emit("message_delta", {
    type: "message_delta",
    delta: { stop_reason: stopReason(plan), stop_sequence: null },
    usage: finalUsage,
  });
  emit("message_stop", { type: "message_stop" });

  const payload: Payload = {
    headers: withRequestId({
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    }),
    chunks: frames,
    streaming: true,
    finish: [frames.length - 1],
    ...(reply.repeat && reply.repeat !== 1 && textFrames
      ? { repeat: { ...textFrames, times: reply.repeat } }
      : {}),
    garbage:
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_del\n\n',
  };
  await host.deliver(ex, payload, reply.fault, (status) => error(status, statusMessage(status)));
}

function statusMessage(status: number): string {
  if (status === 529) return "Overloaded";
  if (status === 429) return "Number of request tokens has exceeded your per-minute rate limit";
  if (status === 500) return "Internal server error";
  return `fake upstream failure (${status})`;
}
