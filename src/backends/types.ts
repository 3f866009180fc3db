import type { Dispatcher } from "./http.js";
import type { Logger } from "../log.js";
import type { Signal } from "../ir/signal.js";
import type { EventStream, Request } from "../ir/types.js";
import type { ModelProfile } from "../routing/profile.js";

export type BackendKind = "openai-compat" | "ollama" | "anthropic" | "embedded";

/**
 * What a backend's wire can carry. The normalize stage reads it and reshapes the request so the
 * backend receives only what it takes; everything it removes is logged and counted.
 */
export interface WireCaps {
  tools: boolean;
  /** Tool calls and tool results in the history (text-only servers take neither). */
  toolHistory: boolean;
  images: boolean;
  /** Images given by URL (Ollama takes only inline base64). */
  imageUrls: boolean;
  /** Content must be a plain string on every message (TinyGrad). */
  stringContentOnly: boolean;
  /** Messages must alternate user/assistant (some chat templates raise otherwise). */
  strictAlternation: boolean;
  /** Reasoning from earlier turns can be sent back. */
  thinkingHistory: boolean;
  /** Only reasoning that carries the server's own signature may go back (Anthropic verifies it). */
  thinkingNeedsSignature?: boolean;
  /** The answer can be constrained to a JSON schema (Ollama `format`, OpenAI `response_format`). */
  jsonSchema: boolean;
  /** Sampling fields the wire has a place for. */
  sampling: ReadonlySet<SamplingField>;
}

export type SamplingField =
  | "temperature"
  | "topP"
  | "topK"
  | "stop"
  | "seed"
  | "presencePenalty"
  | "frequencyPenalty";

/** Every sampling field the IR has: for wires that take them all. */
export const ALL_SAMPLING: ReadonlySet<SamplingField> = new Set([
  "temperature",
  "topP",
  "topK",
  "stop",
  "seed",
  "presencePenalty",
  "frequencyPenalty",
]);

export interface DiscoveredModel {
  /** The backend's own name for the model. */
  name: string;
  /** The context window the server really serves, when it says. */
  contextWindow?: number;
  /** Where `contextWindow` was read (`/props n_ctx`, `max_model_len`, ...). */
  contextFrom?: string;
  /** The model's trained maximum context, when the server says. */
  trainedContext?: number;
  /** The window is chosen per request (Ollama's num_ctx), not fixed when the server started. */
  windowPerRequest?: boolean;
  /** Ollama: the Modelfile's num_ctx parameter. */
  numCtxParameter?: number;
  /** The weights' size in bytes (Ollama /api/tags). */
  sizeBytes?: number;
  /** KV cache bytes per token of context at f16 (from the model's architecture). */
  kvBytesPerToken?: number;
  /** Something the user should know about the window (e.g. a server that cannot be asked). */
  contextNote?: string;
  /** Whether the server reports native tool support (Ollama capabilities); undefined when unknown. */
  tools?: boolean;
  vision?: boolean;
  thinking?: boolean;
}

export interface SendContext {
  profile: ModelProfile;
  signal: Signal;
  log: Logger;
}

export interface Backend {
  readonly name: string;
  readonly kind: BackendKind;
  readonly baseUrl: string;
  readonly caps: WireCaps;
  /**
   * Sends the request and yields its events, in batches (never empty). Failures before the first
   * batch are thrown as GatewayError (so routing may try elsewhere); failures later are thrown
   * from the iterator.
   */
  send(req: Request, ctx: SendContext): EventStream;
  /** The models the server has, with what it says about them. Throws when unreachable. */
  discover(): Promise<DiscoveredModel[]>;
  /**
   * The prompt tokens this request costs, counted by the server itself with the model's chat
   * template (llama.cpp /apply-template + /tokenize). Absent where the server cannot count;
   * throws when it could not this time.
   */
  countTokens?(req: Request, profile: ModelProfile, signal?: Signal): Promise<number>;
}

export interface BackendOptions {
  name: string;
  baseUrl: string;
  apiKey?: string;
  /** openai-compat only: which server it is, for its quirks. */
  flavor?: string;
  headers?: Record<string, string>;
  dispatcher: Dispatcher;
  /** embedded only: where its models are and how to run them. */
  embedded?: import("./embedded/index.js").EmbeddedSettings;
}
