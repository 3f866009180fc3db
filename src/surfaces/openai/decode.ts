import { withEffort } from "../../ir/effort.js";
import { z } from "zod";
import { fastPath } from "../../fast-paths.js";
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
import { freezeMessages } from "../parts.js";
import { isInt, isNum, isObj, isStr, optBool, optStr, optStrings } from "../plain.js";
import { invalid, num, parseOrThrow } from "../validate.js";

const ContentPart = z.looseObject({ type: z.string() });
const Content = z.union([z.string(), z.array(ContentPart), z.null()]);

const ToolCall = z.looseObject({
  id: z.string(),
  type: z.literal("function").optional(),
  function: z.object({ name: z.string(), arguments: z.union([z.string(), z.looseObject({})]).optional() }),
});

const MessageSchema = z.discriminatedUnion("role", [
  z.looseObject({ role: z.literal("system"), content: Content }),
  z.looseObject({ role: z.literal("developer"), content: Content }),
  z.looseObject({ role: z.literal("user"), content: Content }),
  z.looseObject({
    role: z.literal("assistant"),
    content: Content.optional(),
    tool_calls: z.array(ToolCall).optional().nullable(),
    reasoning_content: z.string().optional().nullable(),
    function_call: z
      .looseObject({ name: z.string(), arguments: z.string().optional() })
      .optional()
      .nullable(),
  }),
  z.looseObject({ role: z.literal("tool"), tool_call_id: z.string(), content: Content }),
  z.looseObject({ role: z.literal("function"), name: z.string(), content: Content }),
]);

const FunctionDef = z.looseObject({
  name: z.string().min(1),
  description: z.string().optional(),
  parameters: z.looseObject({}).optional(),
});

const RequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(MessageSchema).min(1),
  max_tokens: z.number().int().positive().optional().nullable(),
  max_completion_tokens: z.number().int().positive().optional().nullable(),
  temperature: num.min(0).max(2).optional().nullable(),
  top_p: num.min(0).max(1).optional().nullable(),
  top_k: z.number().int().nonnegative().optional().nullable(),
  stop: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .nullable(),
  stream: z.boolean().optional().nullable(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).optional().nullable(),
  n: z.number().int().optional().nullable(),
  seed: z.number().int().optional().nullable(),
  presence_penalty: num.optional().nullable(),
  frequency_penalty: num.optional().nullable(),
  user: z.string().optional(),
  tools: z
    .array(z.looseObject({ type: z.string(), function: FunctionDef.optional() }))
    .optional()
    .nullable(),
  functions: z.array(FunctionDef).optional().nullable(),
  tool_choice: z
    .union([
      z.enum(["none", "auto", "required"]),
      z.looseObject({ type: z.literal("function"), function: z.object({ name: z.string() }) }),
    ])
    .optional()
    .nullable(),
  parallel_tool_calls: z.boolean().optional().nullable(),
  reasoning_effort: z.string().optional().nullable(),
  response_format: z
    .looseObject({
      type: z.string(),
      json_schema: z
        .looseObject({ name: z.string().optional(), schema: z.record(z.string(), z.unknown()).optional() })
        .optional(),
    })
    .optional()
    .nullable(),
});

const KNOWN = new Set([
  "model",
  "messages",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "top_k",
  "stop",
  "stream",
  "stream_options",
  "n",
  "seed",
  "presence_penalty",
  "frequency_penalty",
  "user",
  "tools",
  "functions",
  "tool_choice",
  "parallel_tool_calls",
  "reasoning_effort",
  "response_format",
]);

export interface OpenAIRequestExtras {
  includeUsage: boolean;
}

type Body = z.output<typeof RequestSchema>;

/** Absent or null: what `.optional().nullable()` takes besides its type. */
function none(v: unknown): boolean {
  return v === undefined || v === null;
}

/** Content: a string, null, or parts that each have a string type. */
function plainContent(v: unknown): boolean {
  if (v === null || isStr(v)) return true;
  if (!Array.isArray(v)) return false;
  for (const p of v) if (!isObj(p) || !isStr(p.type)) return false;
  return true;
}

function plainFunction(f: unknown): boolean {
  return (
    isObj(f) &&
    isStr(f.name) &&
    f.name.length >= 1 &&
    optStr(f.description) &&
    (f.parameters === undefined || isObj(f.parameters))
  );
}

function plainMessage(m: unknown): boolean {
  if (!isObj(m)) return false;
  switch (m.role) {
    case "system":
    case "developer":
    case "user":
      return plainContent(m.content);
    case "tool":
      return isStr(m.tool_call_id) && plainContent(m.content);
    case "function":
      return isStr(m.name) && plainContent(m.content);
    case "assistant": {
      if (m.content !== undefined && !plainContent(m.content)) return false;
      if (!none(m.reasoning_content) && !isStr(m.reasoning_content)) return false;
      const calls = m.tool_calls;
      if (!none(calls)) {
        if (!Array.isArray(calls)) return false;
        for (const c of calls) {
          if (!isObj(c) || !isStr(c.id) || (c.type !== undefined && c.type !== "function")) return false;
          const f = c.function;
          if (!isObj(f) || !isStr(f.name)) return false;
          if (f.arguments !== undefined && !isStr(f.arguments) && !isObj(f.arguments)) return false;
        }
      }
      const fc = m.function_call;
      if (!none(fc) && !(isObj(fc) && isStr(fc.name) && optStr(fc.arguments))) return false;
      return true;
    }
  }
  return false;
}

/** Whether a body certainly passes RequestSchema (see `plain.ts`): then it is decoded as it is. */
function plainRequest(b: unknown): b is Body {
  if (!isObj(b)) return false;
  if (!isStr(b.model) || b.model.length < 1) return false;
  const messages = b.messages;
  if (!Array.isArray(messages) || messages.length < 1) return false;
  for (const m of messages) if (!plainMessage(m)) return false;
  for (const k of ["max_tokens", "max_completion_tokens"])
    if (!none(b[k]) && !(isInt(b[k]) && (b[k] as number) > 0)) return false;
  if (!none(b.temperature) && !(isNum(b.temperature) && b.temperature >= 0 && b.temperature <= 2))
    return false;
  if (!none(b.top_p) && !(isNum(b.top_p) && b.top_p >= 0 && b.top_p <= 1)) return false;
  if (!none(b.top_k) && !(isInt(b.top_k) && b.top_k >= 0)) return false;
  if (!none(b.stop) && !isStr(b.stop) && !optStrings(b.stop)) return false;
  if (!none(b.stream) && typeof b.stream !== "boolean") return false;
  const so = b.stream_options;
  if (!none(so) && !(isObj(so) && optBool(so.include_usage))) return false;
  if (!none(b.n) && !isInt(b.n)) return false;
  if (!none(b.seed) && !isInt(b.seed)) return false;
  if (!none(b.presence_penalty) && !isNum(b.presence_penalty)) return false;
  if (!none(b.frequency_penalty) && !isNum(b.frequency_penalty)) return false;
  if (!optStr(b.user)) return false;
  if (!none(b.tools)) {
    if (!Array.isArray(b.tools)) return false;
    for (const t of b.tools)
      if (!isObj(t) || !isStr(t.type) || (t.function !== undefined && !plainFunction(t.function)))
        return false;
  }
  if (!none(b.functions)) {
    if (!Array.isArray(b.functions)) return false;
    for (const f of b.functions) if (!plainFunction(f)) return false;
  }
  const tc = b.tool_choice;
  if (!none(tc) && tc !== "none" && tc !== "auto" && tc !== "required") {
    if (!isObj(tc) || tc.type !== "function" || !isObj(tc.function) || !isStr(tc.function.name)) return false;
  }
  if (!none(b.parallel_tool_calls) && typeof b.parallel_tool_calls !== "boolean") return false;
  if (!none(b.reasoning_effort) && !isStr(b.reasoning_effort)) return false;
  if (!none(b.response_format)) return false; // rare: the schema checks it
  return true;
}

/** Decodes an OpenAI Chat Completions body into the IR. Throws a 400 GatewayError on bad input. */
export function decodeOpenAIRequest(
  body: unknown,
  /** Tests: through zod even when the body is well-formed. */
  viaSchema = false,
): Request & { openai: OpenAIRequestExtras } {
  // a well-formed body is read as it is; anything else through zod, for its error
  const plain = viaSchema !== true && fastPath("plain-check") && plainRequest(body);
  const b = plain ? body : parseOrThrow(RequestSchema, body);
  const ignored: string[] = [];
  for (const k of Object.keys(b))
    if (!KNOWN.has(k) && (b as Record<string, unknown>)[k] != null) ignored.push(k);
  if (b.n != null && b.n !== 1)
    throw invalid("n", "only n=1 is supported: local backends produce one choice");

  const system: string[] = [];
  const messages: Message[] = [];
  const toolNames = new Map<string, string>();
  let leading = true;
  const push = (role: Message["role"], parts: Part[]) => {
    const last = messages[messages.length - 1];
    // consecutive tool results belong to one user turn
    if (
      role === "user" &&
      last?.role === "user" &&
      parts[0]?.type === "toolResult" &&
      last.parts.at(-1)?.type === "toolResult"
    ) {
      messages[messages.length - 1] = { role, parts: [...last.parts, ...parts] };
    } else messages.push({ role, parts });
  };

  for (const [i, m] of b.messages.entries()) {
    const path = `messages.${i}`;
    switch (m.role) {
      case "system":
      case "developer": {
        const text = textOnly(m.content, `${path}.content`);
        if (leading) system.push(text);
        else messages.push({ role: "system", parts: [{ type: "text", text }] });
        continue;
      }
      case "user":
        push("user", userParts(m.content, `${path}.content`, ignored));
        break;
      case "assistant": {
        const parts: Part[] = [];
        if (m.reasoning_content) parts.push({ type: "thinking", text: m.reasoning_content });
        const text = m.content == null ? "" : textOnly(m.content, `${path}.content`);
        if (text) parts.push({ type: "text", text });
        for (const [j, tc] of (m.tool_calls ?? []).entries()) {
          toolNames.set(tc.id, tc.function.name);
          parts.push({
            type: "toolCall",
            id: tc.id,
            name: tc.function.name,
            input: parseArguments(tc.function.arguments, `${path}.tool_calls.${j}.function.arguments`),
          });
        }
        if (m.function_call) {
          const id = `call_${i}`;
          parts.push({
            type: "toolCall",
            id,
            name: m.function_call.name,
            input: parseArguments(m.function_call.arguments, `${path}.function_call.arguments`),
          });
        }
        push("assistant", parts);
        break;
      }
      case "tool":
      case "function": {
        const id = m.role === "tool" ? m.tool_call_id : m.name;
        const content = m.content == null ? [] : userParts(m.content, `${path}.content`, ignored);
        const part: ToolResultPart = {
          type: "toolResult",
          toolCallId: m.role === "tool" ? id : `call_${i - 1}`,
          content: content.filter((p): p is TextPart | ImagePart => p.type === "text" || p.type === "image"),
        };
        const name = m.role === "tool" ? toolNames.get(id) : m.name;
        if (name) part.toolName = name;
        push("user", [part]);
        break;
      }
    }
    leading = false;
  }

  const tools: Tool[] = [];
  for (const [i, t] of (b.tools ?? []).entries()) {
    if (t.type !== "function" || !t.function) {
      ignored.push(`tools.${i}(${t.type})`);
      continue;
    }
    tools.push(toolOf(t.function));
  }
  for (const f of b.functions ?? []) tools.push(toolOf(f));

  let toolChoice: ToolChoice = { type: "auto" };
  const tc = b.tool_choice;
  if (tc === "none") toolChoice = { type: "none" };
  else if (tc === "required") toolChoice = { type: "any" };
  else if (tc && typeof tc === "object") toolChoice = { type: "tool", name: tc.function.name };

  const maxOut = b.max_completion_tokens ?? b.max_tokens ?? undefined;
  freezeMessages(messages);
  const req: Request & { openai: OpenAIRequestExtras } = {
    model: b.model,
    system: system.join("\n\n"),
    messages,
    tools,
    toolChoice,
    limits: maxOut === undefined ? {} : { maxOutputTokens: maxOut },
    sampling: {},
    thinking: {},
    stream: b.stream === true,
    metadata: b.user ? { user_id: b.user } : {},
    ignored,
    openai: { includeUsage: b.stream_options?.include_usage === true },
  };
  if (b.parallel_tool_calls != null) req.parallelToolCalls = b.parallel_tool_calls;
  if (b.temperature != null) req.sampling.temperature = b.temperature;
  if (b.top_p != null) req.sampling.topP = b.top_p;
  if (b.top_k != null) req.sampling.topK = b.top_k;
  if (b.seed != null) req.sampling.seed = b.seed;
  if (b.presence_penalty != null) req.sampling.presencePenalty = b.presence_penalty;
  if (b.frequency_penalty != null) req.sampling.frequencyPenalty = b.frequency_penalty;
  if (b.stop != null) {
    const stop = typeof b.stop === "string" ? [b.stop] : b.stop;
    if (stop.length) req.sampling.stop = stop;
  }
  const rf = b.response_format;
  if (rf?.type === "json_object") req.format = {};
  else if (rf?.type === "json_schema") {
    if (!rf.json_schema)
      throw invalid("response_format", "json_schema is required when its type is 'json_schema'");
    req.format = {
      ...(rf.json_schema.schema ? { schema: rf.json_schema.schema } : {}),
      ...(rf.json_schema.name ? { name: rf.json_schema.name } : {}),
    };
  }
  if (b.reasoning_effort != null) {
    req.thinking.enabled = b.reasoning_effort !== "none";
    if (req.thinking.enabled) req.thinking = withEffort(req.thinking, b.reasoning_effort);
  }
  return req;
}

function toolOf(f: z.infer<typeof FunctionDef>): Tool {
  const tool: Tool = { name: f.name, inputSchema: f.parameters ?? { type: "object", properties: {} } };
  if (f.description) tool.description = f.description;
  return tool;
}

function parseArguments(
  args: string | Record<string, unknown> | undefined,
  path: string,
): Record<string, unknown> {
  if (args === undefined) return {};
  if (typeof args === "object") return args;
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

function textOnly(content: z.infer<typeof Content>, path: string): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content
    .map((p, i) => {
      if (p.type === "text" && typeof p.text === "string") return p.text;
      if (p.type === "refusal" && typeof p.refusal === "string") return p.refusal;
      throw invalid(`${path}.${i}`, `expected a text part, got '${p.type}'`);
    })
    .join("\n");
}

function userParts(content: z.infer<typeof Content>, path: string, ignored: string[]): Part[] {
  if (content == null) return [];
  if (typeof content === "string") return [{ type: "text", text: content }];
  const parts: Part[] = [];
  for (const [i, p] of content.entries()) {
    if (p.type === "text") {
      if (typeof p.text !== "string") throw invalid(`${path}.${i}.text`, "expected string");
      parts.push({ type: "text", text: p.text });
    } else if (p.type === "image_url") {
      const url =
        typeof p.image_url === "string" ? p.image_url : (p.image_url as { url?: unknown } | undefined)?.url;
      if (typeof url !== "string") throw invalid(`${path}.${i}.image_url.url`, "expected string");
      parts.push(imageFromUrl(url));
    } else {
      ignored.push(`${path}.${i}(${p.type})`);
    }
  }
  return parts;
}

function imageFromUrl(url: string): ImagePart {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (m) return { type: "image", source: { kind: "base64", mediaType: m[1]!, data: m[2]! } };
  return { type: "image", source: { kind: "url", url } };
}
