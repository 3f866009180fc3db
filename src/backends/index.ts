import { AnthropicBackend } from "./anthropic/index.js";
import { EmbeddedBackend } from "./embedded/index.js";
import { OllamaBackend } from "./ollama/index.js";
import { OpenAICompatBackend } from "./openai-compat/index.js";
import type { Backend } from "../ir/contract.js";
import type { BackendKind, BackendOptions } from "./types.js";

export function createBackend(kind: BackendKind, opts: BackendOptions): Backend {
  switch (kind) {
    case "openai-compat":
      return new OpenAICompatBackend(opts);
    case "ollama":
      return new OllamaBackend(opts);
    case "anthropic":
      return new AnthropicBackend(opts);
    case "embedded":
      return new EmbeddedBackend(opts);
  }
}
