import type { ErrorPattern, ErrorTable } from "../http/errors.js";
import { OLLAMA_NO_TOOLS, OLLAMA_OVERFLOW } from "../ollama/errors.js";
import { LLAMA_CPP_NO_TOOLS, LLAMA_CPP_OVERFLOW } from "../openai-compat/errors.js";

/**
 * What the servers that speak Anthropic's Messages API answer when they refuse a request:
 * Anthropic itself, and the local servers with an Anthropic route — Ollama's `/v1/messages`
 * (v0.14+) and llama-server's, which check a request as their chat completions route does and
 * answer in Anthropic's error envelope.
 */

/** A prompt over the model's window, in the words agent clients compact on. */
const ANTHROPIC_OVERFLOW: ErrorPattern = {
  means: "context_length",
  status: [400],
  match: /prompt is too long/,
  seen: [
    {
      server: "Anthropic",
      status: 400,
      message: "prompt is too long: 208363 tokens > 200000 maximum",
      source: "Anthropic Messages API, invalid_request_error (the wording Claude Code matches to compact)",
    },
  ],
};

export const ANTHROPIC_ERRORS: ErrorTable = [
  OLLAMA_NO_TOOLS,
  LLAMA_CPP_NO_TOOLS,
  ANTHROPIC_OVERFLOW,
  OLLAMA_OVERFLOW,
  LLAMA_CPP_OVERFLOW,
];
