import type { Command } from "commander";
import { createDispatcher } from "../backends/http/client.js";
import { kindOf } from "../backends/registry.js";
import { ConfigError, loadConfigFile } from "../config/load.js";
import { DEFAULT_PORT } from "../config/types.js";
import { redact } from "../redact.js";
import { findConfigFile } from "./serve.js";

type Obj = Record<string, any>;

/** The running gateway's state, in lines a person reads; credentials in URLs redacted. */
export function renderStatus(url: string, health: Obj, loaded: Map<string, string[]>): string[] {
  return renderLines(url, health, loaded).map(redact);
}

function renderLines(url: string, health: Obj, loaded: Map<string, string[]>): string[] {
  const lines = [`clawbridge at ${url}: ${health.status} (config: ${health.config})`];
  for (const b of (health.backends ?? []) as Obj[]) {
    const q = b.queue as Obj | undefined;
    // an older gateway says status and error where this one says state and reason
    const parts = [`${b.state ?? b.status}${b.since ? ` since ${when(String(b.since))}` : ""}`];
    if (q)
      parts.push(
        `running ${q.running}/${q.limit ?? "∞"}, waiting ${q.waiting?.foreground ?? 0}+${q.waiting?.background ?? 0}`,
      );
    if (b.circuit && b.circuit !== "closed") parts.push(`circuit ${b.circuit}`);
    if (typeof b.models_listed === "number") parts.push(`${b.models_listed} model(s) listed`);
    const l = loaded.get(b.name);
    if (l) parts.push(l.length ? `loaded: ${l.join(", ")}` : "no model loaded");
    const notes = [
      ...(b.reason || b.error ? [String(b.reason ?? b.error)] : []),
      ...(Array.isArray(b.models_gone) && b.models_gone.length
        ? [`no longer listed: ${b.models_gone.join(", ")}`]
        : []),
    ];
    lines.push(
      `  backend ${b.name} (${b.kind}) ${b.url}: ${parts.join("; ")}${notes.map((n) => `\n    ${n}`).join("")}`,
    );
  }
  const models = (health.models ?? []) as string[];
  lines.push(`  models: ${models.join(", ") || "none"}`);
  for (const h of (health.hint ?? []) as string[]) lines.push(`  ${h}`);
  return lines;
}

/** An ISO time as a person reads it: the local time of day, with the date when not today. */
function when(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const time = t.toTimeString().slice(0, 8);
  return t.toDateString() === new Date().toDateString() ? time : `${t.toISOString().slice(0, 10)} ${time}`;
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("the running gateway: backends and their health, loaded models, queue depth")
    .option("-c, --config <file>", "config file (for the address and key)")
    .option("--url <url>", "the gateway's URL (default: from the config, or http://127.0.0.1:4000)")
    .option("--json", "print /health as JSON")
    .action(async (opts: { config?: string; url?: string; json?: boolean }) => {
      const { url, key, configured } = gatewayAddress(opts);

      const dispatcher = createDispatcher();
      try {
        let health: Obj;
        try {
          health = await readHealth(`${url}/health`, key);
        } catch (e) {
          process.stderr.write(
            `clawbridge is not answering at ${redact(url)} (${redact((e as Error).message)}).\nStart it with \`clawbridge serve\` (or \`clawbridge service install\`).\n`,
          );
          process.exitCode = 1;
          return;
        }
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(health, null, 2)}\n`);
          return;
        }
        // what the servers that can say hold in memory right now (Ollama; the others load one model at start)
        const loaded = new Map<string, string[]>();
        await Promise.all(
          ((health.backends ?? []) as Obj[])
            .filter((b) => b.state !== "down")
            .map(async (b) => {
              const root = withCredentials(String(b.url), configured.get(b.name));
              const models = await kindOf(String(b.kind))?.loaded?.(b.name, root, dispatcher);
              if (models) loaded.set(b.name, models);
            }),
        );
        for (const l of renderStatus(url, health, loaded)) process.stdout.write(`${l}\n`);
        if (health.status !== "ok") process.exitCode = 1;
      } finally {
        await dispatcher.close();
      }
    });
}

/**
 * Where the running gateway answers and its key: --url, else the config file's address (a
 * wildcard bind asked on loopback), else the default port; the key from the config or
 * $CLAWBRIDGE_MASTER_KEY. Also the backends' URLs as configured (their credentials).
 */
export function gatewayAddress(opts: { config?: string; url?: string }): {
  url: string;
  key: string | undefined;
  configured: Map<string, string>;
} {
  let url = opts.url;
  let key: string | undefined = process.env.CLAWBRIDGE_MASTER_KEY;
  // backend URLs as configured: /health shows them with their credentials redacted
  const configured = new Map<string, string>();
  const file = findConfigFile(opts.config);
  if (file) {
    try {
      const c = loadConfigFile(file);
      const host = ["0.0.0.0", "::"].includes(c.server.host) ? "127.0.0.1" : c.server.host;
      url ??= `http://${host.includes(":") ? `[${host}]` : host}:${c.server.port}`;
      key = c.server.masterKey ?? key;
      for (const b of c.backends) configured.set(b.name, b.url);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      process.stderr.write(`clawbridge: ${e.message}\n`);
    }
  }
  return { url: url ?? `http://127.0.0.1:${DEFAULT_PORT}`, key, configured };
}

/** The gateway's /health: its body when it answers 200 or 503 (no backend can serve). */
async function readHealth(url: string, key: string | undefined): Promise<Obj> {
  const res = await fetch(url, {
    signal: AbortSignal.timeout(3000),
    ...(key ? { headers: { "x-api-key": key } } : {}),
  });
  const text = await res.text();
  if (res.status !== 200 && res.status !== 503) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text) as Obj;
  } catch {
    throw new Error(`not a clawbridge /health answer: ${text.slice(0, 200)}`);
  }
}

/** A backend URL as /health shows it, with the credentials of the same backend's URL in the config put back. */
function withCredentials(shown: string, configured: string | undefined): string {
  if (!configured) return shown;
  try {
    const u = new URL(shown);
    const c = new URL(configured);
    if (u.host !== c.host) return shown;
    u.username = c.username;
    u.password = c.password;
    return u.href.replace(/\/+$/, "");
  } catch {
    return shown;
  }
}
