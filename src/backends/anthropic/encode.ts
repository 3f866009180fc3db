import type { Part, Request } from "../../ir/types.js";
import type { ModelProfile } from "../../ir/contract.js";

/** The body for an Anthropic-compatible POST /v1/messages. */
export function encodeAnthropicRequest(req: Request, profile: ModelProfile) {
  const messages = req.messages
    .filter((m) => m.role !== "system")
    .map((m) => ({ role: m.role, content: m.parts.flatMap(encodePart) }))
    .filter((m) => m.content.length > 0);
  const body: Record<string, unknown> = {
    model: profile.model,
    messages,
    // Anthropic requires max_tokens; a profile cap or a modest default stands in when the client gave none.
    max_tokens: req.limits.maxOutputTokens ?? profile.maxOutputTokens ?? 4096,
    stream: true,
  };
  if (req.system) body.system = req.system;
  const s = req.sampling;
  if (s.temperature !== undefined) body.temperature = s.temperature;
  if (s.topP !== undefined) body.top_p = s.topP;
  if (s.topK !== undefined) body.top_k = s.topK;
  if (s.stop?.length) body.stop_sequences = s.stop;
  if (req.tools.length) {
    body.tools = req.tools.map((t) => ({
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      input_schema: t.inputSchema,
    }));
    const c = req.toolChoice;
    body.tool_choice =
      c.type === "tool"
        ? { type: "tool", name: c.name }
        : c.type === "any"
          ? { type: "any" }
          : { type: c.type };
    if (req.parallelToolCalls === false && c.type !== "none") {
      (body.tool_choice as Record<string, unknown>).disable_parallel_tool_use = true;
    }
  }
  if (req.thinking.enabled) {
    body.thinking = { type: "enabled", budget_tokens: req.thinking.budgetTokens ?? 1024 };
  }
  if (typeof req.metadata.user_id === "string") body.metadata = { user_id: req.metadata.user_id };
  if (profile.extraBody) Object.assign(body, profile.extraBody);
  return body;
}

function encodePart(p: Part): unknown[] {
  switch (p.type) {
    case "text":
      return p.text ? [{ type: "text", text: p.text }] : [];
    case "image":
      return [
        {
          type: "image",
          source:
            p.source.kind === "url"
              ? { type: "url", url: p.source.url }
              : { type: "base64", media_type: p.source.mediaType, data: p.source.data },
        },
      ];
    case "toolCall":
      return [{ type: "tool_use", id: p.id, name: p.name, input: p.input }];
    case "toolResult":
      return [
        {
          type: "tool_result",
          tool_use_id: p.toolCallId,
          content: p.content.flatMap(encodePart),
          ...(p.isError ? { is_error: true } : {}),
        },
      ];
    case "thinking":
      if (p.redacted !== undefined) return [{ type: "redacted_thinking", data: p.redacted }];
      // Anthropic verifies signatures: reasoning from another model cannot go back to it.
      return p.signature ? [{ type: "thinking", thinking: p.text, signature: p.signature }] : [];
  }
}
