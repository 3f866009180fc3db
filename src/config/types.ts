import type { BackendEntry } from "../backends/kind.js";
import type { ModelSettings, Timeouts } from "../ir/contract.js";
import type { BreakerSettings } from "../routing/breaker.js";
import type { LaneRule } from "../routing/lanes.js";
import type { StartSpec } from "../up/supervisor.js";

/** The configuration after loading, validation and import: what the gateway is built from. */
export interface GatewayConfig {
  /** Where it came from, for messages: a file path, or "auto-detected". */
  source: string;
  server: {
    host: string;
    port: number;
    masterKey?: string;
    bodyLimitBytes: number;
    /** How long a client has to send its request: the headers, then the body (default below). */
    receiveTimeoutMs?: number;
    /** How often each backend is discovered again, ms (default DEFAULT_WATCH_INTERVAL_MS; 0: only on a change). */
    watchIntervalMs?: number;
    /** Origins of the web pages that may use the gateway, as browsers write them; `*`: any page. */
    corsOrigins?: string[];
    /** Host names, besides the loopback ones, that requests to a loopback bind may be addressed to. */
    allowedHosts?: string[];
    /** The most text a non-streaming answer may hold, in characters (default DEFAULT_ANSWER_LIMIT). */
    answerLimitChars?: number;
  };
  log: { level: string; file?: string };
  /** The request journal (journal.path etc.); absent: on, at its default place and bounds. */
  journal?: JournalConfig;
  backends: BackendConfig[];
  models: ModelConfig[];
  /** alias → aliases to try, in order, when it fails. */
  fallbacks: Record<string, string[]>;
  /** Warnings met while loading (unknown LiteLLM settings and the like). */
  warnings: string[];
  /** Time limits for every target, under what backends and targets set. */
  timeouts?: Partial<Timeouts>;
  /** Rules that put a request in the background lane (default: see routing/lanes.ts). */
  backgroundLane?: LaneRule[];
}

/** `journal:` in the config: where the request journal is, its bounds, whether bodies are kept. */
export interface JournalConfig {
  /** false: no journal (the request lines are still written). */
  enabled: boolean;
  path?: string;
  maxMb?: number;
  maxAgeDays?: number;
  capture?: boolean;
}

/** A backend: the fields every kind has (name, kind, url, key, headers, its kind's settings) and these. */
export interface BackendConfig extends BackendEntry {
  /** `clawbridge up`: how to start the server when it is not running. */
  start?: StartSpec;
  /** Also serve every model the backend lists, under its own name. */
  discover: boolean;
  /** Requests it serves at once (0: no limit); default by kind, or asked (llama.cpp slots). */
  concurrency?: number;
  /** Requests that may wait for it; beyond, clients get overloaded with Retry-After. */
  maxQueue?: number;
  /** Circuit breaker: failures in a row that open it (0: off), and the cool-down before a probe. */
  breaker?: Partial<BreakerSettings>;
  /** Time limits for this backend's targets. */
  timeouts?: Partial<Timeouts>;
  /** Memory its models may use (VRAM), in bytes: a window chosen per request is chosen to fit it. */
  memoryBytes?: number;
}

/** One target of a model: its backend and model, the settings of its profile, and its time limits. */
export type TargetConfig = ModelSettings & {
  backend: string;
  model: string;
  /** Time limits for this target, over the backend's and the top level's. */
  timeouts?: Partial<Timeouts>;
};

export interface ModelConfig {
  alias: string;
  /** One target, or several replicas of the same model. */
  targets: TargetConfig[];
}

export const DEFAULT_PORT = 4000;
export const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;
/** A 32 MB body takes well under a second on loopback, and a minute at 4.5 Mbit/s. */
/** Each backend is asked what it has every 15 s: a late server or a new model is served within that. */
export const DEFAULT_WATCH_INTERVAL_MS = 15_000;
export const DEFAULT_RECEIVE_TIMEOUT_MS = 60_000;
/** 32 Mi characters: far beyond the longest answer a model writes (some 100k tokens), well short of what strains memory. */
export const DEFAULT_ANSWER_LIMIT = 32 * 1024 * 1024;
