import type { GatewayConfig } from "./types.js";

/** A config that cannot be used: the message names the file, the place in it and what is wrong. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** "file:line" of a path in the config, for messages. */
export type Where = (path: PropertyKey[]) => string;

/** Models must name known backends; fallbacks must name known models. */
export function checkReferences(config: GatewayConfig, where: (path: PropertyKey[]) => string): void {
  const backends = new Set(config.backends.map((b) => b.name));
  const aliases = new Set(config.models.map((m) => m.alias));
  for (const m of config.models) {
    for (const [i, t] of m.targets.entries()) {
      if (!backends.has(t.backend)) {
        const path =
          m.targets.length > 1 ? ["models", m.alias, i, "backend"] : ["models", m.alias, "backend"];
        throw new ConfigError(
          `${where(path)}: backend '${t.backend}' is not defined (defined: ${[...backends].join(", ") || "none"})`,
        );
      }
    }
  }
  for (const [alias, chain] of Object.entries(config.fallbacks)) {
    for (const [i, target] of chain.entries()) {
      if (!aliases.has(target)) {
        throw new ConfigError(`${where(["fallbacks", alias, i])}: model '${target}' is not defined`);
      }
    }
  }
}
