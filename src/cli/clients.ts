import type { Command } from "commander";
import {
  claudeCodeEnv,
  claudeKnowsWindowOf,
  claudeSettingsPath,
  shellExports,
  writeClaudeSettings,
} from "../clients/claude-code.js";
import { type OfferedModel, openclawConfigPath, writeOpenClawConfig } from "../clients/openclaw.js";
import { ConfigError } from "../config/load.js";
import type { ModelProfile } from "../ir/contract.js";
import { loadServed } from "../routing/served.js";
import { findConfigFile } from "./serve.js";

/** Used when the window cannot be known (no config value, a server that does not say). */
const UNKNOWN_WINDOW = 16_384;
const say = (line: string) => process.stdout.write(`${line}\n`);

/** What a client is told of a model: the window requests are kept inside, and an output limit within it. */
export function offered(id: string, p: ModelProfile, warn: (w: string) => void): OfferedModel {
  let window = p.contextWindow;
  if (!window) {
    warn(
      `${id}: the window is not known (set context_window in the config); telling clients ${UNKNOWN_WINDOW}`,
    );
    window = UNKNOWN_WINDOW;
  }
  const maxTokens = Math.min(p.maxOutputTokens ?? 8192, Math.floor(window / 4));
  return { id, contextWindow: window, maxTokens };
}

async function withServed<T>(
  config: string | undefined,
  f: (s: Awaited<ReturnType<typeof loadServed>>) => T,
): Promise<T | undefined> {
  let served: Awaited<ReturnType<typeof loadServed>>;
  try {
    served = await loadServed(findConfigFile(config));
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`clawbridge: ${e.message}\n`);
      process.exitCode = 2;
      return undefined;
    }
    throw e;
  }
  try {
    if (!served.models.length) {
      process.stderr.write(
        "clawbridge: no models are served (no config, and no local server found). See `clawbridge init`.\n",
      );
      process.exitCode = 1;
      return undefined;
    }
    return f(served);
  } finally {
    await served.close();
  }
}

export function registerClients(program: Command): void {
  program
    .command("openclaw")
    .description(
      "write the clawbridge provider into OpenClaw's config ($OPENCLAW_CONFIG_PATH, $OPENCLAW_HOME/.openclaw, ~/.openclaw), with every served model and its real context window",
    )
    .option("-c, --config <file>", "clawbridge config file")
    .option(
      "--primary <model>",
      "the agent's primary model (default: claude-sonnet-* if served, else the first)",
    )
    .option("--fallback <ref...>", "fallback models as OpenClaw names them, e.g. anthropic/claude-sonnet-4-5")
    .option("--file <path>", "OpenClaw config file to write")
    .option("--timeout <s>", "seconds OpenClaw waits on clawbridge (local models load slowly)", "600")
    .option("--dry-run", "show the change, write nothing")
    .action(
      async (opts: {
        config?: string;
        primary?: string;
        fallback?: string[];
        file?: string;
        timeout: string;
        dryRun?: boolean;
      }) => {
        await withServed(opts.config, (s) => {
          const models = s.models.map((m) => offered(m.id, m.profile, (w) => say(`warning: ${w}`)));
          if (opts.primary && !models.some((m) => m.id === opts.primary)) {
            process.stderr.write(
              `clawbridge: --primary ${opts.primary} is not served (served: ${models.map((m) => m.id).join(", ")})\n`,
            );
            process.exitCode = 2;
            return;
          }
          const primary =
            opts.primary ?? models.find((m) => m.id.startsWith("claude-sonnet"))?.id ?? models[0]!.id;
          const plan = writeOpenClawConfig(
            {
              baseUrl: s.baseUrl,
              apiKey: s.config.server.masterKey ?? "clawbridge-local",
              models,
              primary,
              ...(opts.fallback ? { fallbacks: opts.fallback } : {}),
              timeoutSeconds: Number(opts.timeout) || 600,
            },
            { path: opts.file ?? openclawConfigPath(), ...(opts.dryRun ? { dryRun: true } : {}) },
          );
          for (const m of models)
            say(`  ${m.id}: contextWindow ${m.contextWindow}, maxTokens ${m.maxTokens}`);
          if (!plan.changes.length)
            say(`${plan.path} already points OpenClaw at clawbridge; nothing to change`);
          else for (const c of plan.changes) say(`${opts.dryRun ? "would set" : "set"} ${c}`);
          if (opts.dryRun && plan.changes.length) say(`\n${plan.text}`);
          if (plan.written) say(`wrote ${plan.path}${plan.backup ? ` (backup: ${plan.backup})` : ""}`);
          if (plan.warning) say(`WARNING: ${plan.warning}`);
        });
      },
    );

  program
    .command("claude-code")
    .description("print the environment that points Claude Code at clawbridge, or write it into its settings")
    .option("-c, --config <file>", "clawbridge config file")
    .option(
      "--model <id>",
      "Claude Code's default model (default: claude-sonnet-* if served, else the first)",
    )
    .option("--write", "merge the variables into Claude Code's settings.json instead of printing them")
    .option("--file <path>", "settings file to write (default ~/.claude/settings.json)")
    .action(async (opts: { config?: string; model?: string; write?: boolean; file?: string }) => {
      await withServed(opts.config, (s) => {
        const ids = s.models.map((m) => m.id);
        const tier = (t: string) => ids.find((id) => id.startsWith(`claude-${t}`));
        const main = opts.model ?? tier("sonnet") ?? ids[0]!;
        const served = s.models.find((m) => m.id === main);
        // Its window tells Claude Code where to compact; a model the list does not name has none to tell.
        const offer = served
          ? offered(main, served.profile, (w) => process.stderr.write(`warning: ${w}\n`))
          : undefined;
        if (!served)
          process.stderr.write(
            `warning: ${main} is not in the served list (${ids.join(", ")}); Claude Code will assume its own window\n`,
          );
        if (offer && claudeKnowsWindowOf(main))
          process.stderr.write(
            `warning: Claude Code takes its own window for the Claude model name ${main} (200k), not the ${offer.contextWindow} served, and compacts too late; give it a model id that is not a Claude name with --model\n`,
          );
        const env = claudeCodeEnv({
          ...(offer
            ? { window: { contextWindow: offer.contextWindow, maxOutputTokens: offer.maxTokens } }
            : {}),
          baseUrl: s.baseUrl,
          token: s.config.server.masterKey ?? "clawbridge-local",
          models: {
            main,
            ...(tier("opus") ? { opus: tier("opus")! } : {}),
            ...(tier("sonnet") ? { sonnet: tier("sonnet")! } : {}),
            ...(tier("haiku") ? { haiku: tier("haiku")! } : {}),
          },
        });
        if (!opts.write) {
          say(shellExports(env));
          return;
        }
        const out = writeClaudeSettings(env, { path: opts.file ?? claudeSettingsPath() });
        say(
          out.changed
            ? `wrote ${out.path}${out.backup ? ` (backup: ${out.backup})` : ""}`
            : `${out.path} already set; nothing to change`,
        );
      });
    });
}
