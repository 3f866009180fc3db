import { homedir } from "node:os";
import { join } from "node:path";
import { readConfigObject, writeWithBackup } from "./json-file.js";
import type { LaunchClient } from "./launcher.js";

/**
 * Claude Code's side of the set-up: the environment that points it at clawbridge. Printed for a
 * shell, or merged into the `env` of its settings file (~/.claude/settings.json).
 */
export interface ClaudeCodeOptions {
  /** clawbridge's base URL, without /v1. */
  baseUrl: string;
  /** Sent as Authorization: Bearer; any value when clawbridge has no master key. */
  token: string;
  /** Model ids for Claude Code's tiers; `main` is the default model. */
  models: { main: string; opus?: string; sonnet?: string; haiku?: string };
  /** Request timeout: local models load for minutes. */
  timeoutMs?: number;
  /** The main model's real window and output limit: Claude Code compacts within it instead of assuming 1M (or 200k). */
  window?: { contextWindow: number; maxOutputTokens: number };
}

const CLAUDE_CODE_TIMEOUT_MS = 600_000;

export function claudeCodeEnv(o: ClaudeCodeOptions): Record<string, string> {
  const env: Record<string, string> = {
    ANTHROPIC_BASE_URL: o.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, ""),
    ANTHROPIC_AUTH_TOKEN: o.token,
    ANTHROPIC_MODEL: o.models.main,
    ANTHROPIC_DEFAULT_OPUS_MODEL: o.models.opus ?? o.models.main,
    ANTHROPIC_DEFAULT_SONNET_MODEL: o.models.sonnet ?? o.models.main,
    ANTHROPIC_DEFAULT_HAIKU_MODEL: o.models.haiku ?? o.models.main,
    API_TIMEOUT_MS: String(o.timeoutMs ?? CLAUDE_CODE_TIMEOUT_MS),
    // nothing but the gateway: no telemetry or update traffic to hosts a local set-up may not reach
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
  };
  if (o.window) {
    // Claude Code 2.1.x (read in its binary, see docs/clients.md): for a model id that is not a Claude name it
    // takes CLAUDE_CODE_MAX_CONTEXT_TOKENS as the window (else it assumes 1M or 200k), and auto-compacts within
    // it; CLAUDE_CODE_MAX_OUTPUT_TOKENS is the max_tokens it asks for (else 32k, or 128k with adaptive thinking).
    env.CLAUDE_CODE_MAX_CONTEXT_TOKENS = String(o.window.contextWindow);
    env.CLAUDE_CODE_MAX_OUTPUT_TOKENS = String(o.window.maxOutputTokens);
  }
  return env;
}

/**
 * Whether Claude Code takes `id` for one of Claude's own models: then it uses its own catalog's window for it (200k
 * for claude-sonnet-4-5) and ignores CLAUDE_CODE_MAX_CONTEXT_TOKENS, so it compacts too late for a local window.
 */
export function claudeKnowsWindowOf(id: string): boolean {
  return /^claude-/i.test(id);
}

/** `export NAME='value'` lines for a POSIX shell. */
export function shellExports(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`)
    .join("\n");
}

export function claudeSettingsPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.CLAUDE_CONFIG_DIR || join(homedir(), ".claude"), "settings.json");
}

/** Merges the variables into the settings file's `env`, keeping everything else and a backup. */
export function writeClaudeSettings(
  vars: Record<string, string>,
  opts: { path?: string; dryRun?: boolean; now?: Date } = {},
): { path: string; text: string; changed: boolean; backup?: string } {
  const path = opts.path ?? claudeSettingsPath();
  const settings = readConfigObject(path) ?? {};
  const env = { ...((settings.env as Record<string, string> | undefined) ?? {}), ...vars };
  const text = `${JSON.stringify({ ...settings, env }, null, 2)}\n`;
  const changed = JSON.stringify(settings.env ?? {}) !== JSON.stringify(env);
  const out: { path: string; text: string; changed: boolean; backup?: string } = { path, text, changed };
  if (opts.dryRun || !changed) return out;
  const backup = writeWithBackup(path, text, opts.now);
  if (backup) out.backup = backup;
  return out;
}

/** Claude Code's tier models from the ids served: `claude-<tier>*` where one is served, else the main model. */
export function claudeTiers(ids: string[], main: string): ClaudeCodeOptions["models"] {
  const tier = (t: string) => ids.find((id) => id.startsWith(`claude-${t}`));
  return {
    main,
    ...(tier("opus") ? { opus: tier("opus")! } : {}),
    ...(tier("sonnet") ? { sonnet: tier("sonnet")! } : {}),
    ...(tier("haiku") ? { haiku: tier("haiku")! } : {}),
  };
}

/** `clawbridge launch claude`: Claude Code with the gateway's variables in its environment for this run. */
export const claudeCodeClient: LaunchClient = {
  name: "claude",
  title: "Claude Code",
  command: "claude",
  npmPackage: "@anthropic-ai/claude-code",
  minWindow: 32_768,
  windowNeed: "its system prompt and tool definitions fill most of a smaller window before the task starts",
  defaultModel: (ids) => ids.find((id) => id.startsWith("claude-sonnet")) ?? ids[0]!,
  plan: (t) => ({
    args: [],
    env: claudeCodeEnv({
      baseUrl: t.baseUrl,
      token: t.apiKey,
      models: claudeTiers(
        t.models.map((m) => m.id),
        t.model,
      ),
      ...(t.contextWindow
        ? {
            window: {
              contextWindow: t.contextWindow,
              maxOutputTokens: Math.min(8192, Math.floor(t.contextWindow / 4)),
            },
          }
        : {}),
    }),
  }),
  warnings: (model, contextWindow) =>
    model.startsWith("claude-") && contextWindow
      ? [
          `Claude Code takes its own window for the Claude model name ${model} (200k), not the ${contextWindow} served, and compacts too late; name a model id that is not a Claude name with --model`,
        ]
      : [],
};
