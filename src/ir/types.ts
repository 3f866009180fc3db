/**
 * The internal representation: every surface decodes into it, every backend encodes from it.
 * A response is always a stream of Events; a non-streaming answer is the same events collected.
 */

/** `system` messages inside the conversation are kept where the client put them; normalize folds them. */
export type Role = "system" | "user" | "assistant";

export interface TextPart {
  type: "text";
  text: string;
}

export type ImageSource = { kind: "base64"; mediaType: string; data: string } | { kind: "url"; url: string };

export interface ImagePart {
  type: "image";
  source: ImageSource;
}

export interface ToolCallPart {
  type: "toolCall";
  id: string;
  name: string;
  /** Parsed arguments. Always an object; what a client sent that was not one is wrapped. */
  input: Record<string, unknown>;
}

export interface ToolResultPart {
  type: "toolResult";
  toolCallId: string;
  /** The tool's name when the client said it (Ollama's `tool_name`), or when it can be inferred. */
  toolName?: string;
  content: Array<TextPart | ImagePart>;
  isError?: boolean;
}

export interface ThinkingPart {
  type: "thinking";
  text: string;
  /** Anthropic's signature, kept only so it can go back to Anthropic unchanged. */
  signature?: string;
  /** Anthropic redacted_thinking: opaque data, meaningful only to Anthropic. */
  redacted?: string;
}

export type Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart;

export interface Message {
  role: Role;
  parts: Part[];
}

export interface Tool {
  name: string;
  description?: string;
  /** JSON schema of the arguments. */
  inputSchema: Record<string, unknown>;
}

export type ToolChoice =
  | { type: "auto" }
  | { type: "any" }
  | { type: "none" }
  | { type: "tool"; name: string };

export interface Sampling {
  temperature?: number;
  topP?: number;
  topK?: number;
  stop?: string[];
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
}

export interface Limits {
  /** Output tokens the client asked for (max_tokens / max_completion_tokens). */
  maxOutputTokens?: number;
}

/** How hard to think, in the levels local servers take (Ollama's `think`, OpenAI's `reasoning_effort`). */
export type ThinkingEffort = "low" | "medium" | "high" | "max";

export interface ThinkingRequest {
  /** enabled: the client wants reasoning; disabled: it asked for none; unset: backend default. */
  enabled?: boolean;
  budgetTokens?: number;
  /** The effort the client asked for (OpenAI reasoning_effort, Anthropic output_config.effort). */
  effort?: ThinkingEffort;
}

export interface Request {
  /** The model name the client asked for (an alias until routing resolves it). */
  model: string;
  system: string;
  messages: Message[];
  tools: Tool[];
  toolChoice: ToolChoice;
  parallelToolCalls?: boolean;
  limits: Limits;
  sampling: Sampling;
  thinking: ThinkingRequest;
  stream: boolean;
  /** Client metadata (Anthropic metadata.user_id, OpenAI user). Informational only. */
  metadata: Record<string, unknown>;
  /**
   * The answer must be JSON matching this schema (constrained decoding). Set by the format stage
   * for structured output (`format`), and by the tools stage when emulated tools are forced (only
   * for backends whose wire can constrain); a backend whose wire cannot leaves it.
   */
  constrain?: { schema: Record<string, unknown> };
  /**
   * The client asked for a JSON answer (OpenAI response_format, Anthropic output_config.format,
   * Responses text.format):
   * matching `schema` when it gave one, any JSON object otherwise. The format stage turns it into
   * `constrain` where the backend's wire can constrain.
   */
  format?: { schema?: Record<string, unknown>; name?: string };
  /** Fields the surface accepted but no backend can use, recorded for the log. */
  ignored: string[];
}

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "refusal";

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
}

/** The response as a stream. Block indexes are assigned by whoever emits the events, in order. */
export type Event =
  | { type: "start"; id?: string; model?: string }
  | { type: "textDelta"; text: string }
  | { type: "thinkingDelta"; text: string; signature?: string; redacted?: string }
  | { type: "toolCallStart"; id: string; name: string }
  | { type: "toolCallDelta"; json: string }
  | { type: "toolCallEnd" }
  | { type: "usage"; usage: Partial<Usage> }
  | { type: "stop"; reason: StopReason; stopSequence?: string };

/**
 * The response as it travels: batches of events, each what one network read (or one post of the
 * in-process engine) carried, in order, never empty. Every layer handles a batch in one step, so
 * what a token costs does not grow with the layers it crosses.
 */
export type EventStream = AsyncIterable<Event[]>;

/** A whole response, as `collect()` builds it from the events. */
export interface Response {
  id: string;
  model: string;
  content: Array<TextPart | ToolCallPart | ThinkingPart>;
  stopReason: StopReason;
  stopSequence?: string;
  usage: Usage;
}
