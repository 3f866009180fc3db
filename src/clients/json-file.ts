import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import JSON5 from "json5";

/** A client's JSON (or JSON5) config file: its parsed object, or undefined when there is none. */
export function readConfigObject(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, "utf8");
  let parsed: unknown;
  try {
    parsed = text.trim() ? JSON5.parse(text) : {};
  } catch (e) {
    throw new Error(`${path} is not valid JSON5 (${(e as Error).message}); fix or move it, then run again`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new Error(`${path} does not hold a JSON object; fix or move it, then run again`);
  return parsed as Record<string, unknown>;
}

/**
 * Writes a client's config file: the old one copied to `<path>.bak-<time>` first, the new one
 * written beside and renamed over it, so the client never reads half a file. Returns the backup.
 */
export function writeWithBackup(path: string, text: string, now = new Date()): string | undefined {
  mkdirSync(dirname(path), { recursive: true });
  let backup: string | undefined;
  if (existsSync(path)) {
    backup = `${path}.bak-${now.toISOString().replace(/[:.]/g, "-")}`;
    copyFileSync(path, backup);
  }
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
  return backup;
}

/** Whether JSON5 text holds comments (line or block, outside strings): writing it as JSON drops them. */
export function hasComments(text: string): boolean {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "/" && (text[i + 1] === "/" || text[i + 1] === "*")) return true;
  }
  return false;
}
