import type { Message, Request, Tool, ToolChoice } from "../../ir/types.js";
import type { ModelProfile } from "../../ir/contract.js";
import { isDeepFrozen } from "../../ir/frozen.js";
import { Fragments, JsonText, type JsonWriter, jsonBody, ToolCache } from "../json-body.js";

/** A tool definition on this wire. */
function encodeTool(t: Tool) {
  return {
    type: "function",
    function: { name: t.name, description: t.description ?? "", parameters: t.inputSchema },
  };
}

const toolCache = new ToolCache(encodeTool);

/**
 * The body of `encodeOllamaChat` as JSON bytes, ready to send: the same JSON text, with the tool
 * definitions and long strings taken from what earlier requests sent (see `json-body.ts`).
 */
export function encodeOllamaBody(req: Request, profile: ModelProfile): Buffer {
  return jsonBody(
    encodeOllamaChat(
      req,
      profile,
      (tools) => toolCache.array(tools),
      () => new JsonText((w) => writeMessages(w, req)),
    ),
  );
}

/** The messages' JSON text kept for the turns of a history the surface kept (frozen, found by identity). */
const kept = new Fragments();

/** `messages` as JSON text: what `encodeMessages` builds, kept turns written from their kept bytes. */
function writeMessages(w: JsonWriter, req: Request): void {
  w.add("[");
  let first = true;
  const one = (msg: Record<string, unknown>) => {
    if (!first) w.add(",");
    first = false;
    w.value(msg);
  };
  if (req.system) one({ role: "system", content: req.system });
  for (const m of req.messages) {
    if (!isDeepFrozen(m)) {
      const out: Record<string, unknown>[] = [];
      encodeMessage(m, out);
      for (const msg of out) one(msg);
      continue;
    }
    const b = kept.bytes(m, (fw) => {
      const out: Record<string, unknown>[] = [];
      encodeMessage(m, out);
      for (const [i, msg] of out.entries()) {
        if (i) fw.add(",");
        fw.value(msg);
      }
    });
    if (!b.length) continue;
    if (!first) w.add(",");
    first = false;
    w.bytes(b);
  }
  w.add("]");
}

function encodeMessages(req: Request): Record<string, unknown>[] {
  const messages: Record<string, unknown>[] = [];
  if (req.system) messages.push({ role: "system", content: req.system });
  for (const m of req.messages) encodeMessage(m, messages);
  return messages;
}

/**
 * How long Ollama keeps the model (and its prompt cache) loaded after a request when the profile
 * does not say: its own default of 5 minutes unloads an agent's model during a human pause, and the
 * next turn reads the whole 16–30k-token prompt again.
 */
export const DEFAULT_KEEP_ALIVE = "30m";

/** The body for Ollama's native POST /api/chat. */
export function encodeOllamaChat(
  req: Request,
  profile: ModelProfile,
  /** How the tool definitions are written: as objects, or as JSON text already made. */
  encodeTools: (tools: Tool[]) => unknown = (tools) => tools.map(encodeTool),
  /** How the messages are written: as objects, or as JSON text. */
  messagesOf: (req: Request) => unknown = encodeMessages,
) {
  const messages = messagesOf(req);

  const options: Record<string, unknown> = {};
  if (profile.numCtx !== undefined) options.num_ctx = profile.numCtx;
  if (req.limits.maxOutputTokens !== undefined) options.num_predict = req.limits.maxOutputTokens;
  const s = req.sampling;
  if (s.temperature !== undefined) options.temperature = s.temperature;
  if (s.topP !== undefined) options.top_p = s.topP;
  if (s.topK !== undefined) options.top_k = s.topK;
  if (s.stop?.length) options.stop = s.stop;
  if (s.seed !== undefined) options.seed = s.seed;
  if (s.presencePenalty !== undefined) options.presence_penalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) options.frequency_penalty = s.frequencyPenalty;

  const body: Record<string, unknown> = { model: profile.model, messages, stream: true, options };
  if (req.tools.length && !isNone(req.toolChoice)) {
    body.tools = encodeTools(req.tools);
  }
  if (req.constrain) body.format = req.constrain.schema;
  body.keep_alive = profile.keepAlive ?? DEFAULT_KEEP_ALIVE;
  if (req.thinking.enabled !== undefined) body.think = thinkValue(req);
  if (profile.extraBody) Object.assign(body, profile.extraBody);
  return body;
}

/**
 * Ollama's `think`: false, or a level where an effort is known (since 0.11.1; "max" only since
 * 0.22, so it goes as "high"), else true.
 */
function thinkValue(req: Request): boolean | string {
  const t = req.thinking;
  if (!t.enabled) return false;
  if (t.effort === undefined) return true;
  return t.effort === "max" ? "high" : t.effort;
}

/** Ollama has no tool_choice: "none" is honoured by not offering the tools. */
function isNone(c: ToolChoice): boolean {
  return c.type === "none";
}

function encodeMessage(m: Message, out: Record<string, unknown>[]): void {
  if (m.role === "system" || m.role === "assistant") {
    let content = "";
    let thinking = "";
    const toolCalls: unknown[] = [];
    for (const p of m.parts) {
      if (p.type === "text") content += content ? `\n${p.text}` : p.text;
      else if (p.type === "thinking" && !p.redacted) thinking += p.text;
      else if (p.type === "toolCall") toolCalls.push({ function: { name: p.name, arguments: p.input } });
    }
    const msg: Record<string, unknown> = { role: m.role, content };
    if (thinking) msg.thinking = thinking;
    if (toolCalls.length) msg.tool_calls = toolCalls;
    out.push(msg);
    return;
  }
  let text = "";
  let images: string[] = [];
  const flush = () => {
    if (!text && !images.length) return;
    const msg: Record<string, unknown> = { role: "user", content: text };
    if (images.length) msg.images = images;
    out.push(msg);
    text = "";
    images = [];
  };
  for (const p of m.parts) {
    if (p.type === "toolResult") {
      flush();
      const content = p.content.flatMap((c) => (c.type === "text" ? [c.text] : [])).join("\n");
      const msg: Record<string, unknown> = {
        role: "tool",
        content: p.isError ? `Error: ${content}` : content,
      };
      if (p.toolName) msg.tool_name = p.toolName;
      // any role may carry images, tool included (api.Message.Images; /v1/messages does the same)
      const toolImages = p.content.flatMap((c) =>
        c.type === "image" && c.source.kind === "base64" ? [c.source.data] : [],
      );
      if (toolImages.length) msg.images = toolImages;
      out.push(msg);
    } else if (p.type === "text") {
      text += text ? `\n${p.text}` : p.text;
    } else if (p.type === "image" && p.source.kind === "base64") {
      images.push(p.source.data);
    }
  }
  flush();
}
