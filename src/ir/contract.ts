/**
 * The backend contract and the model profile: what a backend is to the rest of the program, and
 * all that is known about one model on one backend. The vocabulary every layer shares; it
 * depends on nothing but the IR.
 */
import type { Signal } from "./signal.js";
import type { EventStream, Request } from "./types.js";

/** What a backend may say in the log (pino's logger is one). */
export interface Log {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

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
  /**
   * The wire has a knob for how hard to think (Ollama's `think` levels, `reasoning_effort` on vLLM
   * and llama.cpp): an effort or a budget the client asked for is mapped onto it.
   */
  thinkingEffort?: boolean;
  /** Sampling fields the wire has a place for. */
  sampling: ReadonlySet<SamplingField>;
  /**
   * A system-role message can sit mid-conversation (the chat template renders it in place).
   * Where it cannot, a late system message becomes a user turn at its place, never moved to the
   * top: what changes late must stay late, or the server's prompt cache shares nothing.
   */
  systemMidConversation?: boolean;
  /** The server reads Claude Code's billing header block (Anthropic itself); elsewhere it is removed. */
  clientBilling?: boolean;
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
  log: Log;
  /**
   * What the resilience layer wants to know of the HTTP exchanges the backend makes for this
   * request: a backend hands it to its HTTP client with each exchange (absent: nothing to tell).
   */
  exchange?: ExchangeHooks;
  /** The request is background work (routing/lanes.ts: titles, summaries), not the agent's own turn. */
  background?: boolean;
}

/** Hooks on one HTTP exchange with a backend. */
export interface ExchangeHooks {
  /** Limit on setting up the connection, ms (0 or absent: none). */
  connectMs?: number;
  /** Called when the response head arrives: the backend is no longer loading. */
  onHeaders?(): void;
  /**
   * Called each time the server reports how far it has read the prompt (llama.cpp's
   * `prompt_progress`), before the first token.
   */
  onProgress?(progress: PromptProgress): void;
  /** Called with the request's body as it is sent (the journal's capture; set only when it is on). */
  onBody?(body: string | Buffer): void;
}

/**
 * How far a server has read a prompt, in tokens (llama.cpp `prompt_progress`, tools/server
 * server-task.cpp `result_prompt_progress::to_json`): `total` in the prompt, `cache` of them from
 * its prompt cache, `processed` so far (cache included), `timeMs` since it began reading.
 */
export interface PromptProgress {
  total: number;
  cache: number;
  processed: number;
  timeMs: number;
}

export interface Backend {
  readonly name: string;
  /** Its kind, as the registry (`backends/registry.ts`) knows it. */
  readonly kind: string;
  readonly baseUrl: string;
  readonly caps: WireCaps;
  /**
   * Requests it serves at once when the config does not say (0: no limit): what the server is
   * known to take, or 1 where it answers one at a time.
   */
  readonly concurrency: number;
  /**
   * Asks the server how many requests it serves at once (llama.cpp's slots); undefined when it
   * does not say. Absent where the server cannot be asked; throws when it could not this time.
   */
  askConcurrency?(): Promise<number | undefined>;
  /** Its server started again: what the backend knew of the server's caches is gone. */
  forget?(): void;
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

/** How a profile carries tool calls; `auto` decides per request from what is known of the model. */
export type ToolModeSetting = "auto" | "native" | "rescue" | "emulate" | "strip";
/** How tool calls travel for one request (the tools stage decides it from the setting). */
export type ToolMode = Exclude<ToolModeSetting, "auto">;
/** The text format tools are rendered in for emulation, and the one the model is expected to answer in. */
export type ToolFormat = "hermes" | "llama3" | "mistral" | "json";

/** What to do with a prompt that does not fit the window: refuse it (clients compact), or drop the oldest turns. */
export type FitPolicy = "error" | "drop-oldest";

/**
 * Time limits on one exchange with a backend, per model profile. Each phase has its own limit,
 * counted from the start of that phase; 0 turns a limit off (see `routing/timeouts.ts`).
 */
export interface Timeouts {
  /** Setting up the TCP (TLS) connection. */
  connectMs: number;
  /** Request sent → the backend's first byte (its response headers): model load, JIT warm-up, the server's own queue. */
  loadMs: number;
  /** First byte → first event of the answer: prompt processing. */
  firstTokenMs: number;
  /** Longest silence between two events once the answer has started: a hang. */
  idleMs: number;
  /** The whole exchange, from the request sent to the last event (queue wait not counted). */
  totalMs: number;
}

/** Where the window in use came from, and what else is known of it: for the log and `clawbridge models`. */
export interface ContextInfo {
  /** What the server says it serves now (llama.cpp n_ctx, vLLM max_model_len, LM Studio's loaded context, Ollama's num_ctx parameter or loaded context). */
  served?: number;
  /** Where `served` was read. */
  servedFrom?: string;
  /** The window the configuration states (context_window, LiteLLM model_info.max_input_tokens). */
  configured?: number;
  /** The model's trained maximum, when the server says. */
  trained?: number;
  /** Where the window in use came from. */
  source: "config" | "server" | "memory" | "model" | "default" | "truncation" | "unknown";
  /** Why that window, in words. */
  why: string;
  /** Disagreements and risks found on the way. */
  warnings: readonly string[];
}

/**
 * What the configuration says of one model on one backend (a `models:` target, its names
 * camelCased): `config/schema.ts` validates exactly these fields, and a profile carries them as
 * they were read, over the defaults.
 */
export interface ModelSettings {
  /** The context window requests are kept inside (configured beats what the server reports). */
  contextWindow?: number;
  /** Cap on output tokens. */
  maxOutputTokens?: number;
  /** Drop what the backend cannot take (LiteLLM drop_params). Default true. */
  dropParams?: boolean;
  /** Native tool support; undefined when unknown (discovery may say). */
  supportsTools?: boolean;
  /**
   * Whether the model can think (reason before answering); undefined when unknown (discovery may
   * say, or the server's refusal teaches it). Thinking is sent only to a model that can.
   */
  supportsThinking?: boolean;
  /** Whether the model can see images; undefined when unknown (discovery may say). Images go only to one that can. */
  supportsVision?: boolean;
  /** Tool mode (default auto). */
  toolMode?: ToolModeSetting;
  /** Format used when tools are emulated (default hermes). */
  toolFormat?: ToolFormat;
  /** Merge consecutive same-role messages before sending. */
  strictAlternation?: boolean;
  /** Ollama: keep_alive to send. */
  keepAlive?: string | number;
  /** The window to send with each request where the backend takes it per request (Ollama's num_ctx). */
  numCtx?: number;
  /** A prompt that does not fit: refused with the overflow error (default), or fitted by dropping the oldest turns. */
  fitPolicy?: FitPolicy;
  /** Output tokens kept free when checking the prompt against the window (default min(1024, window/8)). */
  reserveOutputTokens?: number;
  /** Defaults for the sampling fields a client did not set. */
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Extra fields merged into the backend's request body (escape hatch). */
  extraBody?: Record<string, unknown>;
  /**
   * A demo and test aid (`force_tool`): while the turn has no tool result yet, a request that offers
   * this tool with tool_choice auto has its choice set to this tool.
   */
  forceTool?: string;
}

/**
 * All that is known about one model on one backend, resolved once from config and discovery,
 * and read-only (frozen) from then on: what is learned while serving lives in the model's state
 * (`routing/model-state.ts`). Stages read it; nothing else decides per model.
 */
export type ModelProfile = Readonly<
  Omit<ModelSettings, "dropParams" | "contextWindow" | "numCtx"> & {
    /** The name clients use. */
    alias: string;
    /** The backend serving it. */
    backend: Backend;
    /** The backend's own name for the model. */
    model: string;
    dropParams: boolean;
    /**
     * The context window requests are kept inside, when known: configured beats what the server
     * reports (with a warning when they disagree); where the window is chosen per request, the one chosen.
     */
    contextWindow?: number;
    /** Where the window is chosen per request (Ollama's num_ctx): the one sent (never the server's silent default). */
    numCtx?: number;
    /** How the window was found. */
    context?: ContextInfo;
    /** The memory the user says the model may use (VRAM), in bytes: a per-request window is chosen to fit it. */
    memoryBytes?: number;
    /** Time limits on the backend's answer (target, backend, top level and defaults). */
    timeouts?: Readonly<Timeouts>;
  }
>;
