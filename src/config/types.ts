import type { BackendKind } from "../backends/types.js";

/** The configuration after loading, validation and import: what the gateway is built from. */
export interface GatewayConfig {
  /** Where it came from, for messages: a file path, or "auto-detected". */
  source: string;
  server: {
    host: string;
    port: number;
    masterKey?: string;
    bodyLimitBytes: number;
    /** Origins of the web pages that may use the gateway, as browsers write them; `*`: any page. */
    corsOrigins?: string[];
    /** Host names, besides the loopback ones, that requests to a loopback bind may be addressed to. */
    allowedHosts?: string[];
    /** The most text a non-streaming answer may hold, in characters (default DEFAULT_ANSWER_LIMIT). */
    answerLimitChars?: number;
  };
  log: { level: string; file?: string };
  backends: BackendConfig[];
  models: ModelConfig[];
  /** alias → aliases to try, in order, when it fails. */
  fallbacks: Record<string, string[]>;
  /** Warnings met while loading (unknown LiteLLM settings and the like). */
  warnings: string[];
  /** Time limits for every target, under what backends and targets set. */
  timeouts?: Partial<import("../routing/timeouts.js").Timeouts>;
  /** Rules that put a request in the background lane (default: see routing/lanes.ts). */
  backgroundLane?: import("../routing/lanes.js").LaneRule[];
}

export interface BackendConfig {
  name: string;
  kind: BackendKind;
  url: string;
  apiKey?: string;
  flavor?: string;
  headers?: Record<string, string>;
  /** `clawbridge up`: how to start the server when it is not running. */
  start?: import("../up/supervisor.js").StartSpec;
  /** Also serve every model the backend lists, under its own name. */
  discover: boolean;
  /** Requests it serves at once (0: no limit); default by kind, or asked (llama.cpp slots). */
  concurrency?: number;
  /** Requests that may wait for it; beyond, clients get overloaded with Retry-After. */
  maxQueue?: number;
  /** Circuit breaker: failures in a row that open it (0: off), and the cool-down before a probe. */
  breaker?: Partial<import("../routing/breaker.js").BreakerSettings>;
  /** Time limits for this backend's targets. */
  timeouts?: Partial<import("../routing/timeouts.js").Timeouts>;
  /** Memory its models may use (VRAM), in bytes: Ollama's num_ctx is chosen to fit it. */
  memoryBytes?: number;
  /** embedded only: where its GGUF models are and how to run them. */
  embedded?: import("../backends/embedded/index.js").EmbeddedSettings;
}

export interface TargetConfig {
  backend: string;
  model: string;
  /** Time limits for this target, over the backend's and the top level's. */
  timeouts?: Partial<import("../routing/timeouts.js").Timeouts>;
  contextWindow?: number;
  maxOutputTokens?: number;
  dropParams?: boolean;
  supportsTools?: boolean;
  toolMode?: import("../routing/profile.js").ToolModeSetting;
  toolFormat?: import("../routing/profile.js").ToolFormat;
  strictAlternation?: boolean;
  keepAlive?: string | number;
  numCtx?: number;
  fitPolicy?: "error" | "drop-oldest";
  reserveOutputTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  extraBody?: Record<string, unknown>;
  /** A demo and test aid: the tool the client's choice becomes while the turn has no tool result. */
  forceTool?: string;
}

export interface ModelConfig {
  alias: string;
  /** One target, or several replicas of the same model. */
  targets: TargetConfig[];
}

export const DEFAULT_PORT = 4000;
export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;
/** 32 Mi characters: far beyond the longest answer a model writes (some 100k tokens), well short of what strains memory. */
export const DEFAULT_ANSWER_LIMIT = 32 * 1024 * 1024;
