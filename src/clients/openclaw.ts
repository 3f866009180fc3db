import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { hasComments, readConfigObject, writeWithBackup } from "./json-file.js";
import type { LaunchClient } from "./launcher.js";

/**
 * OpenClaw's configuration, written for the user: the clawbridge provider with every served model
 * and its real window, the primary model and fallbacks, and a timeout that suits local loads. What
 * the seeds did by hand in two files (and a node_modules patch) is one idempotent merge here.
 */

/** A model as OpenClaw should be told of it. */
export interface OfferedModel {
  id: string;
  name?: string;
  /** The window clients are told: the one the server really serves. */
  contextWindow: number;
  maxTokens: number;
  vision?: boolean;
  reasoning?: boolean;
}

export interface OpenClawOptions {
  /** clawbridge's base URL, without /v1 (OpenClaw appends /v1/messages). */
  baseUrl: string;
  apiKey: string;
  models: OfferedModel[];
  /** Model id to make the agent's primary; default the first model. */
  primary?: string;
  /** Fallback model refs, as OpenClaw writes them (`clawbridge/x`, `anthropic/claude-…`). */
  fallbacks?: string[];
  /** Seconds OpenClaw waits on a request; local models load for minutes. */
  timeoutSeconds?: number;
  providerName?: string;
}

const DEFAULT_TIMEOUT_SECONDS = 600;

/** Where OpenClaw reads its config: $OPENCLAW_CONFIG_PATH, $OPENCLAW_HOME/.openclaw, or ~/.openclaw. */
export function openclawConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OPENCLAW_CONFIG_PATH) return env.OPENCLAW_CONFIG_PATH;
  return join(env.OPENCLAW_HOME || homedir(), ".openclaw", "openclaw.json");
}

type Obj = Record<string, unknown>;

function obj(parent: Obj, key: string): Obj {
  const v = parent[key];
  if (v && typeof v === "object" && !Array.isArray(v)) return v as Obj;
  const fresh: Obj = {};
  parent[key] = fresh;
  return fresh;
}

/**
 * Merges the clawbridge provider into a parsed OpenClaw config (left unchanged) and says what
 * changed. Everything else in the file is kept as it was; models the user added to the provider
 * by hand are kept too.
 */
function mergeOpenClawConfig(existing: unknown, o: OpenClawOptions): { config: Obj; changes: string[] } {
  const config: Obj =
    existing && typeof existing === "object" && !Array.isArray(existing)
      ? structuredClone(existing as Obj)
      : {};
  const name = o.providerName ?? "clawbridge";
  const changes: string[] = [];
  const models = obj(config, "models");
  if (models.mode === undefined) models.mode = "merge";
  const providers = obj(models, "providers");
  const before = JSON.stringify(providers[name] ?? null);
  // The provider's own settings the user added are kept; its model list is clawbridge's: it is
  // what the gateway serves now, so a model that went away leaves the list.
  const old = (providers[name] as Obj | undefined) ?? {};
  providers[name] = {
    ...old,
    baseUrl: o.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, ""),
    apiKey: o.apiKey,
    api: "anthropic-messages",
    timeoutSeconds: o.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    models: o.models.map((m) => ({
      id: m.id,
      name: m.name ?? `${m.id} (local, via clawbridge)`,
      reasoning: m.reasoning ?? false,
      input: m.vision ? ["text", "image"] : ["text"],
      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
      contextWindow: m.contextWindow,
      maxTokens: m.maxTokens,
    })),
  };
  if (JSON.stringify(providers[name]) !== before)
    changes.push(`models.providers.${name}: ${o.models.length} model(s) at ${o.baseUrl}`);

  const primaryId = o.primary ?? o.models[0]?.id;
  if (primaryId) {
    const model = obj(obj(obj(config, "agents"), "defaults"), "model");
    const ref = `${name}/${primaryId}`;
    if (model.primary !== ref) {
      changes.push(`agents.defaults.model.primary: ${String(model.primary ?? "(unset)")} → ${ref}`);
      model.primary = ref;
    }
    if (o.fallbacks) {
      if (JSON.stringify(model.fallbacks ?? []) !== JSON.stringify(o.fallbacks))
        changes.push(`agents.defaults.model.fallbacks: ${o.fallbacks.join(", ") || "(none)"}`);
      model.fallbacks = o.fallbacks;
    }
  }
  return { config, changes };
}

export interface WritePlan {
  path: string;
  /** The new file's text. */
  text: string;
  changes: string[];
  /** Where the previous file was copied, when there was one and it changed. */
  backup?: string;
  /** The old file had comments, which JSON cannot hold: said, with where they are kept (the backup). */
  warning?: string;
  written: boolean;
}

/** Reads (JSON5), merges, and unless `dryRun` writes the config, keeping a backup of the old file. */
export function writeOpenClawConfig(
  o: OpenClawOptions,
  opts: { path?: string; dryRun?: boolean; now?: Date } = {},
): WritePlan {
  const path = opts.path ?? openclawConfigPath();
  const existing = readConfigObject(path);
  const { config, changes } = mergeOpenClawConfig(existing, o);
  const text = `${JSON.stringify(config, null, 2)}\n`;
  const plan: WritePlan = { path, text, changes, written: false };
  if (opts.dryRun || (existing !== undefined && changes.length === 0)) return plan;
  const backup = writeWithBackup(path, text, opts.now);
  if (backup) plan.backup = backup;
  plan.written = true;
  if (backup && hasComments(readFileSync(backup, "utf8")))
    plan.warning = `the comments in ${path} are not kept (it is written as plain JSON); the file with its comments is ${backup}`;
  return plan;
}

/** The window OpenClaw is told for a model whose window is not known. */
const UNKNOWN_WINDOW = 16_384;

/**
 * `clawbridge launch openclaw`: OpenClaw reads, for this run, a copy of the user's config with the clawbridge
 * provider merged in and the chosen model as the agent's primary ($OPENCLAW_CONFIG_PATH at the copy); the user's
 * own file is only read.
 */
export const openclawClient: LaunchClient = {
  name: "openclaw",
  title: "OpenClaw",
  command: "openclaw",
  npmPackage: "openclaw",
  minWindow: 32_768,
  windowNeed: "its system prompt and tool definitions take about 17k tokens",
  defaultModel: (ids) => ids[0]!,
  plan: (t) => {
    const path = join(t.scratch, "openclaw.json");
    const own = openclawConfigPath(t.env);
    if (existsSync(own)) copyFileSync(own, path);
    writeOpenClawConfig(
      {
        baseUrl: t.baseUrl,
        apiKey: t.apiKey,
        models: t.models.map((m) => {
          const window = m.contextWindow ?? UNKNOWN_WINDOW;
          return { id: m.id, contextWindow: window, maxTokens: Math.min(8192, Math.floor(window / 4)) };
        }),
        primary: t.model,
      },
      { path },
    );
    return { args: [], env: { OPENCLAW_CONFIG_PATH: path } };
  },
};
