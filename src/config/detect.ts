import { type Dispatcher, fetchJson } from "../backends/http.js";
import type { LocalServer } from "../backends/kind.js";
import { kinds, localServers, readSettings } from "../backends/registry.js";
import { DEFAULT_BODY_LIMIT, DEFAULT_PORT, type BackendConfig, type GatewayConfig } from "./types.js";

export interface Detected {
  backend: BackendConfig;
  models: number;
}

/**
 * Probes where servers listen by default (every kind's, from the registry); each server found
 * becomes a backend that serves all its models.
 */
export async function detectLocalServers(
  dispatcher: Dispatcher,
  servers: readonly LocalServer[] = localServers(),
  timeoutMs = 1500,
): Promise<Detected[]> {
  const found = await Promise.all(
    servers.map(async (s) => {
      try {
        const j = (await fetchJson(s.name, s.url + s.probe, dispatcher, { timeoutMs })) as {
          models?: unknown[];
          data?: unknown[];
        };
        const models = (j.models ?? j.data ?? []).length;
        const backend: BackendConfig = {
          name: s.name,
          kind: s.kind,
          url: s.url,
          discover: true,
          settings: readSettings(s.kind, s.settings),
        };
        return { backend, models };
      } catch {
        return undefined;
      }
    }),
  );
  return found.filter((d): d is Detected => d !== undefined);
}

/**
 * With no server found: models on disk that a kind can serve in-process (GGUF files in
 * clawbridge's models folder, Ollama's pulled models), as a backend that serves them all. None
 * found: undefined.
 */
export function detectOnDisk(
  env: NodeJS.ProcessEnv = process.env,
): (Detected & { found: Array<{ name: string; from: string; path: string }> }) | undefined {
  for (const kind of kinds()) {
    const disk = kind.inProcessUrl !== undefined ? kind.onDisk?.(env) : undefined;
    if (!disk) continue;
    return {
      backend: {
        name: "local",
        kind: kind.kind,
        url: kind.inProcessUrl!,
        discover: true,
        settings: disk.settings,
      },
      models: disk.models.length,
      found: disk.models,
    };
  }
  return undefined;
}

/** A configuration made of what was detected. */
export function detectedConfig(found: Detected[], env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const config: GatewayConfig = {
    source: "auto-detected (no config file)",
    server: { host: "127.0.0.1", port: DEFAULT_PORT, bodyLimitBytes: DEFAULT_BODY_LIMIT },
    log: { level: "info" },
    backends: found.map((f) => f.backend),
    models: [],
    fallbacks: {},
    warnings: [],
  };
  if (env.CLAWBRIDGE_MASTER_KEY) config.server.masterKey = env.CLAWBRIDGE_MASTER_KEY;
  return config;
}

/** What `serve` serves with no config file: the servers on the default ports, else the GGUF models on disk. */
export async function detectServing(
  dispatcher: Dispatcher,
  env: NodeJS.ProcessEnv = process.env,
): Promise<GatewayConfig> {
  const found = await detectLocalServers(dispatcher);
  const onDisk = found.length ? undefined : detectOnDisk(env);
  return detectedConfig(onDisk ? [onDisk] : found, env);
}
