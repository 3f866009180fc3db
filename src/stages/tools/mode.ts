import type { ToolMode } from "../../ir/contract.js";
import type { Message, Request } from "../../ir/types.js";
import type { Note, RequestStage, StageContext } from "../types.js";
import { emulateTools, forcedCallSchema } from "./emulate.js";

/**
 * The tools stage: decides how tool calls travel for this request, from the profile, and reshapes
 * the request for it.
 * - native: tools go to the backend as they are; answers are taken as they come.
 * - rescue: native, and calls the model wrote as text are turned into real calls (the rescue
 *   response stage). What `auto` means for a model with tool support.
 * - emulate: tools and tool history become text in the prompt (see emulate.ts); the answer goes
 *   through rescue. What `auto` means for a model or server without tool support.
 * - strip: tools and tool history are dropped so a tool-less model can at least chat.
 */
export const toolStage: RequestStage = (req, ctx) => {
  req = forceTool(req, ctx);
  const mode = resolveMode(req, ctx);
  ctx.toolMode = mode;
  if (mode === "strip") return strip(req, ctx);
  if (mode !== "emulate") return req;
  if (!req.tools.length && !hasToolHistory(req.messages)) return req;
  const format = ctx.profile.toolFormat ?? "hermes";
  const out = emulateTools(req, format);
  ctx.notes.push({
    subject: "tools",
    detail: `${req.tools.length} tool(s) and the tool history emulated as ${format} text`,
  });
  const schema = forcedCallSchema(req);
  if (schema && ctx.profile.backend.caps.jsonSchema) {
    out.constrain = { schema };
    ctx.notes.push({ subject: "tool_choice", detail: "forced call constrained to the tool's JSON schema" });
  }
  return out;
};

/**
 * The profile's `force_tool` (a demo and test aid): a request that offers that tool, leaves the
 * choice to the model and has no tool result yet (the conversation's first call) gets the tool
 * forced.
 */
function forceTool(req: Request, ctx: StageContext): Request {
  const name = ctx.profile.forceTool;
  if (!name || req.toolChoice.type !== "auto" || !req.tools.some((t) => t.name === name)) return req;
  if (req.messages.some((m) => m.parts.some((p) => p.type === "toolResult"))) return req;
  ctx.notes.push({ subject: "tool_choice", detail: `forced to ${name} by the profile's force_tool` });
  return { ...req, toolChoice: { type: "tool", name } };
}

function resolveMode(req: Request, ctx: StageContext): ToolMode {
  const { profile, state } = ctx;
  const setting = state.toolMode ?? "auto";
  if (setting !== "auto") return setting;
  if (!req.tools.length && !hasToolHistory(req.messages)) return "rescue";
  // The wire has no place for tools (TinyGrad), or the model has none (reported, configured, or
  // learned from a refusal): emulate. Otherwise native, with rescue on top.
  if (!profile.backend.caps.tools || state.supportsTools === false) return "emulate";
  return "rescue";
}

function hasToolHistory(messages: Message[]): boolean {
  return messages.some((m) => m.parts.some((p) => p.type === "toolCall" || p.type === "toolResult"));
}

function strip(req: Request, ctx: StageContext): Request {
  let dropped = 0;
  const messages: Message[] = [];
  for (const m of req.messages) {
    const parts = m.parts.filter((p) => p.type !== "toolCall" && p.type !== "toolResult");
    dropped += m.parts.length - parts.length;
    if (parts.length) messages.push({ role: m.role, parts });
  }
  if (!req.tools.length && !dropped) return req;
  const warning: Note = {
    subject: "tools",
    detail: `strip mode dropped ${req.tools.length} tool definition(s) and ${dropped} tool call/result part(s); the model cannot use tools`,
  };
  ctx.notes.push(warning);
  // once per model in the log at warn level; each request's notes carry it at debug level
  if (ctx.state.firstTime("tools stripped"))
    ctx.log.warn({ model: ctx.profile.alias, subject: warning.subject }, warning.detail);
  const out: Request = { ...req, messages, tools: [], toolChoice: { type: "auto" } };
  delete out.parallelToolCalls;
  return out;
}
