import { startAnthropicFake } from "../fakes/anthropic.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, RecordedRequest } from "../fakes/script.js";

/** One fake backend of each kind, with how to find what the gateway sent it. */
export interface BackendCase {
  kind: "ollama" | "openai-compat" | "anthropic";
  start(): Promise<FakeServer>;
  model: string;
  extra?: string;
  /** The generation requests the fake received. */
  chats(fake: FakeServer): RecordedRequest[];
}

export const BACKENDS: BackendCase[] = [
  {
    kind: "ollama",
    start: () =>
      startOllamaFake({
        models: [{ name: "qwen2.5:7b", capabilities: ["completion", "tools", "vision", "thinking"] }],
      }),
    model: "qwen2.5:7b",
    chats: (f) => f.requests.filter((r) => r.path === "/api/chat"),
  },
  {
    kind: "openai-compat",
    // llama-server -c 32768: an agent's prompt (OpenClaw's first is ~12k tokens) fits
    start: () => startOpenAICompatFake({ flavor: "llamacpp", contextLength: 32768 }),
    model: "fake-model",
    extra: "    flavor: llamacpp",
    chats: (f) => f.requests.filter((r) => r.path === "/v1/chat/completions"),
  },
  {
    kind: "anthropic",
    start: () => startAnthropicFake({ apiKey: "sk-upstream" }),
    model: "claude-upstream",
    extra: "    api_key: sk-upstream",
    chats: (f) => f.requests.filter((r) => r.path === "/v1/messages"),
  },
];

/** A 1×1 PNG. */
export const PNG_1x1 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/** Where the last user turn's tool result sits in a backend's wire format, as text. */
export function toolResultIn(
  kind: BackendCase["kind"],
  body: any,
): { id?: string; content: string } | undefined {
  if (kind === "anthropic") {
    for (const m of body.messages)
      for (const b of Array.isArray(m.content) ? m.content : [])
        if (b.type === "tool_result")
          return {
            id: b.tool_use_id,
            content: typeof b.content === "string" ? b.content : b.content.map((c: any) => c.text).join(""),
          };
    return undefined;
  }
  const m = body.messages.find((x: any) => x.role === "tool");
  return m ? { id: m.tool_call_id, content: m.content } : undefined;
}
