import { defineKind } from "../kind.js";
import { ANTHROPIC_ERRORS } from "./errors.js";
import { AnthropicBackend } from "./index.js";

/** Anthropic's Messages API: the cloud fallback, and servers that speak it. */
export const anthropicKind = defineKind({
  errors: ANTHROPIC_ERRORS,
  kind: "anthropic",
  label: "Anthropic",
  create: (o) => new AnthropicBackend(o),
  litellm: {
    anthropic: {
      defaultBase: "https://api.anthropic.com",
      env: { url: "ANTHROPIC_BASE_URL", apiKey: "ANTHROPIC_API_KEY" },
    },
  },
  doctor: {
    // its model list leaves out the aliases it answers to; and its requests cost money
    listsEveryModel: false,
    probes: false,
  },
});
