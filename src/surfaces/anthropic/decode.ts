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
import { isInt, isNum, isObj, isStr, optBool, optRange, optStr, optStrings } from "../plain.js";
import { invalid, num, parseOrThrow } from "../validate.js";

const Text = z.object({ type: z.literal("text"), text: z.string() });
const ImageSource = z.discriminatedUnion("type", [
  z.object({ type: z.literal("base64"), media_type: z.string(), data: z.string() }),
  z.object({ type: z.literal("url"), url: z.string() }),
]);
const Image = z.object({ type: z.literal("image"), source: ImageSource });
const ToolUse = z.object({
  type: z.literal("tool_use"),
  id: z.string(),
  name: z.string(),
  input: z.unknown(),
});
const ToolResult = z.object({
  type: z.literal("tool_result"),
  tool_use_id: z.string(),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string() }))]).optional(),
  is_error: z.boolean().optional(),
});
const Thinking = z.object({
  type: z.literal("thinking"),
  thinking: z.string(),
  signature: z.string().optional(),
});
const Redacted = z.object({ type: z.literal("redacted_thinking"), data: z.string() });
/**
 * A document: its text reaches the model as text (`source.type` "text", or "content" with a
 * string or text blocks); a PDF (base64, url, file) is left out and noted, as no local server
 * reads PDFs.
 */
const Document = z.looseObject({
  type: z.literal("document"),
  source: z.looseObject({ type: z.string() }),
  title: z.string().nullish(),
  context: z.string().nullish(),
});

/** Block types this surface understands; any other is accepted and dropped, and recorded. */
const BLOCKS: Record<string, z.ZodType> = {
  text: Text,
  image: Image,
  tool_use: ToolUse,
  tool_result: ToolResult,
  thinking: Thinking,
  redacted_thinking: Redacted,
  document: Document,
};

const Block = z.looseObject({ type: z.string() });

const RequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(
    z.looseObject({
      role: z.enum(["user", "assistant", "system"]),
      content: z.union([z.string(), z.array(Block)]),
    }),
  ),
  max_tokens: z.number().int().positive(),
  system: z.union([z.string(), z.array(Block)]).optional(),
  temperature: num.min(0).max(2).optional(),
  top_p: num.min(0).max(1).optional(),
  top_k: z.number().int().nonnegative().optional(),
  stop_sequences: z.array(z.string()).optional(),
  stream: z.boolean().optional(),
  tools: z.array(z.looseObject({ name: z.string().min(1), type: z.string().optional() })).optional(),
  tool_choice: z
    .object({
      type: z.enum(["auto", "any", "tool", "none"]),
      name: z.string().optional(),
      disable_parallel_tool_use: z.boolean().optional(),
    })
    .optional(),
  metadata: z.looseObject({}).optional(),
  thinking: z.looseObject({ type: z.string(), budget_tokens: z.number().optional() }).optional(),
  output_config: z
    .looseObject({
      effort: z.string().optional(),
      format: z
        .looseObject({ type: z.string(), schema: z.record(z.string(), z.unknown()).optional() })
        .optional(),
    })
    .optional(),
});

/** Top-level fields that are understood. Others are accepted, recorded and not used. */
const KNOWN = new Set([
  "model",
  "messages",
  "max_tokens",
  "system",
  "temperature",
  "top_p",
  "top_k",
  "stop_sequences",
  "stream",
  "tools",
  "tool_choice",
  "metadata",
  "thinking",
  "output_config",
]);

type Body = z.output<typeof RequestSchema>;

/**
 * Whether a body certainly passes RequestSchema and, block by block, the schemas `decodeBlock`
 * and the system prompt apply (see `plain.ts`): then it is decoded as it is, with no zod run.
 */
function plainRequest(b: unknown): b is Body {
  if (!isObj(b)) return false;
  if (!isStr(b.model) || b.model.length < 1) return false;
  if (!isInt(b.max_tokens) || b.max_tokens <= 0) return false;
  const messages = b.messages;
  if (!Array.isArray(messages)) return false;
  for (const m of messages) {
    if (!isObj(m)) return false;
    const role = m.role;
    if (role !== "user" && role !== "assistant" && role !== "system") return false;
    if (!isStr(m.content) && !plainBlocks(m.content)) return false;
  }
  const system = b.system;
  if (system !== undefined && !isStr(system)) {
    if (!Array.isArray(system)) return false;
    for (const blk of system) {
      if (!isObj(blk) || !isStr(blk.type)) return false;
      if (blk.type === "text" && !isStr(blk.text)) return false;
    }
  }
  if (!optRange(b.temperature, 0, 2) || !optRange(b.top_p, 0, 1)) return false;
  if (b.top_k !== undefined && !(isInt(b.top_k) && b.top_k >= 0)) return false;
  if (!optStrings(b.stop_sequences) || !optBool(b.stream)) return false;
  if (b.tools !== undefined) {
    if (!Array.isArray(b.tools)) return false;
    for (const t of b.tools)
      if (!isObj(t) || !isStr(t.name) || t.name.length < 1 || !optStr(t.type)) return false;
  }
  const c = b.tool_choice;
  if (c !== undefined) {
    if (!isObj(c)) return false;
    if (c.type !== "auto" && c.type !== "any" && c.type !== "tool" && c.type !== "none") return false;
    if (!optStr(c.name) || !optBool(c.disable_parallel_tool_use)) return false;
  }
  if (b.metadata !== undefined && !isObj(b.metadata)) return false;
  const t = b.thinking;
  if (t !== undefined) {
    if (!isObj(t) || !isStr(t.type)) return false;
    if (t.budget_tokens !== undefined && !isNum(t.budget_tokens)) return false;
  }
  const oc = b.output_config;
  if (oc !== undefined && (!isObj(oc) || !optStr(oc.effort) || oc.format !== undefined)) return false;
  return true;
}

/** Content blocks that pass Block and, where their type is known, its schema in BLOCKS. */
function plainBlocks(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (const blk of v) if (!plainBlock(blk)) return false;
  return true;
}

function plainBlock(blk: unknown): boolean {
  if (!isObj(blk) || !isStr(blk.type)) return false;
  switch (blk.type) {
    case "text":
      return isStr(blk.text);
    case "image": {
      const s = blk.source;
      if (!isObj(s)) return false;
      if (s.type === "base64") return isStr(s.media_type) && isStr(s.data);
      return s.type === "url" && isStr(s.url);
    }
    case "tool_use":
      return isStr(blk.id) && isStr(blk.name) && blk.input !== undefined;
    case "tool_result":
      return (
        isStr(blk.tool_use_id) &&
        (blk.content === undefined || isStr(blk.content) || plainBlocks(blk.content)) &&
        optBool(blk.is_error)
      );
    case "thinking":
      return isStr(blk.thinking) && optStr(blk.signature);
    case "redacted_thinking":
      return isStr(blk.data);
    case "document": {
      const s = blk.source;
      if (!isObj(s) || !isStr(s.type)) return false;
      if (s.type === "text" && !isStr(s.data)) return false;
      if (s.type === "content" && !isStr(s.content) && !plainBlocks(s.content)) return false;
      return (blk.title == null || isStr(blk.title)) && (blk.context == null || isStr(blk.context));
    }
  }
  // a type this surface does not know is dropped, its fields unread
  return true;
}

/** Decodes an Anthropic Messages request body into the IR. Throws a 400 GatewayError on bad input. */
export function decodeAnthropicRequest(
  body: unknown,
  /** Tests: through zod even when the body is well-formed. */
  viaSchema = false,
): Request {
  // a well-formed body is read as it is; anything else through zod, for its error
  const plain = viaSchema !== true && fastPath("plain-check") && plainRequest(body);
  const b = plain ? body : parseOrThrow(RequestSchema, body);
  const ignored: string[] = [];
  for (const k of Object.keys(b)) if (!KNOWN.has(k)) ignored.push(k);

  let system = "";
  if (typeof b.system === "string") system = b.system;
  else if (b.system) {
    system = b.system
      .map((blk, i) => {
        if (blk.type !== "text") {
          ignored.push(`system.${i}(${blk.type})`);
          return "";
        }
        const t = plain ? (blk as unknown as { text: string }) : parseOrThrow(Text, blk, `system.${i}`);
        if ("cache_control" in blk) noteOnce(ignored, "cache_control");
        return t.text;
      })
      .filter(Boolean)
      .join("\n\n");
  }

  const toolNames = new Map<string, string>();
  const messages: Message[] = b.messages.map((m, mi) => {
    const path = `messages.${mi}.content`;
    if (typeof m.content === "string") return { role: m.role, parts: [{ type: "text", text: m.content }] };
    const parts: Part[] = [];
    for (let bi = 0; bi < m.content.length; bi++)
      parts.push(...decodeBlock(m.content[bi]!, `${path}.${bi}`, ignored, toolNames, plain));
    return { role: m.role, parts };
  });

  const tools: Tool[] = [];
  for (const [i, t] of (b.tools ?? []).entries()) {
    if ("cache_control" in t) noteOnce(ignored, "cache_control");
    const schema = t.input_schema;
    if (schema === undefined && t.type && t.type !== "custom") {
      // Anthropic's server-side tools (web search, code execution…) exist only on Anthropic.
      ignored.push(`tools.${i}(${t.type})`);
      continue;
    }
    if (!schema || typeof schema !== "object" || Array.isArray(schema)) {
      throw invalid(`tools.${i}.input_schema`, "Field required (a JSON schema object)");
    }
    const tool: Tool = { name: t.name, inputSchema: schema as Record<string, unknown> };
    if (typeof t.description === "string") tool.description = t.description;
    tools.push(tool);
  }

  let toolChoice: ToolChoice = { type: "auto" };
  let parallelToolCalls: boolean | undefined;
  if (b.tool_choice) {
    const c = b.tool_choice;
    if (c.type === "tool") {
      if (!c.name) throw invalid("tool_choice.name", "Field required when type is 'tool'");
      toolChoice = { type: "tool", name: c.name };
    } else toolChoice = { type: c.type };
    if (c.disable_parallel_tool_use) parallelToolCalls = false;
  }

  freezeMessages(messages);
  const req: Request = {
    model: b.model,
    system,
    messages,
    tools,
    toolChoice,
    limits: { maxOutputTokens: b.max_tokens },
    sampling: {},
    thinking: {},
    stream: b.stream === true,
    metadata: b.metadata ?? {},
    ignored,
  };
  if (parallelToolCalls !== undefined) req.parallelToolCalls = parallelToolCalls;
  if (b.temperature !== undefined) req.sampling.temperature = b.temperature;
  if (b.top_p !== undefined) req.sampling.topP = b.top_p;
  if (b.top_k !== undefined) req.sampling.topK = b.top_k;
  if (b.stop_sequences?.length) req.sampling.stop = b.stop_sequences;
  if (b.thinking) {
    if (b.thinking.type === "enabled" || b.thinking.type === "adaptive") {
      req.thinking.enabled = true;
      if (typeof b.thinking.budget_tokens === "number") req.thinking.budgetTokens = b.thinking.budget_tokens;
    } else if (b.thinking.type === "disabled") req.thinking.enabled = false;
  }
  if (req.thinking.enabled) req.thinking = withEffort(req.thinking, b.output_config?.effort);
  const format = b.output_config?.format;
  if (format?.type === "json_schema") req.format = format.schema ? { schema: format.schema } : {};
  return req;
}

function decodeBlock(
  raw: { type: string; [k: string]: unknown },
  path: string,
  ignored: string[],
  toolNames: Map<string, string>,
  /** The block passed `plainBlock` already. */
  plain: boolean,
): Part[] {
  const schema = BLOCKS[raw.type];
  if (!schema) {
    ignored.push(`${path}(${raw.type})`);
    return [];
  }
  if ("cache_control" in raw) noteOnce(ignored, "cache_control");
  const blk = (plain ? raw : parseOrThrow(schema, raw, path)) as any;
  switch (raw.type) {
    case "text":
      return [{ type: "text", text: blk.text }];
    case "image":
      return [decodeImage(blk)];
    case "tool_use": {
      toolNames.set(blk.id, blk.name);
      const input = blk.input;
      return [
        {
          type: "toolCall",
          id: blk.id,
          name: blk.name,
          input:
            input && typeof input === "object" && !Array.isArray(input)
              ? (input as Record<string, unknown>)
              : input === undefined
                ? {}
                : { value: input },
        },
      ];
    }
    case "tool_result": {
      const content: Array<TextPart | ImagePart> = [];
      if (typeof blk.content === "string") content.push({ type: "text", text: blk.content });
      else
        for (const [i, c] of (blk.content ?? []).entries()) {
          for (const p of decodeBlock(c, `${path}.content.${i}`, ignored, toolNames, plain)) {
            if (p.type === "text" || p.type === "image") content.push(p);
          }
        }
      const part: ToolResultPart = { type: "toolResult", toolCallId: blk.tool_use_id, content };
      const name = toolNames.get(blk.tool_use_id);
      if (name) part.toolName = name;
      if (blk.is_error) part.isError = true;
      return [part];
    }
    case "thinking":
      return [
        { type: "thinking", text: blk.thinking, ...(blk.signature ? { signature: blk.signature } : {}) },
      ];
    case "redacted_thinking":
      return [{ type: "thinking", text: "", redacted: blk.data }];
    case "document":
      return decodeDocument(blk, path, ignored, toolNames, plain);
  }
  return [];
}

/** A document's text as text parts, its title and context first; any other document noted and left out. */
function decodeDocument(
  blk: z.infer<typeof Document>,
  path: string,
  ignored: string[],
  toolNames: Map<string, string>,
  plain: boolean,
): Part[] {
  const s = blk.source as Record<string, unknown>;
  const head = [blk.title, blk.context].filter((x): x is string => !!x).join("\n");
  const parts: Part[] = head ? [{ type: "text", text: head }] : [];
  if (s.type === "text") {
    if (typeof s.data !== "string")
      throw invalid(`${path}.source.data`, "a text document's data must be a string");
    parts.push({ type: "text", text: s.data });
    return parts;
  }
  if (s.type === "content") {
    if (typeof s.content === "string") parts.push({ type: "text", text: s.content });
    else if (Array.isArray(s.content))
      for (const [i, c] of s.content.entries()) {
        if (!c || typeof c !== "object" || typeof (c as { type?: unknown }).type !== "string")
          throw invalid(`${path}.source.content.${i}`, "must be a content block");
        for (const p of decodeBlock(c, `${path}.source.content.${i}`, ignored, toolNames, plain))
          if (p.type === "text" || p.type === "image") parts.push(p);
      }
    else throw invalid(`${path}.source.content`, "must be a string or a list of content blocks");
    return parts;
  }
  const what = typeof s.media_type === "string" ? s.media_type : `${s.type} source`;
  ignored.push(`${path}(document: ${what}, left out: only text documents reach a local model)`);
  return [];
}

function decodeImage(blk: z.infer<typeof Image>): ImagePart {
  const s = blk.source;
  return s.type === "base64"
    ? { type: "image", source: { kind: "base64", mediaType: s.media_type, data: s.data } }
    : { type: "image", source: { kind: "url", url: s.url } };
}

function noteOnce(list: string[], what: string): void {
  if (!list.includes(what)) list.push(what);
}
