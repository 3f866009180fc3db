import type { Message, Part, Request, Sampling } from "../ir/types.js";
import type { NoteSubject, StageContext } from "./types.js";

/**
 * Makes a request fit what the target backend's wire takes (LiteLLM's drop_params, done in one
 * place): folds leading system messages into the system prompt, removes what the wire has no
 * place for, merges turns where roles must alternate, clamps the output limit and applies the
 * profile's defaults. Every change is noted in `ctx.notes`.
 *
 * It keeps the prompt's prefix byte-stable from turn to turn, so a server's prompt cache holds:
 * Claude Code's billing block (new on every request) is removed, and a system message that comes
 * after the conversation started stays where it is (as a system message where the wire takes one
 * there, else as a user turn), never moved to the top.
 */
export function normalize(req: Request, ctx: StageContext): Request {
  const { profile, notes } = ctx;
  const caps = profile.backend.caps;
  for (const f of req.ignored)
    notes.push(
      f === "cache_control"
        ? { subject: "cache_control", detail: "not used by local backends" }
        : { subject: ignoredKind(f), detail: `${f} is not used by local backends` },
    );

  let system = req.system;
  if (!caps.clientBilling && system.includes(BILLING)) {
    const kept = withoutBilling(system);
    if (kept !== system) {
      system = kept;
      notes.push({
        subject: "system",
        detail: "Claude Code's billing header block removed (it changes on every request)",
      });
    }
  }
  const lateAsMessage =
    caps.systemMidConversation === true && !caps.strictAlternation && !profile.strictAlternation;
  let messages: Message[] = [];
  for (const [i, m] of req.messages.entries()) {
    if (m.role === "system") {
      const text = m.parts.flatMap((p) => (p.type === "text" ? [p.text] : [])).join("\n");
      if (!messages.length) {
        system = system
          ? `${system}

${text}`
          : text;
        notes.push({
          subject: "system",
          detail: `messages.${i} (a system message) folded into the system prompt`,
        });
      } else if (lateAsMessage)
        messages.push(
          m.parts.every((p) => p.type === "text") ? m : { role: "system", parts: [{ type: "text", text }] },
        );
      else {
        messages.push({
          role: "user",
          parts: [
            {
              type: "text",
              text: `${LATE_SYSTEM}
${text}`,
            },
          ],
        });
        notes.push({
          subject: "system",
          detail: `messages.${i} (a system message) sent as a user turn where it stands`,
        });
      }
      continue;
    }
    messages.push(m);
  }

  // a model known not to see images gets a placeholder in their place (its server might refuse them)
  const blind = ctx.state.profile.supportsVision === false;
  let droppedThinking = 0;
  let droppedImages = 0;
  let flattenedTools = 0;
  // a message nothing is changed in stays the same object (the encoders know its text by identity)
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
        if (blind || !caps.images || (p.source.kind === "url" && !caps.imageUrls)) {
          droppedImages++;
          same = false;
          parts.push({
            type: "text",
            text: blind ? BLIND : "[image omitted: this model's server cannot take it]",
          });
        } else parts.push(p);
      } else if ((p.type === "toolCall" || p.type === "toolResult") && !caps.toolHistory) {
        flattenedTools++;
        same = false;
        parts.push({ type: "text", text: toolPartAsText(p) });
      } else if (
        p.type === "toolResult" &&
        (blind || !caps.images) &&
        p.content.some((c) => c.type === "image")
      ) {
        droppedImages += p.content.filter((c) => c.type === "image").length;
        same = false;
        const text = blind ? BLIND : "[image omitted: this model's server cannot take it]";
        parts.push({
          ...p,
          content: p.content.map((c) => (c.type === "image" ? { type: "text", text } : c)),
        });
      } else parts.push(p);
    }
    return same ? m : { role: m.role, parts };
  });
  if (droppedThinking)
    notes.push({
      subject: "thinking",
      detail: `${droppedThinking} earlier reasoning block(s) not sent back`,
    });
  if (droppedImages) {
    const why = blind ? "the model cannot see images" : "the server takes none";
    notes.push({
      subject: "images",
      detail: `${droppedImages} image(s) left out, a placeholder says so (${why})`,
    });
    ctx.log.info(
      { model: profile.alias, backend: profile.backend.name, images: droppedImages },
      `images left out: ${why}`,
    );
  }
  if (flattenedTools)
    notes.push({
      subject: "tool history",
      detail: `${flattenedTools} tool call/result part(s) sent as text`,
    });

  messages = messages.filter((m) => m.parts.length > 0);
  if (caps.strictAlternation || profile.strictAlternation) {
    const merged = mergeSameRole(messages);
    if (merged.length !== messages.length)
      notes.push({
        subject: "messages",
        detail: `${messages.length - merged.length} same-role turn(s) merged`,
      });
    messages = merged;
  }

  let tools = req.tools;
  let toolChoice = req.toolChoice;
  if (tools.length && !caps.tools) {
    notes.push({
      subject: "tools",
      detail: `${tools.length} tool definition(s) dropped (the server takes none)`,
    });
    tools = [];
    toolChoice = { type: "auto" };
  }

  const sampling: Sampling = {};
  for (const [k, v] of Object.entries(req.sampling) as Array<[keyof Sampling, never]>) {
    if (v === undefined) continue;
    if (caps.sampling.has(k) || !profile.dropParams) sampling[k] = v;
    else notes.push({ subject: k, detail: "dropped (the server has no such setting)" });
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
        notes.push({
          subject: "max_tokens",
          detail: `${limits.maxOutputTokens} clamped to the model's ${profile.maxOutputTokens}`,
        });
      limits.maxOutputTokens = profile.maxOutputTokens;
    }
  }

  return { ...req, system, messages, tools, toolChoice, sampling, limits };
}

/** What a model that cannot see gets in an image's place. */
const BLIND = "[an image was left out here: this model cannot see images]";

/** How Claude Code's billing block starts (`x-anthropic-billing-header: cc_version=…; cch=…;`). */
const BILLING = "x-anthropic-billing-header:";
/** What a late system message turned into a user turn starts with. */
export const LATE_SYSTEM = "[System message]";

/** The system prompt without the billing block (a block of its own: the surfaces join blocks with a blank line). */
function withoutBilling(system: string): string {
  return system
    .split("\n\n")
    .filter((block) => !block.trimStart().startsWith(BILLING))
    .join("\n\n");
}

/**
 * What a field the decoder left unread is, by how the decoders write it: `tools.1(web_search)`,
 * `messages.0.content.2(document)`, `system.0(x)` or a top-level field's name.
 */
function ignoredKind(f: string): NoteSubject {
  if (!f.endsWith(")")) return "ignored_field";
  return f.startsWith("tools.") ? "ignored_tool" : "ignored_block";
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
