import type { Command } from "commander";
import { createDispatcher, fetchJson } from "../backends/http/client.js";
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
    const parts = [`${b.status}`];
    if (q)
      parts.push(
        `running ${q.running}/${q.limit ?? "∞"}, waiting ${q.waiting?.foreground ?? 0}+${q.waiting?.background ?? 0}`,
      );
    if (b.circuit && b.circuit !== "closed") parts.push(`circuit ${b.circuit}`);
    const l = loaded.get(b.name);
    if (l) parts.push(l.length ? `loaded: ${l.join(", ")}` : "no model loaded");
    lines.push(
      `  backend ${b.name} (${b.kind}) ${b.url}: ${parts.join("; ")}${b.error ? `\n    ${b.error}` : ""}`,
    );
  }
  const models = (health.models ?? []) as string[];
  lines.push(`  models: ${models.join(", ") || "none"}`);
  for (const h of (health.hint ?? []) as string[]) lines.push(`  ${h}`);
  return lines;
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("the running gateway: backends and their health, loaded models, queue depth")
    .option("-c, --config <file>", "config file (for the address and key)")
    .option("--url <url>", "the gateway's URL (default: from the config, or http://127.0.0.1:4000)")
    .option("--json", "print /health as JSON")
    .action(async (opts: { config?: string; url?: string; json?: boolean }) => {
      let url = opts.url;
      let key: string | undefined = process.env.CLAWBRIDGE_MASTER_KEY;
      // backend URLs as configured: /health shows them with their credentials redacted
      const configured = new Map<string, string>();
      const file = findConfigFile(opts.config);
      if (file) {
        try {
          const c = loadConfigFile(file);
          const host = ["0.0.0.0", "::"].includes(c.server.host) ? "127.0.0.1" : c.server.host;
          url ??= `http://${host}:${c.server.port}`;
          key = c.server.masterKey ?? key;
          for (const b of c.backends) configured.set(b.name, b.url);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          process.stderr.write(`clawbridge: ${e.message}\n`);
        }
      }
      url ??= `http://127.0.0.1:${DEFAULT_PORT}`;
      const dispatcher = createDispatcher();
      try {
        let health: Obj;
        try {
          health = (await fetchJson("gateway", `${url}/health`, dispatcher, {
            timeoutMs: 3000,
            ...(key ? { headers: { "x-api-key": key } } : {}),
          })) as Obj;
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
            .filter((b) => b.status === "ok")
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
