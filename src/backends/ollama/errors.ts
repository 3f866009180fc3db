import type { ErrorPattern, ErrorTable } from "../http/errors.js";

/**
 * What Ollama's native API (`/api/chat`) answers when it refuses a request: `{"error":"<text>"}`
 * with a 400 (server/routes.go). The messages are the server's own, at the versions named.
 */

/** A model without the `tools` capability, sent `tools`: the tools stage emulates them instead. */
export const OLLAMA_NO_TOOLS: ErrorPattern = {
  means: "tools_unsupported",
  status: "error",
  match: /does not support tools/,
  seen: [
    {
      server: "Ollama",
      status: 400,
      message: "registry.ollama.ai/library/gemma2:2b does not support tools",
      source:
        "ollama server/images.go CheckCapabilities (errCapabilities + errCapabilityTools), server/routes.go scheduleRunner",
    },
  ],
};

/**
 * A model that cannot think, sent `think: true`: routing learns it and sends no thinking from then on
 * (the request is tried again without it; the refusal never reaches the client).
 */
export const OLLAMA_NO_THINKING: ErrorPattern = {
  means: "thinking_unsupported",
  status: [400],
  match: /does not support thinking/,
  seen: [
    {
      server: "Ollama ≥ 0.12.5",
      status: 400,
      message: '"llama3.2" does not support thinking',
      source: 'ollama server/routes.go ChatHandler: fmt.Sprintf("%q does not support thinking", req.Model)',
    },
    {
      server: "Ollama 0.9.0–0.12.4",
      status: 400,
      message: "registry.ollama.ai/library/llama3.2:latest does not support thinking",
      source: "ollama server/images.go CheckCapabilities (errCapabilityThinking)",
    },
  ],
};

/** A prompt longer than the window, where Ollama does not truncate it silently. */
export const OLLAMA_OVERFLOW: ErrorPattern = {
  means: "context_length",
  status: [400],
  match: /longer than the context length|input length exceeds the context length/,
  seen: [
    {
      server: "Ollama ≥ 0.30, context shift off",
      status: 400,
      message:
        "the prompt is longer than the context length currently available to the model; shorten the prompt, adjust the context length in settings, or use a model with a longer context length",
      source: "ollama llm/llama_server.go",
    },
    {
      server: "Ollama < 0.30, truncate: false",
      status: 400,
      message: "the input length exceeds the context length",
      source: "ollama runner errorInputTooLong",
    },
  ],
};

export const OLLAMA_ERRORS: ErrorTable = [OLLAMA_NO_TOOLS, OLLAMA_NO_THINKING, OLLAMA_OVERFLOW];
