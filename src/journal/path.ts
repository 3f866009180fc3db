import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** clawbridge's own folder for user state: `$CLAWBRIDGE_HOME`, else `~/.clawbridge`. */
export function clawbridgeHome(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.CLAWBRIDGE_HOME;
  if (p) return resolve(p === "~" ? homedir() : p.startsWith("~/") ? join(homedir(), p.slice(2)) : p);
  return join(homedir(), ".clawbridge");
}

/** Where the request journal is kept unless the config says (`journal.path`). */
export function defaultJournalPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(clawbridgeHome(env), "journal.db");
}
