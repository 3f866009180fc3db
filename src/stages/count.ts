import type { Request } from "../ir/types.js";

/** Characters per token for English text and code: the usual rule of thumb for BPE vocabularies. */
const CHARS_PER_TOKEN = 4;
const PER_MESSAGE = 4;
const PER_IMAGE = 1500;

/**
 * An estimate of the prompt tokens a request costs, system prompt and tool definitions
 * included. The context stage refines this per model where the backend can count.
 */
export function estimateTokens(req: Pick<Request, "system" | "messages" | "tools">): number {
  let chars = req.system.length;
  let extra = 0;
  for (const m of req.messages) {
    extra += PER_MESSAGE;
    for (const p of m.parts) {
      switch (p.type) {
        case "text":
          chars += p.text.length;
          break;
        case "thinking":
          chars += p.text.length;
          break;
        case "image":
          extra += PER_IMAGE;
          break;
        case "toolCall":
          chars += p.name.length + JSON.stringify(p.input).length;
          extra += 8;
          break;
        case "toolResult":
          for (const c of p.content) {
            if (c.type === "text") chars += c.text.length;
            else extra += PER_IMAGE;
          }
          extra += 8;
          break;
      }
    }
  }
  for (const t of req.tools) {
    chars += t.name.length + (t.description?.length ?? 0) + JSON.stringify(t.inputSchema).length;
    extra += 10;
  }
  return Math.ceil(chars / CHARS_PER_TOKEN) + extra + (req.system ? PER_MESSAGE : 0);
}
