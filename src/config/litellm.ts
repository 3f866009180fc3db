import { litellmProviders, readSettings } from "../backends/registry.js";
import { ConfigError, type Where, checkReferences } from "./check.js";
import type { LiteLLMConfig } from "./schema.js";
import {
  DEFAULT_BODY_LIMIT,
  DEFAULT_PORT,
  type BackendConfig,
  type GatewayConfig,
  type TargetConfig,
} from "./types.js";

/** litellm_params keys that are read; others are reported once as not used. */
const USED_PARAMS = new Set([
  "model",
  "api_base",
  "api_key",
  "tool_mode",
  "tool_format",
  "drop_params",
  "temperature",
  "top_p",
  "top_k",
  "max_tokens",
  "num_ctx",
  "keep_alive",
  "timeout",
]);

/** router_settings clawbridge honours: fallbacks, timeout (timeouts.total_ms), allowed_fails and cooldown_time (each backend's breaker), model_group_alias. */
const ROUTER_HONOURED = new Set([
  "fallbacks",
  "timeout",
  "allowed_fails",
  "cooldown_time",
  "model_group_alias",
]);

/** Why the others are not, where it is worth saying. */
const ROUTER_IGNORED: Record<string, string> = {
  num_retries:
    "clawbridge does not send a failed request again to the same target; it tries a model's replicas, then its fallbacks, each once",
  routing_strategy: "clawbridge sends each request to the first replica that is up and not full",
  retry_after: "clawbridge answers overload with its own Retry-After",
};

/** A LiteLLM proxy config.yaml, taken unchanged, as clawbridge's own configuration. */
export function importLiteLLM(
  c: LiteLLMConfig,
  file: string,
  where: Where,
  env: NodeJS.ProcessEnv,
): GatewayConfig {
  const warnings: string[] = [];
  const globalDrop = c.litellm_settings?.drop_params ?? c.general_settings?.drop_params;
  const backends = new Map<string, BackendConfig>();
  const models = new Map<string, TargetConfig[]>();
  // the provider prefixes served, each kind's (its registry entry says which)
  const providers = litellmProviders();
  const skipped: string[] = [];

  for (const [i, entry] of c.model_list.entries()) {
    const p = entry.litellm_params;
    const slash = p.model.indexOf("/");
    const prefix = slash > 0 ? p.model.slice(0, slash) : "";
    const provider = providers.get(prefix);
    if (!provider) {
      // one entry clawbridge cannot serve does not stop the others
      skipped.push(entry.model_name);
      warnings.push(
        `${where(["model_list", i, "litellm_params", "model"])}: model_list.${i} (${entry.model_name}): '${p.model}' is skipped — ` +
          `clawbridge serves the providers ${[...providers.keys()].map((k) => `${k}/`).join(", ")}`,
      );
      continue;
    }
    const url = p.api_base ?? (provider.env?.url ? env[provider.env.url] : undefined) ?? provider.defaultBase;
    const apiKey = p.api_key ?? (provider.env?.apiKey ? env[provider.env.apiKey] : undefined);
    const backendName = nameFor(provider.kind, url);
    const existing = backends.get(backendName);
    if (!existing) {
      const b: BackendConfig = {
        name: backendName,
        kind: provider.kind,
        url,
        discover: false,
        settings: readSettings(provider.kind, provider.settings),
      };
      if (apiKey) b.apiKey = apiKey;
      backends.set(backendName, b);
    }
    for (const k of Object.keys(p)) {
      if (!USED_PARAMS.has(k))
        warnings.push(`${where(["model_list", i, "litellm_params", k])}: litellm_params.${k} is not used`);
    }
    const t: TargetConfig = { backend: backendName, model: p.model.slice(slash + 1) };
    if (p.timeout !== undefined) t.timeouts = { totalMs: Math.round(p.timeout * 1000) };
    const drop = p.drop_params ?? globalDrop;
    if (drop !== undefined) t.dropParams = drop;
    if (p.temperature !== undefined) t.temperature = p.temperature;
    if (p.top_p !== undefined) t.topP = p.top_p;
    if (p.top_k !== undefined) t.topK = p.top_k;
    if (p.max_tokens !== undefined) t.maxOutputTokens = p.max_tokens;
    if (p.num_ctx !== undefined) t.numCtx = p.num_ctx;
    if (p.keep_alive !== undefined) t.keepAlive = p.keep_alive;
    const info = entry.model_info;
    if (info?.supports_function_calling !== undefined) t.supportsTools = info.supports_function_calling;
    if (p.tool_mode !== undefined) t.toolMode = p.tool_mode;
    if (p.tool_format !== undefined) t.toolFormat = p.tool_format;
    if (info?.max_input_tokens !== undefined) t.contextWindow = info.max_input_tokens;
    const maxOut = info?.max_output_tokens ?? info?.max_tokens;
    if (maxOut !== undefined && t.maxOutputTokens === undefined) t.maxOutputTokens = maxOut;
    // Several entries under one model_name are replicas of one model, as in LiteLLM's router.
    const list = models.get(entry.model_name) ?? [];
    list.push(t);
    models.set(entry.model_name, list);
  }

  if (models.size === 0) {
    throw new ConfigError(
      `${where(["model_list"])}: model_list: no entry is one clawbridge serves (skipped: ${skipped.join(", ")}); ` +
        `it serves the providers ${[...providers.keys()].map((k) => `${k}/`).join(", ")}`,
    );
  }

  const router = c.router_settings ?? {};
  // model_group_alias: more names for a model_name
  for (const [alias, target] of Object.entries(router.model_group_alias ?? {})) {
    const name = typeof target === "string" ? target : target.model;
    const targets = models.get(name);
    if (targets) models.set(alias, targets);
    else
      warnings.push(
        `${where(["router_settings", "model_group_alias", alias])}: router_settings.model_group_alias.${alias}: model '${name}' is not served; the alias is left out`,
      );
  }

  const fallbacks: Record<string, string[]> = {};
  for (const [key, list] of [
    ["router_settings", c.router_settings?.fallbacks],
    ["litellm_settings", c.litellm_settings?.fallbacks],
  ] as const) {
    for (const item of list ?? []) {
      for (const [alias, chain] of Object.entries(item)) {
        const kept = chain.filter((m) => !skipped.includes(m) || models.has(m));
        const dropped = chain.filter((m) => !kept.includes(m));
        if (dropped.length)
          warnings.push(
            `${where([key, "fallbacks"])}: ${key}.fallbacks: ${dropped.join(", ")} skipped above, left out of ${alias}'s fallbacks`,
          );
        if (models.has(alias) && kept.length) fallbacks[alias] = kept;
      }
    }
  }

  // what of router_settings (and litellm_settings' timeout) clawbridge can honour, and what it cannot
  const timeoutS = router.timeout ?? c.litellm_settings?.request_timeout;
  const timeouts = timeoutS !== undefined ? { totalMs: Math.round(timeoutS * 1000) } : undefined;
  if (router.allowed_fails !== undefined || router.cooldown_time !== undefined) {
    for (const b of backends.values()) {
      b.breaker = {
        ...(router.allowed_fails !== undefined ? { failures: router.allowed_fails } : {}),
        ...(router.cooldown_time !== undefined
          ? { cooldownMs: Math.round(router.cooldown_time * 1000) }
          : {}),
      };
    }
  }
  for (const key of Object.keys(router)) {
    if (ROUTER_HONOURED.has(key)) continue;
    const why = ROUTER_IGNORED[key];
    warnings.push(
      `${where(["router_settings", key])}: router_settings.${key} is ignored${why ? `: ${why}` : ""}`,
    );
  }

  const config: GatewayConfig = {
    source: file,
    server: { host: "127.0.0.1", port: DEFAULT_PORT, bodyLimitBytes: DEFAULT_BODY_LIMIT },
    log: { level: "info" },
    backends: [...backends.values()],
    models: [...models.entries()].map(([alias, targets]) => ({ alias, targets })),
    fallbacks,
    warnings,
    ...(timeouts ? { timeouts } : {}),
  };
  const key = c.general_settings?.master_key ?? env.CLAWBRIDGE_MASTER_KEY;
  if (key) config.server.masterKey = key;
  checkReferences(config, where);
  return config;
}

function nameFor(kind: string, url: string): string {
  try {
    const u = new URL(url);
    return `${kind}@${u.host}`;
  } catch {
    return `${kind}@${url}`;
  }
}
