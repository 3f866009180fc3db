/**
 * What a backend kind declares: everything the rest of the program needs to know about one kind
 * of server, in one place (its folder's `kind.ts`), handed to the registry (`registry.ts`).
 * Nothing outside `src/backends/` names a kind or a flavor; it asks the registry.
 */
import type { z } from "zod";
import type { Backend } from "../ir/contract.js";
import type { Dispatcher } from "./http.js";

/** A kind's own settings, as its config fields were read (e.g. openai-compat's `{ flavor }`). */
export type Settings = Readonly<Record<string, unknown>>;

/** A configured backend, as far as its kind needs to know it. */
export interface BackendEntry<S = Settings> {
  name: string;
  kind: string;
  /** Where the server answers (for an in-process kind, the URL that stands for it). */
  url: string;
  apiKey?: string;
  headers?: Record<string, string>;
  /** The kind's own settings (none: its defaults). */
  settings?: S;
}

/** What a backend object is made from. */
export interface BackendOptions<S = Settings> {
  name: string;
  baseUrl: string;
  apiKey?: string;
  headers?: Record<string, string>;
  dispatcher: Dispatcher;
  settings: S;
}

/** A server where one usually listens, and how to tell it is there (detection, doctor's port advice). */
export interface LocalServer {
  /** The backend's name when it is found (`ollama`, `llamacpp`). */
  name: string;
  kind: string;
  url: string;
  /** The path under `url` that lists the models (`/api/tags`, `/models`). */
  probe: string;
  /** The kind's settings for it, in the config file's form (e.g. `{ flavor: "vllm" }`). */
  settings?: Settings;
}

/** A server identified by what it answers. */
export interface Identified {
  /** In words: "Ollama", "llama.cpp", "vLLM". */
  label: string;
  /** The backend's name when `init` writes it (`ollama`, `llamacpp`). */
  name: string;
  /** The kind's settings for it, in the config file's form. */
  settings?: Settings;
  /** Where its API answers (for the config's url). */
  url: string;
}

/** A LiteLLM provider prefix (`ollama/`, `hosted_vllm/`) and the backend it becomes. */
export interface LiteLLMProvider {
  /** The api_base LiteLLM assumes when the entry names none. */
  defaultBase: string;
  /** The kind's settings for it, in the config file's form. */
  settings?: Settings;
  /** Environment variables LiteLLM reads for this provider: the base URL and the key. */
  env?: { url?: string; apiKey?: string };
}

/** Advice for `clawbridge doctor`. */
export interface DoctorHints<S = Settings> {
  /** How to start such a server (e.g. "`ollama serve`"); default "its start command". */
  start?(settings: S): string;
  /** A base URL of the wrong shape (a path where the API hangs off the root, a missing /v1). */
  urlAdvice?(url: string): { detail: string; fix: string } | undefined;
  /**
   * The fix when a server of this kind answers at `url` where a backend of another kind
   * (`configured`, its label) was set up.
   */
  wrongKind?(url: string, configured: string, found?: Identified): string;
  /** The fix for a model the server does not have (e.g. "ollama pull MODEL"). */
  missingModel?(model: string): string;
  /** Whether a model missing from the server's list is a fault (false: its list leaves out aliases). */
  listsEveryModel?: boolean;
  /** Whether `doctor --probe` may send it real requests (false: a paid service). */
  probes?: boolean;
  /** An in-process kind: what it is, and what its discovery found, in words. */
  inProcess?: { title: string; found(models: number): string };
}

/** Models found on disk for an in-process kind to serve when nothing else is there. */
export interface FoundOnDisk<S = Settings> {
  settings: S;
  models: Array<{ name: string; from: string; path: string }>;
}

export interface BackendKind<S extends object = Settings> {
  /** The name in the config (`kind: ollama`). */
  readonly kind: string;
  /** Its name in messages ("Ollama", "OpenAI-compatible"). */
  readonly label: string;
  /** Other names it gives its servers (openai-compat's flavors): kept out of code outside backends/ as well. */
  readonly names?: readonly string[];
  /** Its own config fields (snake_case, as written in the file), validated beside the common ones. */
  readonly fields?: z.ZodRawShape;
  /** Its settings from its fields as validated (default: the names camelCased). */
  read?(fields: Record<string, unknown>): S;
  /** Its settings in the file's form again (for `clawbridge init`; default: the names snake_cased). */
  write?(settings: S): Record<string, unknown>;
  /** An in-process kind has no server: no `url` is asked, and this one stands for it. */
  readonly inProcessUrl?: string;
  /** The window is chosen per request (Ollama's num_ctx), not fixed when the server started. */
  readonly windowPerRequest?: boolean;
  /** The names its server may list a model under, the configured one first (Ollama: `NAME:latest` too). */
  listedAs?(model: string): string[];
  create(opts: BackendOptions<S>): Backend;
  /** Where its servers listen by default (`clawbridge serve` with no config, `init`, `doctor`). */
  readonly local?: ReadonlyArray<Omit<LocalServer, "kind">>;
  /** Where a server of this kind answers under a root URL the user gave (`init --url`, doctor's wrong-kind check). */
  at?(root: string): { url: string; probe: string };
  /**
   * What answers at a root URL (`http://host:port`), when it is a server of this kind: its name in
   * words ("llama.cpp") and the kind's settings for it, in the config file's form (`{ flavor: llamacpp }`).
   * Asked wherever a server is met on a port that does not say what it is (`init --url`, doctor).
   */
  identify?(root: string, dispatcher: Dispatcher): Promise<Identified | undefined>;
  /** The name a server found by `at` gets (`ollama`, `server`), numbered after the first. */
  readonly foundName?: string;
  /** Models on disk it can serve in-process when no server answers (`clawbridge serve` with no config). */
  onDisk?(env: NodeJS.ProcessEnv): FoundOnDisk<S> | undefined;
  /** LiteLLM provider prefixes it serves (`ollama`, `hosted_vllm`). */
  readonly litellm?: Readonly<Record<string, LiteLLMProvider>>;
  readonly doctor?: DoctorHints<S>;
  /** The models the server holds in memory now, for `clawbridge status` (undefined: it cannot say). */
  loaded?(backend: string, url: string, dispatcher: Dispatcher): Promise<string[] | undefined>;
}

/** Declares a kind with its settings typed (the registry holds them untyped). */
export function defineKind<S extends object = Settings>(kind: BackendKind<S>): BackendKind<S> {
  return kind;
}
