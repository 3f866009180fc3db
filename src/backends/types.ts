import type { Dispatcher } from "./http.js";

export type BackendKind = "openai-compat" | "ollama" | "anthropic" | "embedded";

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
