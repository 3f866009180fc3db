import type {
  ImagePart,
  Message,
  Request,
  TextPart,
  Tool,
  ToolCallPart,
  ToolChoice,
  ToolResultPart,
} from "../../ir/types.js";
import { fastPath } from "../../fast-paths.js";
import type { ModelProfile } from "../../ir/contract.js";
import { JsonText, type JsonWriter, jsonBody, ToolCache } from "../json-body.js";
import type { WireCaps } from "../../ir/contract.js";

/** A tool definition on this wire. */
function encodeTool(t: Tool) {
  return {
    type: "function",
    function: { name: t.name, description: t.description ?? "", parameters: t.inputSchema },
  };
}

/** How the big parts of a body are made: as objects, or as JSON text written straight into the body. */
interface Parts {
  messages(req: Request, caps: WireCaps): unknown;
  tools(tools: Tool[]): unknown;
}

const OBJECTS: Parts = {
  messages: (req, caps) => {
    const messages: Record<string, unknown>[] = [];
    if (req.system) messages.push({ role: "system", content: req.system });
    for (const m of req.messages) encodeMessage(m, caps, messages);
    return messages;
  },
  tools: (tools) => tools.map(encodeTool),
};

const toolCache = new ToolCache(encodeTool);

const TEXT: Parts = {
  messages: (req, caps) => new JsonText((w) => writeMessages(w, req, caps)),
  tools: (tools) => toolCache.array(tools),
};

/**
 * The body of `encodeChatRequest` as JSON bytes, ready to send: the same JSON text, written
 * without the objects in between, with the tool definitions and long strings (system prompt,
 * tool results, earlier turns) taken from what earlier requests sent (see `json-body.ts`).
 */
export function encodeChatBody(
  req: Request,
  profile: ModelProfile,
  caps: WireCaps,
  streamUsage: boolean,
  /** Fields of the server's own (llama.cpp's cache_prompt, id_slot). */
  extra?: Record<string, unknown>,
): Buffer {
  const body = encodeBody(req, profile, caps, streamUsage, TEXT);
  if (extra) Object.assign(body, extra, profile.extraBody);
  return jsonBody(body);
}

/**
 * The body to send, as JSON text: written straight to bytes (`encodeChatBody`, a pooled buffer
 * its caller gives back with `releaseBody` once sent) when the `body-writer` fast path is on
 * (fast-paths.ts), else JSON.stringify of `encodeChatRequest`.
 */
export function chatBody(
  req: Request,
  profile: ModelProfile,
  caps: WireCaps,
  streamUsage: boolean,
  /** Fields of the server's own (llama.cpp's cache_prompt, id_slot). */
  extra?: Record<string, unknown>,
): string | Buffer {
  if (fastPath("body-writer")) return encodeChatBody(req, profile, caps, streamUsage, extra);
  const body = encodeChatRequest(req, profile, caps, streamUsage);
  if (extra) Object.assign(body, extra, profile.extraBody);
  return JSON.stringify(body);
}

/** The OpenAI Chat Completions body for a normalized request. */
export function encodeChatRequest(req: Request, profile: ModelProfile, caps: WireCaps, streamUsage: boolean) {
  return encodeBody(req, profile, caps, streamUsage, OBJECTS);
}

function encodeBody(req: Request, profile: ModelProfile, caps: WireCaps, streamUsage: boolean, parts: Parts) {
  const messages = parts.messages(req, caps);
  const body: Record<string, unknown> = { model: profile.model, messages, stream: true };
  if (streamUsage) body.stream_options = { include_usage: true };
  if (req.limits.maxOutputTokens !== undefined) body.max_tokens = req.limits.maxOutputTokens;
  const s = req.sampling;
  if (s.temperature !== undefined) body.temperature = s.temperature;
  if (s.topP !== undefined) body.top_p = s.topP;
  if (s.topK !== undefined) body.top_k = s.topK;
  if (s.stop?.length) body.stop = s.stop;
  if (s.seed !== undefined) body.seed = s.seed;
  if (s.presencePenalty !== undefined) body.presence_penalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) body.frequency_penalty = s.frequencyPenalty;
  if (req.tools.length && caps.tools) {
    body.tools = parts.tools(req.tools);
    body.tool_choice = encodeToolChoice(req.toolChoice);
    if (req.parallelToolCalls !== undefined) body.parallel_tool_calls = req.parallelToolCalls;
  }
  if (req.constrain && caps.jsonSchema) {
    // llama.cpp, vLLM and LM Studio all turn a json_schema response format into a grammar
    body.response_format = {
      type: "json_schema",
      json_schema: { name: "answer", schema: req.constrain.schema, strict: true },
    };
  }
  if (profile.extraBody) Object.assign(body, profile.extraBody);
  return body;
}

function encodeToolChoice(c: ToolChoice): unknown {
  switch (c.type) {
    case "auto":
      return "auto";
    case "any":
      return "required";
    case "none":
      return "none";
    case "tool":
      return { type: "function", function: { name: c.name } };
  }
}

function encodeMessage(m: Message, caps: WireCaps, out: Record<string, unknown>[]): void {
  if (m.role === "system") {
    out.push({ role: "system", content: textOf(m.parts) });
    return;
  }
  if (m.role === "assistant") {
    const text = textOf(m.parts);
    const calls = m.parts.flatMap((p) =>
      p.type === "toolCall"
        ? [{ id: p.id, type: "function", function: { name: p.name, arguments: JSON.stringify(p.input) } }]
        : [],
    );
    const msg: Record<string, unknown> = { role: "assistant", content: calls.length && !text ? null : text };
    if (calls.length) msg.tool_calls = calls;
    out.push(msg);
    return;
  }
  // user: tool results become `tool` messages, in order, before what the user wrote.
  let pending: Array<TextPart | ImagePart> = [];
  const flush = () => {
    if (!pending.length) return;
    out.push({ role: "user", content: userContent(pending, caps) });
    pending = [];
  };
  for (const p of liftToolImages(m.parts)) {
    if (p.type === "toolResult") {
      flush();
      const text = p.content.map((c) => (c.type === "text" ? c.text : "[image]")).join("\n");
      out.push({ role: "tool", tool_call_id: p.toolCallId, content: p.isError ? `Error: ${text}` : text });
    } else if (p.type === "text" || p.type === "image") {
      pending.push(p);
    }
  }
  flush();
}

/**
 * A user turn's parts with the images of its tool results lifted out: OpenAI-compatible servers take
 * text only in `tool` messages, so each image goes in a user turn right after the tool results,
 * named by its call, and the result says where it went.
 */
function liftToolImages(parts: Message["parts"]): Message["parts"] {
  if (!parts.some((p) => p.type === "toolResult" && p.content.some((c) => c.type === "image"))) return parts;
  const out: Message["parts"] = [];
  let lifted: Array<TextPart | ImagePart> = [];
  const flush = () => {
    out.push(...lifted);
    lifted = [];
  };
  for (const p of parts) {
    if (p.type !== "toolResult") {
      flush();
      out.push(p);
      continue;
    }
    const images = p.content.filter((c): c is ImagePart => c.type === "image");
    if (!images.length) {
      out.push(p);
      continue;
    }
    const content = p.content.map((c) =>
      c.type === "image" ? { type: "text" as const, text: "[image: in the next user message]" } : c,
    );
    out.push({ ...p, content });
    lifted.push({ type: "text", text: `The image(s) returned by tool call ${p.toolCallId}:` }, ...images);
  }
  flush();
  return out;
}

function userContent(parts: Array<TextPart | ImagePart>, caps: WireCaps): unknown {
  if (caps.stringContentOnly || parts.every((p) => p.type === "text")) return textOf(parts);
  return parts.map((p) =>
    p.type === "text"
      ? { type: "text", text: p.text }
      : {
          type: "image_url",
          image_url: {
            url:
              p.source.kind === "url" ? p.source.url : `data:${p.source.mediaType};base64,${p.source.data}`,
          },
        },
  );
}

function textOf(parts: Message["parts"]): string {
  let s = "";
  for (const p of parts) if (p.type === "text") s += s ? `\n${p.text}` : p.text;
  return s;
}

/** One entry of an assistant message's `tool_calls`. */
function writeCall(w: JsonWriter, p: ToolCallPart): void {
  w.add('{"id":');
  w.str(p.id);
  w.add(',"type":"function","function":{"name":');
  w.str(p.name);
  const args = JSON.stringify(p.input);
  if (args !== undefined) {
    w.add(',"arguments":');
    w.str(args);
  }
  w.add("}}");
}

/** A `tool` message. */
function writeResult(w: JsonWriter, p: ToolResultPart): void {
  const text = p.content.map((c) => (c.type === "text" ? c.text : "[image]")).join("\n");
  w.add('{"role":"tool","tool_call_id":');
  w.str(p.toolCallId);
  w.add(',"content":');
  w.str(p.isError ? `Error: ${text}` : text);
  w.add("}");
}

/**
 * `encodeMessage` for the whole conversation, written as JSON text: the same text
 * JSON.stringify makes of what `encodeMessage` builds (test/backends/json-body.test.ts holds them equal).
 */
function writeMessages(w: JsonWriter, req: Request, caps: WireCaps): void {
  w.add("[");
  let first = true;
  const open = (head: string) => {
    w.add(first ? head : `,${head}`);
    first = false;
  };
  if (req.system) {
    open('{"role":"system","content":');
    w.str(req.system);
    w.add("}");
  }
  for (const m of req.messages) writeMessage(w, m, caps, open);
  w.add("]");
}

/** The chat messages one IR message becomes (none, one, or several), each begun with `open`. */
function writeMessage(w: JsonWriter, m: Message, caps: WireCaps, open: (head: string) => void): void {
  if (m.role === "system") {
    open('{"role":"system","content":');
    w.str(textOf(m.parts));
    w.add("}");
    return;
  }
  if (m.role === "assistant") {
    const text = textOf(m.parts);
    let callCount = 0;
    for (const p of m.parts) if (p.type === "toolCall") callCount++;
    open('{"role":"assistant","content":');
    if (callCount && !text) w.add("null");
    else w.str(text);
    if (callCount) {
      w.add(',"tool_calls":[');
      let n = 0;
      for (const p of m.parts) {
        if (p.type !== "toolCall") continue;
        if (n++) w.add(",");
        writeCall(w, p);
      }
      w.add("]");
    }
    w.add("}");
    return;
  }
  // user: tool results become `tool` messages, in order, before what the user wrote.
  let pending: Array<TextPart | ImagePart> = [];
  const flush = () => {
    if (!pending.length) return;
    open('{"role":"user","content":');
    w.value(userContent(pending, caps));
    w.add("}");
    pending = [];
  };
  for (const p of liftToolImages(m.parts)) {
    if (p.type === "toolResult") {
      flush();
      open("");
      writeResult(w, p);
    } else if (p.type === "text" || p.type === "image") {
      pending.push(p);
    }
  }
  flush();
}
