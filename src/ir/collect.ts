import { GatewayError } from "./errors.js";
import type {
  EventStream,
  Response,
  StopReason,
  TextPart,
  ThinkingPart,
  ToolCallPart,
  Usage,
} from "./types.js";

/**
 * Folds an event stream into a whole response: the one code path behind every non-streaming
 * answer. An `error` event is thrown, so the caller answers with an error in its dialect. An
 * answer whose text, reasoning and tool arguments grow past `limit` characters fails with
 * `limit.error()` (and the stream is left, which stops the backend).
 */
export async function collect(
  events: EventStream,
  fallbackModel = "",
  limit?: { chars: number; error(): Error },
): Promise<Response> {
  const most = limit?.chars ?? Number.POSITIVE_INFINITY;
  let size = 0;
  const content: Array<TextPart | ToolCallPart | ThinkingPart> = [];
  const usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let id = "";
  let model = fallbackModel;
  let stopReason: StopReason | undefined;
  let stopSequence: string | undefined;
  let openTool: { part: ToolCallPart; json: string } | undefined;

  const closeTool = () => {
    if (!openTool) return;
    openTool.part.input = parseToolInput(openTool.json);
    openTool = undefined;
  };

  for await (const batch of events)
    for (const ev of batch) {
      switch (ev.type) {
        case "start":
          if (ev.id) id = ev.id;
          if (ev.model) model = ev.model;
          break;
        case "textDelta": {
          size += ev.text.length;
          if (size > most) throw limit!.error();
          closeTool();
          const last = content[content.length - 1];
          if (last?.type === "text") last.text += ev.text;
          else content.push({ type: "text", text: ev.text });
          break;
        }
        case "thinkingDelta": {
          size += ev.text.length + (ev.signature?.length ?? 0) + (ev.redacted?.length ?? 0);
          if (size > most) throw limit!.error();
          closeTool();
          const last = content[content.length - 1];
          if (last?.type === "thinking" && last.redacted === undefined && ev.redacted === undefined) {
            last.text += ev.text;
            if (ev.signature) last.signature = (last.signature ?? "") + ev.signature;
          } else {
            const part: ThinkingPart = { type: "thinking", text: ev.text };
            if (ev.signature) part.signature = ev.signature;
            if (ev.redacted !== undefined) part.redacted = ev.redacted;
            content.push(part);
          }
          break;
        }
        case "toolCallStart": {
          closeTool();
          const part: ToolCallPart = { type: "toolCall", id: ev.id, name: ev.name, input: {} };
          content.push(part);
          openTool = { part, json: "" };
          break;
        }
        case "toolCallDelta":
          size += ev.json.length;
          if (size > most) throw limit!.error();
          if (openTool) openTool.json += ev.json;
          break;
        case "toolCallEnd":
          closeTool();
          break;
        case "usage":
          mergeUsage(usage, ev.usage);
          break;
        case "stop":
          closeTool();
          stopReason = ev.reason;
          stopSequence = ev.stopSequence;
          break;
      }
    }
  closeTool();
  if (!stopReason) {
    throw new GatewayError("api_error", "the backend's response ended before it finished", {
      retryable: true,
    });
  }
  const res: Response = { id, model, content, stopReason, usage };
  if (stopSequence !== undefined) res.stopSequence = stopSequence;
  return res;
}

export function mergeUsage(into: Usage, u: Partial<Usage>): void {
  if (u.inputTokens !== undefined) into.inputTokens = u.inputTokens;
  if (u.outputTokens !== undefined) into.outputTokens = u.outputTokens;
  if (u.cacheReadTokens !== undefined) into.cacheReadTokens = u.cacheReadTokens;
  if (u.cacheWriteTokens !== undefined) into.cacheWriteTokens = u.cacheWriteTokens;
}

/** Tool arguments as an object: `{}` for empty, the parsed object, or `{}` when unparseable. */
function parseToolInput(json: string): Record<string, unknown> {
  if (json.trim() === "") return {};
  try {
    const v: unknown = JSON.parse(json);
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    return { value: v };
  } catch {
    return {};
  }
}
