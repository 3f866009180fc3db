import { GatewayError } from "../../ir/errors.js";
import { newId } from "../../ir/ids.js";
import type { PromptProgress } from "../../ir/contract.js";
import type { Event, StopReason, Usage } from "../../ir/types.js";
import { upstreamMessage } from "../http/errors.js";
import { type JsonPath, PayloadTemplates } from "../json-template.js";

const FINISH: Record<string, StopReason> = {
  stop: "end_turn",
  length: "max_tokens",
  tool_calls: "tool_use",
  function_call: "tool_use",
  content_filter: "refusal",
  eos: "end_turn",
};

/** The strings of a chunk that change from token to token: the slots of its template. */
const SLOTS: readonly JsonPath[] = [
  ["choices", 0, "delta", "content"],
  ["choices", 0, "delta", "reasoning_content"],
  ["choices", 0, "delta", "reasoning"],
  ["choices", 0, "delta", "tool_calls", 0, "function", "arguments"],
];

/**
 * Turns OpenAI chat.completion.chunk objects into IR events. Tool-call deltas are assembled by
 * index: a call starts when its index first appears with a name, its argument fragments follow,
 * and it ends when another index, text, or the finish arrives.
 */
export class ChatChunkDecoder {
  private started = false;
  private openIndex: number | undefined;
  private seenIndexes = new Set<number>();
  /** Arguments that arrived before the call's name. */
  private early = new Map<number, { id?: string; args: string }>();
  private sawToolCall = false;
  private finish: string | undefined;
  /** The stop sequence the server says ended the answer. */
  private stopSequence: string | undefined;
  private usageSent = false;
  /** The template of the payloads to come (see json-template.ts). */
  private readonly templates: PayloadTemplates;

  /**
   * `templates: false` parses every payload in full: the reference the tests hold the fast path to.
   * `onProgress`: where llama.cpp's prompt-progress chunks go (see `progress`).
   */
  constructor(
    private readonly backend: string,
    templates?: boolean,
    private readonly onProgress?: (p: PromptProgress) => void,
  ) {
    this.templates = new PayloadTemplates(SLOTS, templates);
  }

  /** Events for one `data:` payload. Returns true once `[DONE]` was seen. */
  push(data: string, out: Event[]): boolean {
    if (data === "[DONE]") return true;
    // progress comes only while the prompt is read, before the answer's first chunk
    if (!this.started && this.onProgress && data.includes('"prompt_progress"') && this.progress(data))
      return false;
    const same = this.templates.match(data);
    if (same !== undefined) return this.chunk(same, data, out);
    let chunk: any;
    try {
      chunk = JSON.parse(data);
    } catch {
      throw new GatewayError(
        "api_error",
        `backend ${this.backend} sent a malformed stream chunk: ${data.slice(0, 200)}`,
        {
          code: "backend_malformed",
          retryable: true,
        },
      );
    }
    if (!chunk?.error && !chunk?.usage) this.templates.offer(data, chunk);
    return this.chunk(chunk, data, out);
  }

  /**
   * llama.cpp with `return_progress: true` (tools/server server-task.cpp, `update_progress` in
   * server-context.cpp): while it reads the prompt it sends chat.completion.chunk objects whose
   * delta is `{"role":"assistant","content":null}` with a top-level
   * `"prompt_progress":{"total","cache","processed","time_ms"}`, a 0 % one first. They are no part
   * of the answer: they go to `onProgress`, and no event comes of them. Returns false for a chunk
   * that is not one after all.
   */
  private progress(data: string): boolean {
    let chunk: any;
    try {
      chunk = JSON.parse(data);
    } catch {
      return false;
    }
    const p = chunk?.prompt_progress;
    if (!p || typeof p !== "object") return false;
    const delta = chunk.choices?.[0]?.delta;
    if (delta && (delta.content || delta.reasoning_content || delta.tool_calls)) return false;
    const total = num(p.total);
    const processed = num(p.processed);
    if (total === undefined || processed === undefined) return true;
    this.onProgress!({ total, processed, cache: num(p.cache) ?? 0, timeMs: num(p.time_ms) ?? 0 });
    return true;
  }

  /** Events for one parsed chunk; reads it and keeps none of its objects (it may be a template's). */
  private chunk(chunk: any, data: string, out: Event[]): boolean {
    if (chunk?.error) {
      throw new GatewayError(
        "api_error",
        `backend ${this.backend} failed mid-answer: ${upstreamMessage(data)}`,
        {
          retryable: true,
        },
      );
    }
    if (!this.started) {
      this.started = true;
      out.push({
        type: "start",
        id: typeof chunk.id === "string" ? chunk.id : undefined,
        model: chunk.model,
      });
    }
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    const delta = choice?.delta ?? choice?.message;
    if (delta) this.delta(delta, out);
    if (choice?.finish_reason) this.finish = choice.finish_reason;
    // llama.cpp puts its debug object on the first chunk of the last batch, vLLM its field on the finish
    const seq = stoppedOn(choice, chunk);
    if (seq !== undefined) this.stopSequence = seq;
    if (chunk.usage && typeof chunk.usage === "object") {
      out.push({ type: "usage", usage: usageOf(chunk.usage, chunk.timings) });
      this.usageSent = true;
    } else if (chunk.timings && !this.usageSent && choice?.finish_reason) {
      // llama.cpp without include_usage still reports counts in `timings`
      const t = chunk.timings;
      const cached = num(t.cache_n);
      out.push({
        type: "usage",
        usage: {
          inputTokens: num(t.prompt_n),
          outputTokens: num(t.predicted_n),
          ...(cached !== undefined ? { cacheReadTokens: cached } : {}),
        },
      });
    }
    return false;
  }

  private delta(delta: any, out: Event[]): void {
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === "string" && reasoning) {
      this.closeTool(out);
      out.push({ type: "thinkingDelta", text: reasoning });
    }
    if (typeof delta.content === "string" && delta.content) {
      this.closeTool(out);
      out.push({ type: "textDelta", text: delta.content });
    }
    if (Array.isArray(delta.tool_calls)) {
      for (const tc of delta.tool_calls) this.toolDelta(tc, out);
    }
  }

  private toolDelta(tc: any, out: Event[]): void {
    const index: number = typeof tc.index === "number" ? tc.index : this.seenIndexes.size;
    const name = tc.function?.name;
    const args =
      typeof tc.function?.arguments === "string"
        ? tc.function.arguments
        : tc.function?.arguments
          ? JSON.stringify(tc.function.arguments)
          : "";
    if (index !== this.openIndex) {
      if (!name && !this.seenIndexes.has(index)) {
        // Fragments before the name: hold them until it comes.
        const e = this.early.get(index) ?? { args: "" };
        if (tc.id) e.id = tc.id;
        e.args += args;
        this.early.set(index, e);
        return;
      }
      if (this.seenIndexes.has(index)) {
        // A server interleaving calls out of order: keep the fragment on the open call rather than lose it.
        if (args && this.openIndex !== undefined) out.push({ type: "toolCallDelta", json: args });
        return;
      }
      this.closeTool(out);
      const early = this.early.get(index);
      this.early.delete(index);
      this.seenIndexes.add(index);
      this.openIndex = index;
      this.sawToolCall = true;
      out.push({ type: "toolCallStart", id: tc.id || early?.id || newId("call_"), name: String(name) });
      if (early?.args) out.push({ type: "toolCallDelta", json: early.args });
    }
    if (args) out.push({ type: "toolCallDelta", json: args });
  }

  private closeTool(out: Event[]): void {
    if (this.openIndex !== undefined) {
      out.push({ type: "toolCallEnd" });
      this.openIndex = undefined;
    }
  }

  /** Events that close the response once the stream is over. */
  end(out: Event[]): void {
    this.closeTool(out);
    if (!this.finish) {
      throw new GatewayError(
        "api_error",
        `backend ${this.backend} ended its stream without finishing the answer`,
        {
          code: "backend_stream_incomplete",
          retryable: true,
        },
      );
    }
    let reason = FINISH[this.finish] ?? "end_turn";
    // Several servers say "stop" after a tool call; what was sent is what counts.
    if (this.sawToolCall && reason === "end_turn") reason = "tool_use";
    if (reason === "end_turn" && this.stopSequence !== undefined)
      out.push({ type: "stop", reason: "stop_sequence", stopSequence: this.stopSequence });
    else out.push({ type: "stop", reason });
  }
}

/**
 * The stop sequence that ended the answer, where the server says which: vLLM's `stop_reason` (a
 * string; a number is a stop token, not a sequence), llama.cpp's native `stop_type: "word"` and
 * `stopping_word` (sent beside the OpenAI fields only in its `__verbose` debug object). Others
 * say "stop" for the end of the turn and a stop sequence alike: then nothing is inferred.
 */
function stoppedOn(choice: any, chunk: any): string | undefined {
  if (typeof choice?.stop_reason === "string" && choice.stop_reason) return choice.stop_reason;
  const v = chunk.__verbose;
  if (v && v.stop_type === "word" && typeof v.stopping_word === "string" && v.stopping_word)
    return v.stopping_word;
  return undefined;
}

/**
 * The IR's usage from an OpenAI `usage` (and llama.cpp's `timings` beside it): `prompt_tokens`
 * counts the whole prompt, of which `prompt_tokens_details.cached_tokens` (llama.cpp since b8445,
 * vLLM with --enable-prompt-tokens-details) or else llama.cpp's `timings.cache_n` came from the
 * server's prompt cache. The IR counts the cached part apart (Anthropic's way); a server that says
 * nothing of its cache leaves it unknown, not 0.
 */
function usageOf(u: any, timings: any): Partial<Usage> {
  const prompt = num(u.prompt_tokens);
  const cached = num(u.prompt_tokens_details?.cached_tokens) ?? num(timings?.cache_n);
  const usage: Partial<Usage> = { outputTokens: num(u.completion_tokens) };
  if (cached !== undefined && prompt !== undefined && cached <= prompt) {
    usage.inputTokens = prompt - cached;
    usage.cacheReadTokens = cached;
  } else usage.inputTokens = prompt;
  return usage;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
