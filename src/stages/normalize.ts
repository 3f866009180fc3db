import type { Message, Part, Request, Sampling } from "../ir/types.js";
import type { StageContext } from "./types.js";

/**
 * Makes a request fit what the target backend's wire takes (LiteLLM's drop_params, done in one
 * place): folds system messages into the system prompt, removes what the wire has no place for,
 * merges turns where roles must alternate, clamps the output limit and applies the profile's
 * defaults. Every change is noted in `ctx.notes`.
 */
export function normalize(req: Request, ctx: StageContext): Request {
  const { profile, notes } = ctx;
  const caps = profile.backend.caps;
  for (const f of req.ignored) notes.push(`${f}: not used by local backends`);

  let system = req.system;
  let messages: Message[] = [];
  for (const [i, m] of req.messages.entries()) {
    if (m.role === "system") {
      const text = m.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("\n");
      system = system ? `${system}\n\n${text}` : text;
      notes.push(`messages.${i}: system message folded into the system prompt`);
      continue;
    }
    messages.push(m);
  }

  let droppedThinking = 0;
  let droppedImages = 0;
  let flattenedTools = 0;
  // a message nothing is changed in stays the same object
  messages = messages.map((m) => {
    const parts: Part[] = [];
    let same = true;
    for (const p of m.parts) {
      if (p.type === "thinking") {
        const keep =
          caps.thinkingHistory &&
          (!caps.thinkingNeedsSignature || p.signature !== undefined || p.redacted !== undefined);
        if (keep) parts.push(p);
        else {
          droppedThinking++;
          same = false;
        }
      } else if (p.type === "image") {
        if (!caps.images || (p.source.kind === "url" && !caps.imageUrls)) {
          droppedImages++;
          same = false;
          parts.push({ type: "text", text: "[image omitted: this model's server cannot take it]" });
        } else parts.push(p);
      } else if ((p.type === "toolCall" || p.type === "toolResult") && !caps.toolHistory) {
        flattenedTools++;
        same = false;
        parts.push({ type: "text", text: toolPartAsText(p) });
      } else if (p.type === "toolResult" && !caps.images && p.content.some((c) => c.type === "image")) {
        droppedImages++;
        same = false;
        parts.push({ ...p, content: p.content.filter((c) => c.type === "text") });
      } else parts.push(p);
    }
    return same ? m : { role: m.role, parts };
  });
  if (droppedThinking) notes.push(`thinking: ${droppedThinking} earlier reasoning block(s) not sent back`);
  if (droppedImages)
    notes.push(`images: ${droppedImages} image(s) replaced by a note (the server takes none)`);
  if (flattenedTools) notes.push(`tool history: ${flattenedTools} tool call/result part(s) sent as text`);

  messages = messages.filter((m) => m.parts.length > 0);
  if (caps.strictAlternation || profile.strictAlternation) {
    const merged = mergeSameRole(messages);
    if (merged.length !== messages.length)
      notes.push(`messages: ${messages.length - merged.length} same-role turn(s) merged`);
    messages = merged;
  }

  let tools = req.tools;
  let toolChoice = req.toolChoice;
  if (tools.length && !caps.tools) {
    notes.push(`tools: ${tools.length} tool definition(s) dropped (the server takes none)`);
    tools = [];
    toolChoice = { type: "auto" };
  }

  const sampling: Sampling = {};
  for (const [k, v] of Object.entries(req.sampling) as Array<[keyof Sampling, never]>) {
    if (v === undefined) continue;
    if (caps.sampling.has(k) || !profile.dropParams) sampling[k] = v;
    else notes.push(`${k}: dropped (the server has no such setting)`);
  }
  if (sampling.temperature === undefined && profile.temperature !== undefined)
    sampling.temperature = profile.temperature;
  if (sampling.topP === undefined && profile.topP !== undefined && caps.sampling.has("topP"))
    sampling.topP = profile.topP;
  if (sampling.topK === undefined && profile.topK !== undefined && caps.sampling.has("topK"))
    sampling.topK = profile.topK;

  const limits = { ...req.limits };
  if (profile.maxOutputTokens !== undefined) {
    if (limits.maxOutputTokens === undefined || limits.maxOutputTokens > profile.maxOutputTokens) {
      if (limits.maxOutputTokens !== undefined)
        notes.push(`max_tokens: ${limits.maxOutputTokens} clamped to the model's ${profile.maxOutputTokens}`);
      limits.maxOutputTokens = profile.maxOutputTokens;
    }
  }

  return { ...req, system, messages, tools, toolChoice, sampling, limits };
}

function toolPartAsText(p: Part): string {
  if (p.type === "toolCall") return `[called tool ${p.name} with ${JSON.stringify(p.input)}]`;
  if (p.type === "toolResult") {
    const body = p.content.map((c) => (c.type === "text" ? c.text : "[image]")).join("\n");
    return `[result of ${p.toolName ?? "tool"}${p.isError ? " (error)" : ""}: ${body}]`;
  }
  return "";
}

function mergeSameRole(messages: Message[]): Message[] {
  const out: Message[] = [];
  for (const m of messages) {
    const last = out[out.length - 1];
    if (last && last.role === m.role) last.parts = [...last.parts, ...m.parts];
    else out.push({ role: m.role, parts: [...m.parts] });
  }
  return out;
}
