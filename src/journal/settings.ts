import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { GatewayConfig } from "../config/types.js";
import type { JournalSettings } from "./journal.js";
import { clawbridgeHome, defaultJournalPath } from "./path.js";

/**
 * The journal a config asks for: its `journal:` settings over the defaults (on, in the user's
 * clawbridge folder); undefined when it is turned off (`journal: false`, or
 * `CLAWBRIDGE_JOURNAL=off`). A relative path is taken from the config file's folder, never the
 * working directory.
 */
export function journalSettings(
  config: Pick<GatewayConfig, "journal" | "source">,
  env: NodeJS.ProcessEnv = process.env,
): JournalSettings | undefined {
  const j = config.journal;
  const switchOff = env.CLAWBRIDGE_JOURNAL?.toLowerCase();
  if (j?.enabled === false || switchOff === "off" || switchOff === "0" || switchOff === "false")
    return undefined;
  return {
    path: journalPath(j?.path, config.source, env),
    ...(j?.maxMb !== undefined ? { maxMb: j.maxMb } : {}),
    ...(j?.maxAgeDays !== undefined ? { maxAgeDays: j.maxAgeDays } : {}),
    ...(j?.capture !== undefined ? { capture: j.capture } : {}),
  };
}

function journalPath(p: string | undefined, source: string, env: NodeJS.ProcessEnv): string {
  if (!p) return defaultJournalPath(env);
  if (p === "~" || p.startsWith("~/")) return join(homedir(), p.slice(1));
  if (isAbsolute(p)) return p;
  // the config file's folder when there is one (its source is a path), else the clawbridge folder
  const base =
    source.endsWith(".yaml") || source.endsWith(".yml") ? dirname(resolve(source)) : clawbridgeHome(env);
  return resolve(base, p);
}
