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
]);

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

  for (const [i, entry] of c.model_list.entries()) {
    const p = entry.litellm_params;
    const slash = p.model.indexOf("/");
    const prefix = slash > 0 ? p.model.slice(0, slash) : "";
    const provider = providers.get(prefix);
    if (!provider) {
      throw new ConfigError(
        `${where(["model_list", i, "litellm_params", "model"])}: model_list.${i}.litellm_params.model: '${p.model}' — ` +
          `clawbridge serves the providers ${[...providers.keys()].map((k) => `${k}/`).join(", ")}`,
      );
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

  const fallbacks: Record<string, string[]> = {};
  for (const list of [c.router_settings?.fallbacks, c.litellm_settings?.fallbacks]) {
    for (const item of list ?? []) Object.assign(fallbacks, item);
  }

  const config: GatewayConfig = {
    source: file,
    server: { host: "127.0.0.1", port: DEFAULT_PORT, bodyLimitBytes: DEFAULT_BODY_LIMIT },
    log: { level: "info" },
    backends: [...backends.values()],
    models: [...models.entries()].map(([alias, targets]) => ({ alias, targets })),
    fallbacks,
    warnings,
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
