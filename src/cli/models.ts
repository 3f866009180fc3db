import type { Command } from "commander";
import { createDispatcher } from "../backends/http.js";
import { detectServing } from "../config/detect.js";
import { ConfigError, loadConfigFile } from "../config/load.js";
import type { GatewayConfig } from "../config/types.js";
import { OPENCLAW_MIN_CONTEXT } from "../context/window.js";
import { GatewayError } from "../ir/errors.js";
import { silentLogger } from "../log.js";
import { Router } from "../routing/router.js";
import { findConfigFile } from "./serve.js";

export interface ModelsOptions {
  config?: string;
  json?: boolean;
}

/** One row of `clawbridge models`: what a model's window is, on each side. */
export interface ModelRow {
  model: string;
  backend: string;
  backendModel: string;
  /** What the server says it serves (llama.cpp n_ctx, vLLM max_model_len, ...). */
  served?: number;
  servedFrom?: string;
  /** What the configuration states. */
  configured?: number;
  /** The model's trained maximum, when known. */
  trained?: number;
  /** What clients are told (/v1/models context_window), and what requests are kept inside. */
  told?: number;
  /** Ollama: the num_ctx sent with every request. */
  numCtx?: number;
  /** Whether OpenClaw's practical minimum (~16k) is met. */
  openclawOk: boolean;
  why: string;
  warnings: readonly string[];
}

export function registerModels(program: Command): void {
  program
    .command("models")
    .description(
      "list the models served, with the context window each really gets: served, configured, told to clients",
    )
    .option("-c, --config <file>", "config file: clawbridge's own YAML or a LiteLLM config.yaml")
    .option("--json", "print JSON instead of a table")
    .action(async (opts: ModelsOptions) => {
      process.exitCode = await listModels(opts);
    });
}

export async function listModels(opts: ModelsOptions, out: (s: string) => void = say): Promise<number> {
  const dispatcher = createDispatcher();
  try {
    let config: GatewayConfig;
    const file = findConfigFile(opts.config);
    try {
      config = file ? loadConfigFile(file) : await detectServing(dispatcher);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`clawbridge: ${e.message}\n`);
        return 2;
      }
      throw e;
    }
    const router = new Router(config, dispatcher, silentLogger);
    await router.discover();
    const rows = modelRows(router);
    const down = [...router.discovered.entries()].flatMap(([name, d]) =>
      d instanceof GatewayError ? [{ backend: name, error: d.message }] : [],
    );
    if (opts.json) {
      out(JSON.stringify({ config: config.source, models: rows, unreachable: down }, null, 2));
      return 0;
    }
    out(`config: ${config.source}`);
    for (const d of down) out(`backend ${d.backend} NOT REACHABLE: ${d.error}`);
    if (!rows.length) {
      out("no models");
      return 0;
    }
    out(formatTable(rows));
    return 0;
  } finally {
    await dispatcher.close();
  }
}

function modelRows(router: Router): ModelRow[] {
  return router.models().map((m) => {
    const c = m.context;
    const row: ModelRow = {
      model: m.id,
      backend: m.backend,
      backendModel: m.model,
      openclawOk: m.contextWindow !== undefined && m.contextWindow >= OPENCLAW_MIN_CONTEXT,
      why: c?.why ?? "",
      warnings: c?.warnings ?? [],
    };
    if (c?.served !== undefined) row.served = c.served;
    if (c?.servedFrom !== undefined) row.servedFrom = c.servedFrom;
    if (c?.configured !== undefined) row.configured = c.configured;
    if (c?.trained !== undefined) row.trained = c.trained;
    if (m.contextWindow !== undefined) row.told = m.contextWindow;
    if (m.numCtx !== undefined) row.numCtx = m.numCtx;
    return row;
  });
}

/** The rows as a table, each followed by why its window is what it is and what disagrees. */
function formatTable(rows: ModelRow[]): string {
  const n = (v: number | undefined) => (v === undefined ? "-" : String(v));
  const head = [
    "MODEL",
    "BACKEND",
    "SERVED",
    "CONFIGURED",
    "TOLD CLIENTS",
    "NUM_CTX",
    `OPENCLAW ≥${OPENCLAW_MIN_CONTEXT / 1024}K`,
  ];
  const body = rows.map((r) => [
    r.model === r.backendModel ? r.model : `${r.model} (${r.backendModel})`,
    r.backend,
    n(r.served),
    n(r.configured),
    n(r.told),
    n(r.numCtx),
    r.told === undefined ? "unknown" : r.openclawOk ? "yes" : "NO",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const out = [line(head)];
  for (const [i, r] of rows.entries()) {
    out.push(line(body[i]!));
    if (r.why) out.push(`    window: ${r.why}${r.servedFrom ? `; server: ${r.servedFrom}` : ""}`);
    for (const w of r.warnings) out.push(`    warning: ${w}`);
  }
  return out.join("\n");
}

const say = (line: string) => process.stdout.write(`${line}\n`);
