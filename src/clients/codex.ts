import type { LaunchClient, LaunchTarget } from "./launcher.js";

/**
 * The Codex CLI (npm `@openai/codex`) speaks only the Responses API. `launch codex` points it at clawbridge with
 * `-c` overrides for this run (a custom provider with `wire_api = "responses"`, the model and its window), so
 * nothing in the user's CODEX_HOME changes: the provider entry and its keys are as openai/codex
 * `codex-rs/model-provider-info` reads them (see docs/clients.md).
 */

/** The provider id in Codex's config, and the variable its key is read from. */
export const CODEX_PROVIDER = "clawbridge";
export const CODEX_KEY_VARIABLE = "CLAWBRIDGE_API_KEY";

/** A TOML value for `-c key=value` (Codex parses the value as TOML; a JSON string is a TOML basic string). */
const toml = (s: string) => JSON.stringify(s);

/** The `-c` overrides that make Codex use clawbridge: flags to put before its own arguments. */
export function codexOverrides(o: { baseUrl: string; model: string; contextWindow?: number }): string[] {
  const base = `${o.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "")}/v1`;
  const provider = [
    `name=${toml("clawbridge")}`,
    `base_url=${toml(base)}`,
    `wire_api=${toml("responses")}`,
    `env_key=${toml(CODEX_KEY_VARIABLE)}`,
    // a local model loads for minutes before its first event
    "stream_idle_timeout_ms=600000",
  ].join(",");
  const overrides = [
    `model_provider=${toml(CODEX_PROVIDER)}`,
    `model_providers.${CODEX_PROVIDER}={${provider}}`,
    `model=${toml(o.model)}`,
    // a hosted tool a local model cannot run: leave it out of every request rather than have it dropped
    `web_search=${toml("disabled")}`,
  ];
  if (o.contextWindow) overrides.push(`model_context_window=${o.contextWindow}`);
  return overrides.flatMap((v) => ["-c", v]);
}

export const codexClient: LaunchClient = {
  name: "codex",
  title: "Codex CLI",
  command: "codex",
  npmPackage: "@openai/codex",
  // its base prompt (~17k characters) and tool definitions (~18k characters) come to ~9k tokens
  minWindow: 16_384,
  windowNeed: "its instructions and tool definitions take about 9k tokens before the first word of the task",
  defaultModel: (ids) => ids[0]!,
  plan: (t: LaunchTarget) => ({
    args: codexOverrides(t),
    env: { [CODEX_KEY_VARIABLE]: t.apiKey },
  }),
};
