import type { ErrorPattern, ErrorTable } from "../http/errors.js";
import { OLLAMA_NO_TOOLS, OLLAMA_OVERFLOW } from "../ollama/errors.js";

/**
 * What the servers that speak OpenAI's chat completions answer when they refuse a request:
 * llama.cpp's llama-server, vLLM, LM Studio, and Ollama's `/v1` (the same messages as its native
 * API, in OpenAI's error envelope). The messages are the servers' own, at the versions named.
 */

/** llama-server started without `--jinja` (the default only since b7356): it cannot render tools. */
export const LLAMA_CPP_NO_TOOLS: ErrorPattern = {
  means: "tools_unsupported",
  status: "error",
  match: /tools param requires --jinja/,
  seen: [
    {
      server: "llama.cpp b4524+ with --no-jinja, or before b7356 without --jinja",
      status: 500,
      message: "tools param requires --jinja flag",
      source: "llama.cpp tools/server/server-common.cpp (oaicompat_chat_params_parse)",
    },
  ],
};

/** A prompt over the slot's window. */
export const LLAMA_CPP_OVERFLOW: ErrorPattern = {
  means: "context_length",
  status: [400],
  match: /exceeds the available context size|is larger than the max context size/,
  seen: [
    {
      server: "llama.cpp b7486+",
      status: 400,
      message: "request (5000 tokens) exceeds the available context size (4096 tokens), try increasing it",
      source: "llama.cpp tools/server/server-context.cpp (exceed_context_size_error)",
    },
    {
      server: "llama.cpp b6728–b7485",
      status: 400,
      message: "the request exceeds the available context size, try increasing it",
      source: "llama.cpp tools/server/server-context.cpp",
    },
    {
      server: "llama.cpp, a model that cannot split a batch",
      status: 400,
      message: "input (5000 tokens) is larger than the max context size (4096 tokens). skipping",
      source: "llama.cpp tools/server/server-context.cpp",
    },
  ],
};

/** vLLM started without a tool parser: `tools` default to `tool_choice: "auto"`, which it refuses. */
const VLLM_NO_TOOLS: ErrorPattern = {
  means: "tools_unsupported",
  status: "error",
  match: /tool choice requires --enable-auto-tool-choice/,
  seen: [
    {
      server: "vLLM",
      status: 400,
      message: '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
      source: "vllm vllm/renderers/online_renderer.py",
    },
  ],
};

/** A prompt (with the output asked for) over the model's context length. */
const VLLM_OVERFLOW: ErrorPattern = {
  means: "context_length",
  status: [400],
  match: /maximum context length is|context length is only/,
  seen: [
    {
      server: "vLLM since 2026-03-05 (PR #36197)",
      status: 400,
      message:
        "This model's maximum context length is 4096 tokens. However, you requested 512 output tokens and your prompt contains 4000 input tokens, for a total of 4512 tokens. Please reduce the length of the input prompt or the number of requested output tokens.",
      source: "vllm vllm/renderers/params.py",
    },
    {
      server: "vLLM 2025-08-13 to 2026-01-31",
      status: 400,
      message:
        "This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. Please reduce the length of the input messages.",
      source: "vllm PR #22803",
    },
    {
      server: "vLLM 2026-01-31 to 2026-03-05",
      status: 400,
      // the beginning of it: the rest of the sentence is not on record
      message:
        "You passed 4000 input tokens and requested 512 output tokens. However, the model's context length is only 4096 tokens,",
      source: "vllm PR #32863",
    },
  ],
};

/** LM Studio's overflow texts: from users' reports (its docs say nothing), with the status they saw. */
const LM_STUDIO_OVERFLOW: ErrorPattern = {
  means: "context_length",
  status: [400],
  match: /context length of only|greater than the context length|context size has been exceeded/i,
  seen: [
    {
      server: "LM Studio, llama.cpp engine",
      status: 400,
      message:
        "Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded with context length of only 4096 tokens, which is not enough. Try to load the model with a larger context length, or provide a shorter input",
      source: "lmstudio-bug-tracker issues #546, #237",
    },
    {
      server: "LM Studio 0.4.20",
      status: 400,
      message:
        "The number of tokens to keep from the initial prompt is greater than the context length. Try to load the model with a larger context length, or provide a shorter input",
      source: "lmstudio-bug-tracker issue #2205",
    },
    {
      server: "LM Studio, MLX engine",
      status: 400,
      message: "Context size has been exceeded",
      source: "lmstudio-bug-tracker issue #2339",
    },
  ],
};

export const OPENAI_COMPAT_ERRORS: ErrorTable = [
  LLAMA_CPP_NO_TOOLS,
  VLLM_NO_TOOLS,
  // Ollama's /v1/chat/completions
  OLLAMA_NO_TOOLS,
  LLAMA_CPP_OVERFLOW,
  VLLM_OVERFLOW,
  LM_STUDIO_OVERFLOW,
  OLLAMA_OVERFLOW,
];
