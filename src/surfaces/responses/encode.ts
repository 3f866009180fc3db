import { mergeUsage } from "../../ir/collect.js";
import type { GatewayError } from "../../ir/errors.js";
import { newId } from "../../ir/ids.js";
import type { Event, Request, Response, StopReason, Usage } from "../../ir/types.js";
import { encodeOpenAIError } from "../openai/encode.js";
import type { ErrorAnswer, ResponseMeta, StreamEncoder } from "../types.js";
import { CUSTOM_INPUT, type ResponsesExtras, type ResponsesRequest } from "./decode.js";
import type { ResponseStore } from "./store.js";

type Item = Record<string, unknown>;
type Status = "in_progress" | "completed" | "incomplete" | "failed";

/** Errors: the OpenAI shape and statuses, as the chat surface's (`param` names the Responses field). */
export function encodeResponsesError(err: GatewayError): ErrorAnswer {
  const answer = encodeOpenAIError(err);
  if (err.kind === "context_length" && err.param === undefined)
    answer.body = answer.body.replace('"param":"messages"', '"param":"input"');
  return answer;
}

function extrasOf(req: Request): ResponsesExtras | undefined {
  return (req as Partial<ResponsesRequest>).responses;
}

/** `input_tokens` counts the whole input, the part the server's prompt cache held included (the IR counts it apart). */
function usageJson(u: Usage) {
  const input = u.inputTokens + (u.cacheReadTokens ?? 0) + (u.cacheWriteTokens ?? 0);
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: u.cacheReadTokens ?? 0 },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + u.outputTokens,
  };
}

/** The code of a `response.failed` error: one of OpenAI's `ResponseError` codes, which clients key on. */
function failCode(err: GatewayError): string {
  if (err.kind === "context_length") return "context_length_exceeded";
  if (err.kind === "rate_limit") return "rate_limit_exceeded";
  if (err.kind === "invalid_request") return "invalid_prompt";
  return "server_error";
}

function terminal(reason: StopReason): { status: Status; incomplete: { reason: string } | null } {
  if (reason === "max_tokens") return { status: "incomplete", incomplete: { reason: "max_output_tokens" } };
  if (reason === "refusal") return { status: "incomplete", incomplete: { reason: "content_filter" } };
  return { status: "completed", incomplete: null };
}

/** A Response object, as OpenAI writes one. */
function responseObject(
  meta: ResponseMeta,
  req: Request,
  createdAt: number,
  status: Status,
  output: Item[],
  usage: Usage | null,
  end: { incomplete?: { reason: string } | null; error?: { code: string; message: string } } = {},
): Record<string, unknown> {
  const x = extrasOf(req);
  const e = x?.echo;
  return {
    id: meta.id,
    object: "response",
    created_at: createdAt,
    status,
    background: false,
    completed_at: status === "completed" ? Math.floor(Date.now() / 1000) : null,
    error: end.error ?? null,
    incomplete_details: end.incomplete ?? null,
    instructions: e?.instructions ?? null,
    max_output_tokens: e?.max_output_tokens ?? null,
    max_tool_calls: null,
    model: meta.model,
    output,
    parallel_tool_calls: e?.parallel_tool_calls ?? true,
    previous_response_id: x?.previousResponseId ?? null,
    prompt_cache_key: e?.prompt_cache_key ?? null,
    reasoning: e?.reasoning ?? { effort: null, summary: null },
    safety_identifier: null,
    service_tier: "default",
    store: x?.store ?? true,
    temperature: e?.temperature ?? 1,
    text: e?.text ?? { format: { type: "text" }, verbosity: "medium" },
    tool_choice: e?.tool_choice ?? "auto",
    tools: e?.tools ?? [],
    top_logprobs: 0,
    top_p: e?.top_p ?? 1,
    truncation: e?.truncation ?? "disabled",
    usage: usage ? usageJson(usage) : null,
    user: e?.user ?? null,
    metadata: e?.metadata ?? {},
  };
}

function textPart(text: string) {
  return { type: "output_text", annotations: [], logprobs: [], text };
}

function messageItem(id: string, status: Status, text: string | null): Item {
  return {
    id,
    type: "message",
    status,
    content: text === null ? [] : [textPart(text)],
    role: "assistant",
  };
}

function reasoningItem(id: string, text: string | null): Item {
  const item: Item = { id, type: "reasoning", summary: [] };
  if (text !== null) item.content = [{ type: "reasoning_text", text }];
  return item;
}

function callItem(
  req: Request,
  id: string,
  status: Status,
  callId: string,
  name: string,
  args: string,
): Item {
  const x = extrasOf(req);
  if (x?.custom.has(name)) {
    // a free-form tool: its input as the text the model put in the one argument
    let input = args;
    try {
      const parsed = JSON.parse(args) as Record<string, unknown>;
      if (typeof parsed?.[CUSTOM_INPUT] === "string") input = parsed[CUSTOM_INPUT] as string;
    } catch {
      // not JSON: passed as it is
    }
    return { id, type: "custom_tool_call", status, call_id: callId, name, input };
  }
  const ns = x?.namespaced.get(name);
  const item: Item = {
    id,
    type: "function_call",
    status,
    arguments: args,
    call_id: callId,
    name: ns ? ns.name : name,
  };
  if (ns) item.namespace = ns.namespace;
  return item;
}

/** Keeps a finished response for `previous_response_id` and `item_reference`, unless `store: false`. */
function keep(store: ResponseStore, req: Request, id: string, output: Item[]): void {
  const x = extrasOf(req);
  if (x?.store) store.put(id, x.items, output);
}

/** The output items of a whole response, in the order of its content. */
function outputOf(res: Response, req: Request): Item[] {
  const out: Item[] = [];
  let message: Item | undefined;
  let reasoning: Item | undefined;
  for (const p of res.content) {
    if (p.type === "text") {
      reasoning = undefined;
      if (!p.text) continue;
      if (message) (message.content as Array<{ text: string }>)[0]!.text += p.text;
      else {
        message = messageItem(newId("msg_"), "completed", p.text);
        out.push(message);
      }
    } else if (p.type === "thinking") {
      message = undefined;
      if (!p.text) continue;
      if (reasoning) (reasoning.content as Array<{ text: string }>)[0]!.text += p.text;
      else {
        reasoning = reasoningItem(newId("rs_"), p.text);
        out.push(reasoning);
      }
    } else {
      message = reasoning = undefined;
      out.push(callItem(req, newId("fc_"), "completed", p.id, p.name, JSON.stringify(p.input)));
    }
  }
  return out;
}

/** A whole Response object (a non-streaming answer). */
export function encodeResponsesResponse(
  store: ResponseStore,
  res: Response,
  req: Request,
  meta: ResponseMeta,
): string {
  const output = outputOf(res, req);
  const { status, incomplete } = terminal(res.stopReason);
  keep(store, req, meta.id, output);
  return JSON.stringify(
    responseObject(meta, req, Math.floor(Date.now() / 1000), status, output, res.usage, { incomplete }),
  );
}

interface OpenItem {
  kind: "message" | "reasoning" | "function_call";
  index: number;
  id: string;
  /** The text, reasoning or arguments so far. */
  text: string;
  callId?: string;
  name?: string;
}

/**
 * The Responses event stream: `response.created` and `response.in_progress` at once, then for
 * each output item `output_item.added`, its content part's `added`, the deltas, their `done`s and
 * `output_item.done`, and one terminal event with the whole response. Every event carries its
 * `sequence_number`; only event types the official SDK knows are sent, in its order.
 */
export class ResponsesStreamEncoder implements StreamEncoder {
  private readonly createdAt = Math.floor(Date.now() / 1000);
  private seq = 0;
  private readonly output: Item[] = [];
  private current: OpenItem | undefined;
  private readonly usage: Usage;
  private done = false;

  constructor(
    private readonly store: ResponseStore,
    private readonly req: Request,
    private readonly meta: ResponseMeta,
  ) {
    this.usage = { inputTokens: meta.inputTokensEstimate, outputTokens: 0 };
  }

  get finished(): boolean {
    return this.done;
  }

  private send(type: string, fields: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, ...fields, sequence_number: this.seq++ })}\n\n`;
  }

  open(): string {
    const response = responseObject(this.meta, this.req, this.createdAt, "in_progress", [], null);
    return this.send("response.created", { response }) + this.send("response.in_progress", { response });
  }

  ping(): string {
    // not in the event union, but the SDK's accumulator and Codex both take it (an SSE comment
    // would not reset Codex's idle timer)
    return this.send("keepalive", {});
  }

  private begin(kind: OpenItem["kind"], item: Item, callId?: string, name?: string): string {
    const index = this.output.length;
    this.output.push(item);
    this.current = { kind, index, id: item.id as string, text: "" };
    if (callId !== undefined) this.current.callId = callId;
    if (name !== undefined) this.current.name = name;
    let s = this.send("response.output_item.added", { output_index: index, item });
    const at = { item_id: item.id, output_index: index, content_index: 0 };
    if (kind === "message") s += this.send("response.content_part.added", { ...at, part: textPart("") });
    else if (kind === "reasoning")
      s += this.send("response.content_part.added", { ...at, part: { type: "reasoning_text", text: "" } });
    return s;
  }

  /** Finishes the item being written, if any. */
  private close(): string {
    const c = this.current;
    if (!c) return "";
    this.current = undefined;
    const at = { item_id: c.id, output_index: c.index, content_index: 0 };
    let s = "";
    let item: Item;
    if (c.kind === "message") {
      s += this.send("response.output_text.done", { ...at, text: c.text, logprobs: [] });
      s += this.send("response.content_part.done", { ...at, part: textPart(c.text) });
      item = messageItem(c.id, "completed", c.text);
    } else if (c.kind === "reasoning") {
      s += this.send("response.reasoning_text.done", { ...at, text: c.text });
      s += this.send("response.content_part.done", { ...at, part: { type: "reasoning_text", text: c.text } });
      item = reasoningItem(c.id, c.text);
    } else {
      const args = c.text || "{}";
      item = callItem(this.req, c.id, "completed", c.callId!, c.name!, args);
      if (item.type === "custom_tool_call")
        s += this.send("response.custom_tool_call_input.done", {
          item_id: c.id,
          output_index: c.index,
          input: item.input,
        });
      else
        s += this.send("response.function_call_arguments.done", {
          item_id: c.id,
          output_index: c.index,
          arguments: args,
          name: item.name,
        });
    }
    this.output[c.index] = item;
    return s + this.send("response.output_item.done", { output_index: c.index, item });
  }

  event(ev: Event): string {
    if (this.done) return "";
    switch (ev.type) {
      case "textDelta": {
        if (!ev.text) return "";
        let s = "";
        if (this.current?.kind !== "message")
          s += this.close() + this.begin("message", messageItem(newId("msg_"), "in_progress", null));
        const c = this.current!;
        c.text += ev.text;
        return (
          s +
          this.send("response.output_text.delta", {
            item_id: c.id,
            output_index: c.index,
            content_index: 0,
            delta: ev.text,
            logprobs: [],
          })
        );
      }
      case "thinkingDelta": {
        if (!ev.text) return "";
        let s = "";
        if (this.current?.kind !== "reasoning")
          s += this.close() + this.begin("reasoning", reasoningItem(newId("rs_"), null));
        const c = this.current!;
        c.text += ev.text;
        return (
          s +
          this.send("response.reasoning_text.delta", {
            item_id: c.id,
            output_index: c.index,
            content_index: 0,
            delta: ev.text,
          })
        );
      }
      case "toolCallStart": {
        const item = callItem(this.req, newId("fc_"), "in_progress", ev.id, ev.name, "");
        return this.close() + this.begin("function_call", item, ev.id, ev.name);
      }
      case "toolCallDelta": {
        const c = this.current;
        if (!ev.json || c?.kind !== "function_call") return "";
        c.text += ev.json;
        // a custom tool's input is known whole only at its end: its JSON wrapper is not what the client reads
        if (extrasOf(this.req)?.custom.has(c.name!)) return "";
        return this.send("response.function_call_arguments.delta", {
          item_id: c.id,
          output_index: c.index,
          delta: ev.json,
        });
      }
      case "toolCallEnd":
        return this.current?.kind === "function_call" ? this.close() : "";
      case "start":
        return "";
      case "usage":
        mergeUsage(this.usage, ev.usage);
        return "";
      case "stop": {
        const s = this.close();
        this.done = true;
        const { status, incomplete } = terminal(ev.reason);
        keep(this.store, this.req, this.meta.id, this.output);
        const response = responseObject(
          this.meta,
          this.req,
          this.createdAt,
          status,
          this.output,
          this.usage,
          {
            incomplete,
          },
        );
        return (
          s + this.send(status === "completed" ? "response.completed" : "response.incomplete", { response })
        );
      }
    }
  }

  /** After the stream started: `response.failed`, its error in OpenAI's `ResponseError` shape. */
  error(err: GatewayError): string {
    if (this.done) return "";
    this.done = true;
    const response = responseObject(this.meta, this.req, this.createdAt, "failed", this.output, this.usage, {
      error: { code: failCode(err), message: err.message },
    });
    return this.send("response.failed", { response });
  }
}
