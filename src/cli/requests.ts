/**
 * `clawbridge requests`: the request journal from the terminal. Reads the SQLite file directly,
 * read-only, so it works whether the gateway runs or not.
 */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { ConfigError, loadConfigFile } from "../config/load.js";
import type { GatewayConfig } from "../config/types.js";
import { Journal, type JournalRow, type ListQuery } from "../journal/journal.js";
import { defaultJournalPath } from "../journal/path.js";
import { journalSettings } from "../journal/settings.js";
import { findConfigFile } from "./serve.js";

interface ListOptions {
  config?: string;
  db?: string;
  limit: string;
  model?: string;
  status?: string;
  follow?: boolean;
  json?: boolean;
}

/** How often `--follow` looks for new entries. */
const FOLLOW_MS = 300;

/** One entry as one line: time, id, dialect, model → served, status, times, tokens, cause. */
export function formatEntry(e: JournalRow): string {
  const time = new Date(e.at).toISOString().slice(11, 19);
  const served = e.backend ? ` → ${e.backend}/${e.target}` : "";
  const status = e.outcome === "client_gone" ? "client_gone" : String(e.status ?? "-");
  const parts = [
    time,
    e.id,
    e.surface.padEnd(9),
    `${e.model ?? e.route}${served}`,
    status + (e.outcome !== "ok" && e.outcome !== "client_gone" ? ` ${e.outcome}` : ""),
    `${e.durationMs} ms`,
  ];
  if (e.ttftMs !== undefined) parts.push(`ttft ${e.ttftMs} ms`);
  if (e.tokensIn !== undefined || e.tokensOut !== undefined)
    parts.push(
      `${e.tokensIn ?? "?"}→${e.tokensOut ?? "?"} tok${e.tokensCached ? ` (${e.tokensCached} cached)` : ""}`,
    );
  if (e.tokensPerSecond !== undefined) parts.push(`${e.tokensPerSecond} tok/s`);
  if (e.cause) parts.push(`— ${e.cause}`);
  return parts.join("  ");
}

/** One entry in full: the record, the notes, the timeline, the bodies when captured. */
export function formatDetail(e: JournalRow): string {
  const { notes, timeline, bodies, seq: _seq, ...record } = e;
  const out = ["request", ...Object.entries(record).map(([k, v]) => `  ${k}: ${v}`)];
  out.push("notes (what the stages changed)");
  if (!notes.length) out.push("  none");
  for (const n of notes) out.push(`  ${n.subject}: ${n.detail}`);
  out.push("timeline");
  for (const t of timeline)
    out.push(`  +${String(t.ms).padStart(6)} ms  ${t.event}${t.detail ? ` (${t.detail})` : ""}`);
  if (bodies) {
    for (const [k, v] of Object.entries(bodies)) out.push(`${k === "answer" ? "answer" : `${k} body`}`, v);
  } else out.push("bodies: not captured (journal: { capture: true } keeps them)");
  return out.join("\n");
}

/** The journal's file: --db, else the config's journal.path, else the default place. */
function journalFile(opts: { config?: string; db?: string }): string {
  if (opts.db) return opts.db;
  const file = findConfigFile(opts.config);
  let config: Pick<GatewayConfig, "journal" | "source"> = { source: "auto-detected" };
  if (file) {
    try {
      config = loadConfigFile(file);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
    }
  }
  return journalSettings(config, { ...process.env, CLAWBRIDGE_JOURNAL: "" })?.path ?? defaultJournalPath();
}

function openJournal(path: string): Journal | undefined {
  if (!existsSync(path)) {
    process.stderr.write(
      `clawbridge: no request journal at ${path} yet (has the gateway served a request? is journal: false set?)\n`,
    );
    process.exitCode = 1;
    return undefined;
  }
  try {
    return Journal.read(path);
  } catch (e) {
    process.stderr.write(`clawbridge: cannot read the request journal at ${path}: ${(e as Error).message}\n`);
    process.exitCode = 1;
    return undefined;
  }
}

export function registerRequests(program: Command): void {
  const requests = program
    .command("requests")
    .description("list the latest requests from the request journal, newest last")
    .option("-c, --config <file>", "config file (for journal.path)")
    .option("--db <file>", "the journal file to read")
    .option("-n, --limit <n>", "entries to list", "20")
    .option("--model <name>", "only requests for this model (as the client named it)")
    .option("--status <status>", "only this status: 200, 4xx, 5xx, or an outcome (client_gone, timeout…)")
    .option("-f, --follow", "keep printing new requests as they are written")
    .option("--json", "one JSON object per line")
    .action(async (opts: ListOptions) => {
      const journal = openJournal(journalFile(opts));
      if (!journal) return;
      const print = (e: JournalRow) =>
        process.stdout.write(`${opts.json ? JSON.stringify(e) : formatEntry(e)}\n`);
      const q: ListQuery = {
        limit: Math.max(1, Number(opts.limit) || 20),
        ...(opts.model ? { model: opts.model } : {}),
        ...(opts.status ? { status: opts.status } : {}),
      };
      const rows = journal.list(q);
      for (const r of rows) print(r);
      if (!opts.follow) {
        journal.close();
        return;
      }
      let after = rows.at(-1)?.seq ?? journal.list({ limit: 1 }).at(-1)?.seq ?? 0;
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          for (const r of journal.list({ ...q, limit: 1000, after })) {
            print(r);
            after = r.seq;
          }
        }, FOLLOW_MS);
        const stop = () => {
          clearInterval(timer);
          journal.close();
          resolve();
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });
  requests
    .command("show <id>")
    .description(
      "one request in full: its record, what the stages changed, its timeline, its bodies if captured",
    )
    .option("--json", "the entry as JSON")
    .action((id: string, _opts: unknown, cmd: Command) => {
      // --config and --db are the list's options, taken wherever they are written
      const opts = cmd.optsWithGlobals<{ config?: string; db?: string; json?: boolean }>();
      const journal = openJournal(journalFile(opts));
      if (!journal) return;
      const e = journal.get(id);
      journal.close();
      if (!e) {
        process.stderr.write(`clawbridge: no request ${id} in the journal\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`${opts.json ? JSON.stringify(e, null, 2) : formatDetail(e)}\n`);
    });
}
