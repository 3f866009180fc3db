import { existsSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { stringify } from "yaml";
import { createDispatcher, type Dispatcher } from "../backends/http.js";
import {
  createBackend,
  kindOf,
  kinds,
  localServers,
  readSettings,
  writeSettings,
} from "../backends/registry.js";
import { type Detected, detectLocalServers, detectOnDisk } from "../config/detect.js";
import type { BackendConfig } from "../config/types.js";
import { redact } from "../redact.js";
import { detectGpuMemory } from "../setup/gpu.js";
import {
  type Candidate,
  fitTable,
  type FitRow,
  type ProposedAlias,
  proposeAliases,
  proposeAnyway,
} from "../setup/propose.js";

interface InitOptions {
  url?: string[];
  vram?: string;
  output: string;
  yes?: boolean;
  force?: boolean;
}

const say = (line = "") => process.stdout.write(`${line}\n`);

/**
 * The servers to look at: the URLs given, each identified by what it answers (the kinds' own
 * `identify`: Ollama, llama.cpp, vLLM, LM Studio wherever they listen), or the default local ports.
 */
async function findServers(urls: string[] | undefined, dispatcher: Dispatcher): Promise<Detected[]> {
  if (!urls?.length) return detectLocalServers(dispatcher);
  const out: Detected[] = [];
  const names = new Map<string, number>();
  for (const u of urls) {
    // a scheme is optional (localhost:11434); the root, whatever API path was pasted after it
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(u) ? u : `http://${u}`;
    const root = withScheme.replace(/\/+$/, "").replace(/\/(v1|api)$/, "");
    // a server may answer as more than one kind (an Ollama also answers /v1/models): the kind registered first (the native one)
    for (const k of kinds()) {
      const found = await k.identify?.(root, dispatcher);
      if (!found) continue;
      const n = names.get(found.name) ?? 0;
      names.set(found.name, n + 1);
      out.push({
        backend: {
          name: n ? `${found.name}${n + 1}` : found.name,
          kind: k.kind,
          url: found.url,
          discover: true,
          settings: readSettings(k.kind, found.settings),
        },
        models: 0,
      });
      say(`${redact(u)}: ${found.label}`);
      break;
    }
  }
  return out;
}

function table(rows: FitRow[]): string[] {
  const head = ["backend", "model", "size", "trained ctx", "tools", "note"];
  const cells = rows.map((r) => [
    r.backend,
    r.model,
    r.sizeGiB !== undefined ? `${r.sizeGiB} GiB` : "?",
    r.trained ? `${Math.round(r.trained / 1024)}k` : "?",
    r.tools === undefined ? "?" : r.tools ? "yes" : "no",
    r.note,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  return [head, ...cells].map((c) =>
    c
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd(),
  );
}

/** `"*"`: any other name (a dated Claude id, `claude-sonnet-4-5-20250929`) to the middle tier's model, not a 404. */
function withCatchAll(aliases: ProposedAlias[]): ProposedAlias[] {
  const middle = aliases[Math.floor(aliases.length / 2)];
  return middle ? [...aliases, { ...middle, alias: "*" }] : aliases;
}

function configYaml(backends: BackendConfig[], aliases: ProposedAlias[], vramGb?: number): string {
  const doc = {
    server: { host: "127.0.0.1", port: 4000 },
    backends: Object.fromEntries(
      backends.map((b) => [
        b.name,
        {
          kind: b.kind,
          url: b.url,
          ...writeSettings(b.kind, b.settings ?? {}),
          // the memory budget is what a window chosen per request is fitted to
          ...(vramGb && kindOf(b.kind)?.windowPerRequest ? { vram_gb: vramGb } : {}),
        },
      ]),
    ),
    models: Object.fromEntries(
      withCatchAll(aliases).map((a) => [
        a.alias,
        {
          backend: a.backend,
          model: a.model,
          ...(a.contextWindow ? { context_window: a.contextWindow } : {}),
        },
      ]),
    ),
  };
  return `# written by \`clawbridge init\` on ${new Date().toISOString().slice(0, 10)}; see README, Configuration\n${stringify(doc)}`;
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description(
      "find the local servers and their models, say which fit your GPU and with what context, and write a config",
    )
    .option(
      "--url <url...>",
      "servers to look at (default: Ollama, llama.cpp, LM Studio, vLLM on their default ports)",
    )
    .option("--vram <GiB>", "memory the models may use, when it cannot be read (nvidia-smi, rocm-smi, Apple)")
    .option("-o, --output <file>", "config file to write", "clawbridge.yaml")
    .option("-y, --yes", "no questions: accept the proposal")
    .option("--force", "overwrite the config file when it exists")
    .action(async (opts: InitOptions) => {
      process.exitCode = await init(opts);
    });
}

async function init(opts: InitOptions): Promise<number> {
  const interactive = !opts.yes && process.stdin.isTTY;
  const rl = interactive ? createInterface({ input: process.stdin, output: process.stdout }) : undefined;
  const dispatcher = createDispatcher();
  try {
    const found = await findServers(opts.url, dispatcher);
    // no server: the GGUF models on disk, which `serve` runs in-process
    const onDisk = found.length || opts.url?.length ? undefined : detectOnDisk();
    if (onDisk) {
      say(`No model server answered; ${onDisk.models} GGUF model(s) on disk, run in-process:`);
      for (const m of onDisk.found) say(`  ${m.name}  (${m.from}: ${m.path})`);
      found.push(onDisk);
    }
    if (!found.length) {
      const where =
        opts.url?.join(", ") ??
        localServers()
          .map((s) => s.url)
          .join(", ");
      say(`No model server answered at ${redact(where)}.`);
      say(
        "Start one (`ollama serve`, `llama-server -m model.gguf --port 8080`, ...) and run `clawbridge init` again.",
      );
      return 1;
    }
    const cands: Candidate[] = [];
    for (const f of found) {
      const backend = createBackend(f.backend, dispatcher);
      try {
        for (const model of await backend.discover()) cands.push({ backend: f.backend, model });
        say(`found ${f.backend.name} (${f.backend.kind}) at ${redact(f.backend.url)}`);
      } catch (e) {
        say(
          `${f.backend.name} at ${redact(f.backend.url)} answered, but listing its models failed: ${redact((e as Error).message)}`,
        );
      }
    }
    let vramGb = opts.vram !== undefined ? Number(opts.vram) : undefined;
    if (vramGb === undefined || !(vramGb > 0)) {
      const gpu = detectGpuMemory();
      if (gpu) {
        vramGb = Math.round((gpu.bytes / 1024 ** 3) * 10) / 10;
        say(`GPU memory: ${vramGb} GiB (${gpu.source})`);
      } else if (rl) {
        const a = await rl.question(
          "GPU memory could not be read. How many GiB may the models use? (empty: unknown) ",
        );
        vramGb = Number(a) > 0 ? Number(a) : undefined;
      } else vramGb = undefined;
    }
    if (!cands.length) {
      say("The servers have no models yet (e.g. `ollama pull qwen2.5:14b`).");
      return 1;
    }
    const rows = fitTable(cands, vramGb ? vramGb * 1024 ** 3 : undefined);
    say();
    for (const l of table(rows)) say(`  ${l}`);
    let aliases = proposeAliases(cands, rows);
    say();
    let warning: string | undefined;
    if (!aliases.length) {
      aliases = proposeAnyway(cands, rows);
      warning = vramGb
        ? `WARNING: no model fits ${vramGb} GiB with OpenClaw's 16k window; the config uses the smallest, ${aliases[0]!.model}, which will spill out of GPU memory and run slowly (or set --vram to what the GPU has)`
        : "WARNING: no model is big enough for OpenClaw's 16k window; the config uses the smallest, which OpenClaw may refuse";
      say(warning);
    }
    say("Proposed names (what Claude Code and OpenClaw ask for → the local model):");
    for (const a of withCatchAll(aliases))
      say(
        `  ${a.alias.padEnd(18)} → ${a.model} on ${a.backend}${a.contextWindow ? `, ${a.contextWindow} tokens` : ""}  (${a.why})`,
      );
    const text = configYaml(
      found.map((f) => f.backend),
      aliases,
      vramGb,
    );
    if (existsSync(opts.output) && !opts.force) {
      const ok = rl && /^y/i.test(await rl.question(`${opts.output} exists. Overwrite it? [y/N] `));
      if (!ok) {
        say(`${opts.output} exists; not overwritten (use --force). The config would be:\n`);
        say(text);
        return 1;
      }
    } else if (rl && !/^(y|$)/i.test(await rl.question(`Write ${opts.output}? [Y/n] `))) return 1;
    writeFileSync(opts.output, text);
    say(`wrote ${opts.output}${warning ? " (see the WARNING above)" : ""}`);
    say(
      "Next: `clawbridge serve` (or `clawbridge up`), then `clawbridge openclaw` or `clawbridge claude-code`.",
    );
    return 0;
  } finally {
    rl?.close();
    await dispatcher.close();
  }
}
