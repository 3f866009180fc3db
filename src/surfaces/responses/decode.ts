import { z } from "zod";
import { GatewayError } from "../../ir/errors.js";
import type {
  ImagePart,
  Message,
  Part,
  Request,
  TextPart,
  Tool,
  ToolChoice,
  ToolResultPart,
} from "../../ir/types.js";
import { invalid, num, parseOrThrow } from "../validate.js";
import type { ResponseStore } from "./store.js";

/**
 * Decodes an OpenAI Responses API body (`POST /v1/responses`) into the IR. The Responses input is
 * a flat list of items (messages, function calls, their outputs, reasoning); the IR's turns are
 * rebuilt from it: an assistant's text, reasoning and calls make one assistant turn, consecutive
 * call outputs one user turn.
 */

const Item = z.looseObject({ type: z.string().optional().nullable() });

const FunctionTool = z.looseObject({
  type: z.literal("function"),
  name: z.string().min(1),
  description: z.string().optional().nullable(),
  parameters: z.looseObject({}).optional().nullable(),
});

/** A free-form tool: the model writes its input as text (a patch, a command), optionally in a grammar. */
const CustomTool = z.looseObject({
  type: z.literal("custom"),
  name: z.string().min(1),
  description: z.string().optional().nullable(),
  format: z
    .looseObject({ type: z.string(), syntax: z.string().optional(), definition: z.string().optional() })
    .optional()
    .nullable(),
});

/**
 * A custom tool as a function a local model can call: one string argument, `input`, carrying what the client
 * wants as free text; the grammar, when there is one, is in its description.
 */
export const CUSTOM_INPUT = "input";

const RequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z
    .union([z.string(), z.array(Item)])
    .optional()
    .nullable(),
  instructions: z.string().optional().nullable(),
  tools: z
    .array(z.looseObject({ type: z.string() }))
    .optional()
    .nullable(),
  tool_choice: z
    .union([z.enum(["none", "auto", "required"]), z.looseObject({ type: z.string() })])
    .optional()
    .nullable(),
  parallel_tool_calls: z.boolean().optional().nullable(),
  max_output_tokens: z.number().int().positive().optional().nullable(),
  temperature: num.min(0).max(2).optional().nullable(),
  top_p: num.min(0).max(1).optional().nullable(),
  stream: z.boolean().optional().nullable(),
  store: z.boolean().optional().nullable(),
  previous_response_id: z.string().min(1).optional().nullable(),
  conversation: z.unknown().optional(),
  text: z
    .looseObject({
      format: z
        .looseObject({
          type: z.enum(["text", "json_object", "json_schema"]),
          name: z.string().optional(),
          schema: z.looseObject({}).optional(),
          strict: z.boolean().optional().nullable(),
          description: z.string().optional(),
        })
        .optional()
        .nullable(),
      verbosity: z.string().optional().nullable(),
    })
    .optional()
    .nullable(),
  reasoning: z
    .looseObject({
      effort: z.string().optional().nullable(),
      summary: z.string().optional().nullable(),
    })
    .optional()
    .nullable(),
  include: z.array(z.string()).optional().nullable(),
  metadata: z.record(z.string(), z.string()).optional().nullable(),
  user: z.string().optional().nullable(),
});

/** Fields read, or accepted as what they are for (caching, routing hints, bookkeeping): not noted as ignored. */
const KNOWN = new Set([
  "model",
  "input",
  "instructions",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "max_output_tokens",
  "temperature",
  "top_p",
  "stream",
  "store",
  "previous_response_id",
  "text",
  "reasoning",
  "include",
  "metadata",
  "user",
  "prompt_cache_key",
  "client_metadata",
  "safety_identifier",
  "service_tier",
  "stream_options",
  "truncation",
]);

type Body = z.output<typeof RequestSchema>;
type RawItem = Record<string, unknown>;

/** A namespaced tool's name as the model sees it, and back. */
export interface NamespacedName {
  namespace: string;
  name: string;
}

/** What the encoder needs of the request besides the IR: the echo of the body, and what to store. */
export interface ResponsesExtras {
  /** Whether this response may be continued (`store`, OpenAI's default true). */
  store: boolean;
  previousResponseId: string | null;
  /** The conversation so far as items (earlier responses' and this request's), kept for a continuation. */
  items: RawItem[];
  /** Tool names the model sees for namespaced tools → the namespace and the name the client knows. */
  namespaced: Map<string, NamespacedName>;
  /** The custom (free-form) tools, by name: their calls go back as `custom_tool_call` items. */
  custom: Set<string>;
  /** The fields a Response object echoes from its request. */
  echo: {
    instructions: string | null;
    max_output_tokens: number | null;
    parallel_tool_calls: boolean;
    temperature: number;
    top_p: number;
    tool_choice: unknown;
    tools: unknown[];
    text: unknown;
    reasoning: { effort: string | null; summary: string | null };
    metadata: Record<string, string>;
    prompt_cache_key: string | null;
    truncation: string;
    user: string | null;
  };
}

export type ResponsesRequest = Request & { responses: ResponsesExtras };

/** Tools that OpenAI runs itself: a request may list them, but no local backend can run them. */
const HOSTED =
  /^(web_search|web_search_preview|file_search|code_interpreter|image_generation|computer|computer_use_preview|mcp|local_shell|shell|apply_patch|tool_search|programmatic_tool_calling)(_\d{4}_\d{2}_\d{2})?$/;

export function decodeResponsesRequest(body: unknown, store: ResponseStore): ResponsesRequest {
  const b = parseOrThrow(RequestSchema, body);
  const ignored: string[] = [];
  for (const k of Object.keys(b))
    if (!KNOWN.has(k) && (b as Record<string, unknown>)[k] != null) ignored.push(k);
  if (b.conversation != null)
    throw new GatewayError(
      "invalid_request",
      "conversation: conversations are not kept by this gateway; send the history as input, or continue with previous_response_id",
      { param: "conversation" },
    );

  // the conversation: an earlier response's (previous_response_id), then this request's input
  const items: RawItem[] = [];
  if (b.previous_response_id != null) {
    const prev = store.get(b.previous_response_id);
    if (!prev)
      throw new GatewayError(
        "invalid_request",
        `Previous response with id '${b.previous_response_id}' not found.`,
        { param: "previous_response_id", code: "previous_response_not_found" },
      );
    items.push(...prev.items);
  }
  const input = b.input ?? [];
  if (typeof input === "string") items.push({ type: "message", role: "user", content: input });
  else
    for (const [i, it] of input.entries()) {
      if (it.type === "item_reference") {
        const id = (it as RawItem).id;
        const found = typeof id === "string" ? store.item(id) : undefined;
        if (!found)
          throw new GatewayError(
            "invalid_request",
            `Item with id '${String(id)}' not found (input.${i}): an item_reference names an output item of a stored response.`,
            { param: `input.${i}`, code: "item_not_found" },
          );
        items.push(found);
      } else items.push(it as RawItem);
    }

  const { tools, namespaced, byClient, custom } = decodeTools(b.tools ?? [], ignored);
  const { system, messages } = decodeItems(items, b.instructions ?? "", byClient, ignored);
  const toolChoice = decodeToolChoice(b.tool_choice, b.tools ?? [], byClient);

  const req: ResponsesRequest = {
    model: b.model,
    system,
    messages,
    tools,
    toolChoice,
    limits: b.max_output_tokens == null ? {} : { maxOutputTokens: b.max_output_tokens },
    sampling: {},
    thinking: {},
    stream: b.stream === true,
    metadata: b.user ? { user_id: b.user } : {},
    ignored,
    responses: {
      store: b.store !== false,
      previousResponseId: b.previous_response_id ?? null,
      items,
      namespaced,
      custom,
      echo: {
        instructions: b.instructions ?? null,
        max_output_tokens: b.max_output_tokens ?? null,
        parallel_tool_calls: b.parallel_tool_calls ?? true,
        temperature: b.temperature ?? 1,
        top_p: b.top_p ?? 1,
        tool_choice: b.tool_choice ?? "auto",
        tools: b.tools ?? [],
        text: { format: b.text?.format ?? { type: "text" }, verbosity: b.text?.verbosity ?? "medium" },
        reasoning: { effort: b.reasoning?.effort ?? null, summary: b.reasoning?.summary ?? null },
        metadata: b.metadata ?? {},
        prompt_cache_key: typeof b.prompt_cache_key === "string" ? b.prompt_cache_key : null,
        truncation: typeof b.truncation === "string" ? b.truncation : "disabled",
        user: b.user ?? null,
      },
    },
  };
  if (b.parallel_tool_calls != null) req.parallelToolCalls = b.parallel_tool_calls;
  if (b.temperature != null) req.sampling.temperature = b.temperature;
  if (b.top_p != null) req.sampling.topP = b.top_p;
  if (b.reasoning?.effort != null) req.thinking.enabled = b.reasoning.effort !== "none";
  // structured output, as the other surfaces ask it: the format stage makes it the backend's
  // constraint where it can, and the format check checks the answer
  const format = b.text?.format;
  if (format?.type === "json_schema") {
    if (!format.schema) throw invalid("text.format.schema", "a json_schema format needs its schema");
    req.format = { schema: format.schema, ...(format.name ? { name: format.name } : {}) };
  } else if (format?.type === "json_object") req.format = {};
  return req;
}

function decodeTools(
  raw: Array<{ type: string } & RawItem>,
  ignored: string[],
): {
  tools: Tool[];
  namespaced: Map<string, NamespacedName>;
  byClient: Map<string, string>;
  custom: Set<string>;
} {
  const tools: Tool[] = [];
  const namespaced = new Map<string, NamespacedName>();
  const custom = new Set<string>();
  /** `namespace.name` → the name the model sees */
  const byClient = new Map<string, string>();
  const taken = new Set<string>();
  const fn = (t: unknown, path: string): Tool => {
    const f = parseOrThrow(FunctionTool, t, path);
    const tool: Tool = { name: f.name, inputSchema: f.parameters ?? { type: "object", properties: {} } };
    if (f.description) tool.description = f.description;
    return tool;
  };
  for (const [i, t] of raw.entries()) {
    if (t.type === "function") {
      const tool = fn(t, `tools.${i}`);
      taken.add(tool.name);
      tools.push(tool);
    } else if (t.type === "custom") {
      const c = parseOrThrow(CustomTool, t, `tools.${i}`);
      const grammar = c.format?.type === "grammar" && c.format.definition;
      const about = [
        c.description ?? "",
        grammar
          ? `Put the whole input in \`${CUSTOM_INPUT}\` as text in this ${c.format?.syntax ?? ""} grammar:\n${grammar}`
          : `Put the whole input in \`${CUSTOM_INPUT}\` as plain text.`,
      ]
        .filter(Boolean)
        .join("\n\n");
      taken.add(c.name);
      custom.add(c.name);
      tools.push({
        name: c.name,
        description: about,
        inputSchema: {
          type: "object",
          properties: { [CUSTOM_INPUT]: { type: "string" } },
          required: [CUSTOM_INPUT],
        },
      });
    }
  }
  for (const [i, t] of raw.entries()) {
    if (t.type === "function" || t.type === "custom") continue;
    if (t.type === "namespace") {
      // flattened: each inner function is a tool of its own, named as inside when that is free
      const ns = typeof t.name === "string" ? t.name : "";
      const inner = Array.isArray(t.tools) ? t.tools : [];
      for (const [j, it] of inner.entries()) {
        if ((it as RawItem)?.type !== "function") {
          ignored.push(`tools.${i}.tools.${j}(${String((it as RawItem)?.type)})`);
          continue;
        }
        const tool = fn(it, `tools.${i}.tools.${j}`);
        const name = taken.has(tool.name) ? `${ns}__${tool.name}` : tool.name;
        namespaced.set(name, { namespace: ns, name: tool.name });
        byClient.set(`${ns}.${tool.name}`, name);
        taken.add(name);
        tools.push({ ...tool, name });
      }
      continue;
    }
    // hosted tools (OpenAI runs them): no local backend has them
    ignored.push(`tools.${i}(${t.type})`);
  }
  return { tools, namespaced, byClient, custom };
}

function decodeToolChoice(
  tc: Body["tool_choice"],
  rawTools: Array<{ type: string } & RawItem>,
  byClient: Map<string, string>,
): ToolChoice {
  if (tc == null || tc === "auto") return { type: "auto" };
  if (tc === "none") return { type: "none" };
  if (tc === "required") return { type: "any" };
  switch (tc.type) {
    case "function": {
      const name = (tc as RawItem).name;
      if (typeof name !== "string") throw invalid("tool_choice.name", "expected string");
      const ns = (tc as RawItem).namespace;
      return { type: "tool", name: typeof ns === "string" ? (byClient.get(`${ns}.${name}`) ?? name) : name };
    }
    case "custom": {
      const name = (tc as RawItem).name;
      if (typeof name !== "string") throw invalid("tool_choice.name", "expected string");
      return { type: "tool", name };
    }
    case "allowed_tools": {
      const mode = (tc as RawItem).mode;
      return mode === "required" ? { type: "any" } : { type: "auto" };
    }
    default: {
      const hosted = HOSTED.test(tc.type) || rawTools.some((t) => t.type === tc.type);
      throw new GatewayError(
        "invalid_request",
        hosted
          ? `tool_choice: '${tc.type}' is a tool that OpenAI hosts; this gateway serves local models, which can only call function tools`
          : `tool_choice: unsupported type '${tc.type}'`,
        { param: "tool_choice" },
      );
    }
  }
}

/** Rebuilds the IR's turns from the flat item list. */
function decodeItems(
  items: RawItem[],
  instructions: string,
  byClient: Map<string, string>,
  ignored: string[],
): { system: string; messages: Message[] } {
  const system: string[] = instructions ? [instructions] : [];
  const messages: Message[] = [];
  const toolNames = new Map<string, string>();
  let leading = true;
  const last = () => messages[messages.length - 1];
  const assistant = (parts: Part[]) => {
    const m = last();
    // text, reasoning and calls of one answer are one turn, unless a reasoning item starts the next
    if (
      m?.role === "assistant" &&
      !(parts[0]?.type === "thinking" && m.parts.some((p) => p.type !== "thinking"))
    )
      m.parts.push(...parts);
    else messages.push({ role: "assistant", parts });
  };

  for (const [i, it] of items.entries()) {
    const path = `input.${i}`;
    const type = it.type ?? "message";
    switch (type) {
      case "message": {
        const role = it.role;
        if (role === "system" || role === "developer") {
          const text = textOf(it.content, `${path}.content`);
          if (leading) system.push(text);
          else messages.push({ role: "system", parts: [{ type: "text", text }] });
          continue;
        }
        if (role === "user")
          messages.push({ role: "user", parts: userParts(it.content, `${path}.content`, ignored) });
        else if (role === "assistant") {
          const text = textOf(it.content, `${path}.content`);
          if (text) assistant([{ type: "text", text }]);
        } else throw invalid(`${path}.role`, "expected 'user', 'assistant', 'system' or 'developer'");
        break;
      }
      case "function_call": {
        const { call_id, name, arguments: args, namespace } = it;
        if (typeof call_id !== "string") throw invalid(`${path}.call_id`, "expected string");
        if (typeof name !== "string") throw invalid(`${path}.name`, "expected string");
        const seen = typeof namespace === "string" ? (byClient.get(`${namespace}.${name}`) ?? name) : name;
        toolNames.set(call_id, seen);
        assistant([
          { type: "toolCall", id: call_id, name: seen, input: parseArguments(args, `${path}.arguments`) },
        ]);
        break;
      }
      case "custom_tool_call": {
        const { call_id, name, input } = it;
        if (typeof call_id !== "string") throw invalid(`${path}.call_id`, "expected string");
        if (typeof name !== "string") throw invalid(`${path}.name`, "expected string");
        if (typeof input !== "string") throw invalid(`${path}.input`, "expected string");
        toolNames.set(call_id, name);
        assistant([{ type: "toolCall", id: call_id, name, input: { [CUSTOM_INPUT]: input } }]);
        break;
      }
      case "custom_tool_call_output":
      case "function_call_output": {
        const { call_id, output } = it;
        if (typeof call_id !== "string") throw invalid(`${path}.call_id`, "expected string");
        const content =
          typeof output === "string"
            ? [{ type: "text" as const, text: output }]
            : userParts(output, `${path}.output`, ignored).filter(
                (p): p is TextPart | ImagePart => p.type === "text" || p.type === "image",
              );
        const part: ToolResultPart = { type: "toolResult", toolCallId: call_id, content };
        const name = toolNames.get(call_id);
        if (name) part.toolName = name;
        const m = last();
        // consecutive call outputs belong to one user turn
        if (m?.role === "user" && m.parts.at(-1)?.type === "toolResult") m.parts.push(part);
        else messages.push({ role: "user", parts: [part] });
        break;
      }
      case "reasoning": {
        // local models' thinking comes back as reasoning_text; a summary stands in for it otherwise
        const text = reasoningText(it);
        if (text) assistant([{ type: "thinking", text }]);
        else if (it.encrypted_content) ignored.push(`${path}(reasoning.encrypted_content)`);
        break;
      }
      default:
        // items of hosted tools, custom tools, compaction…: nothing a local backend can read
        ignored.push(`${path}(${String(type)})`);
        continue;
    }
    leading = false;
  }
  return { system: system.join("\n\n"), messages };
}

function reasoningText(it: RawItem): string {
  const from = (parts: unknown, type: string) =>
    Array.isArray(parts)
      ? parts
          .filter((p): p is { text: string } => p?.type === type && typeof p.text === "string")
          .map((p) => p.text)
          .join("\n")
      : "";
  return from(it.content, "reasoning_text") || from(it.summary, "summary_text");
}

function textOf(content: unknown, path: string): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) throw invalid(path, "expected a string or an array of content parts");
  return content
    .map((p, i) => {
      if (p?.type === "input_text" || p?.type === "output_text" || p?.type === "text") {
        if (typeof p.text !== "string") throw invalid(`${path}.${i}.text`, "expected string");
        return p.text;
      }
      if (p?.type === "refusal" && typeof p.refusal === "string") return p.refusal;
      throw invalid(`${path}.${i}`, `expected a text part, got '${String(p?.type)}'`);
    })
    .join("\n");
}

function userParts(content: unknown, path: string, ignored: string[]): Part[] {
  if (content == null) return [];
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (!Array.isArray(content)) throw invalid(path, "expected a string or an array of content parts");
  const parts: Part[] = [];
  for (const [i, p] of content.entries()) {
    if (p?.type === "input_text" || p?.type === "output_text") {
      if (typeof p.text !== "string") throw invalid(`${path}.${i}.text`, "expected string");
      parts.push({ type: "text", text: p.text });
    } else if (p?.type === "input_image" && typeof p.image_url === "string") {
      parts.push(imageFromUrl(p.image_url));
    } else {
      // input_image by file_id, input_file: files uploaded to OpenAI, which a local backend cannot fetch
      ignored.push(`${path}.${i}(${String(p?.type)})`);
    }
  }
  return parts;
}

function imageFromUrl(url: string): ImagePart {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (m) return { type: "image", source: { kind: "base64", mediaType: m[1]!, data: m[2]! } };
  return { type: "image", source: { kind: "url", url } };
}

function parseArguments(args: unknown, path: string): Record<string, unknown> {
  if (args === undefined || args === null) return {};
  if (typeof args === "object" && !Array.isArray(args)) return args as Record<string, unknown>;
  if (typeof args !== "string") throw invalid(path, "must be a JSON-encoded object");
  if (args.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(args);
  } catch {
    throw invalid(path, "must be a JSON-encoded object");
  }
  if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  return { value: v };
}
