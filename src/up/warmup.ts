import type { Request } from "../ir/types.js";
import type { Logger } from "../log.js";
import type { ModelProfile } from "../ir/contract.js";

const WORDS = ["the", "model", "is", "warming", "up", "with", "a", "prompt", "of", "this", "length", "now"];

/** A prompt of about `tokens` tokens (common English words are one token each in every tokenizer here). */
function warmupPrompt(tokens: number): string {
  const out: string[] = [];
  for (let i = 0; i < tokens; i++) out.push(WORDS[i % WORDS.length]!);
  return out.join(" ");
}

/**
 * Sends prompts of the given lengths, one at a time, asking for one token each: the model gets
 * loaded, and servers that compile per shape (TinyGrad's JIT) compile now rather than on the
 * user's first request. Returns the time each took.
 */
export async function warmUp(
  profile: ModelProfile,
  lengths: number[],
  log: Logger,
  signal: AbortSignal,
): Promise<Array<{ tokens: number; ms: number; error?: string }>> {
  const out: Array<{ tokens: number; ms: number; error?: string }> = [];
  for (const tokens of lengths) {
    const req: Request = {
      model: profile.alias,
      system: "",
      messages: [{ role: "user", parts: [{ type: "text", text: warmupPrompt(tokens) }] }],
      tools: [],
      toolChoice: { type: "auto" },
      limits: { maxOutputTokens: 1 },
      sampling: {},
      thinking: {},
      stream: true,
      metadata: {},
      ignored: [],
    };
    const started = performance.now();
    try {
      for await (const _ of profile.backend.send(req, { profile, signal, log })) {
        // drain: the answer is not the point
      }
      out.push({ tokens, ms: performance.now() - started });
    } catch (e) {
      out.push({ tokens, ms: performance.now() - started, error: (e as Error).message });
    }
  }
  return out;
}

/**
 * Replays the last conversations a backend answered (routing/conversations.ts
 * `RecentConversations`), the least recent first, each as its latest request was sent, asking
 * for one token: the server that just started reads their prompts now, so each conversation's
 * next turn finds its prefix in the prompt cache and reads only what is new. Returns each
 * replay's prompt size (messages) and time.
 */
export async function warmConversations(
  recent: ReadonlyArray<{ req: Request; profile: ModelProfile }>,
  log: Logger,
  signal: AbortSignal,
): Promise<Array<{ messages: number; ms: number; error?: string }>> {
  const out: Array<{ messages: number; ms: number; error?: string }> = [];
  for (const { req, profile } of recent) {
    if (signal.aborted) break;
    const warm: Request = { ...req, limits: { ...req.limits, maxOutputTokens: 1 }, stream: true };
    const started = performance.now();
    try {
      for await (const _ of profile.backend.send(warm, { profile, signal, log })) {
        // drain: the answer is not the point
      }
      out.push({ messages: req.messages.length, ms: performance.now() - started });
    } catch (e) {
      out.push({
        messages: req.messages.length,
        ms: performance.now() - started,
        error: (e as Error).message,
      });
    }
  }
  return out;
}
