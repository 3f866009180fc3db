/**
 * From nothing: when no server answers and no model is on disk, offer the catalogue model that fits
 * this machine, pull it (progress, resume, SHA-256) into the models folder, where the embedded
 * engine finds it. `serve` calls it; so does `launch`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline/promises";
import { loadEngine } from "../backends/embedded/engine.js";
import { defaultModelsDir } from "../backends/embedded/find.js";
import { formatBytes, PullError, progressPrinter, pull } from "../backends/embedded/pull.js";
import {
  CatalogueError,
  type CatalogueEntry,
  entryUrl,
  loadCatalogue,
  type MachineMemory,
  pickModel,
  readMemory,
} from "./catalogue.js";

export interface OfferOptions {
  /** stdin and stdout are a terminal: the offer may ask. */
  interactive: boolean;
  /** Accept without asking (`--yes`, for scripts). */
  yes: boolean;
  /** Where the lines for the user go. */
  log: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** The machine's memory (default: read from the GPU tools, else RAM). */
  memory?: MachineMemory;
  /** Asks a question and returns the answer (default: on the terminal). */
  ask?: (question: string) => Promise<string>;
  /** Where the progress bar is drawn (default stderr). */
  progress?: NodeJS.WriteStream;
  signal?: AbortSignal;
  /** Say what to do instead when nothing is pulled (default true; `serve` prints its own hints). */
  instead?: boolean;
  /** Loads the in-process engine (default: node-llama-cpp's import); a download it could not run is not offered. */
  engine?: () => Promise<unknown>;
}

/** A download size as the model hosts print it: decimal gigabytes. */
export function downloadSize(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}

/** Asks on the terminal; the input closing answers no, Ctrl-C interrupts the process as anywhere else. */
async function askOnTerminal(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const abort = new AbortController();
  rl.once("SIGINT", () => {
    process.stdout.write("\n");
    abort.abort();
    rl.close();
    process.kill(process.pid, "SIGINT");
  });
  rl.once("close", () => abort.abort());
  try {
    return await rl.question(question, { signal: abort.signal });
  } catch {
    return "n";
  } finally {
    rl.close();
  }
}

function instead(dir: string): string[] {
  return [
    "To serve a model without this download: start a local model server (Ollama, llama.cpp's llama-server, LM Studio, vLLM) and run clawbridge again,",
    `or put a GGUF file in ${dir}, or download one yourself: clawbridge pull <url | hf:owner/repo/file.gguf | catalogue id>`,
  ];
}

/**
 * Offers the catalogue model that fits this machine and pulls it; returns the path of the model
 * file, or undefined when nothing was pulled (declined, no terminal and no --yes, nothing fits,
 * the download failed) after saying why and what to do instead.
 */
export async function offerModel(opts: OfferOptions): Promise<string | undefined> {
  const env = opts.env ?? process.env;
  const { log } = opts;
  const dir = defaultModelsDir(env);
  let entries: CatalogueEntry[];
  try {
    entries = loadCatalogue(env);
  } catch (e) {
    if (e instanceof CatalogueError) {
      log(`clawbridge: ${e.message}`);
      return undefined;
    }
    throw e;
  }
  const memory = opts.memory ?? readMemory();
  const pick = pickModel(memory, entries);
  if (!pick.entry) {
    log(`No model to offer: ${pick.why}.`);
    if (opts.instead !== false) for (const line of instead(dir)) log(line);
    return undefined;
  }
  const entry = pick.entry;
  const size = downloadSize(entry.sizeBytes);
  try {
    await (opts.engine ?? loadEngine)();
  } catch (e) {
    log(`Not offering ${entry.id} ${entry.quant} (${size}): ${(e as Error).message}.`);
    if (opts.instead !== false) for (const line of instead(dir)) log(line);
    return undefined;
  }
  log(`Model for this machine: ${pick.why}.`);
  if (!opts.yes) {
    if (!opts.interactive) {
      log(
        `Not downloading it without a terminal to ask on: run \`clawbridge serve --yes\` to download ${entry.id} ${entry.quant} (${size}) into ${dir} and serve it.`,
      );
      if (opts.instead !== false) for (const line of instead(dir)) log(line);
      return undefined;
    }
    const answer = (
      await (opts.ask ?? askOnTerminal)(
        `Download ${entry.id} ${entry.quant} (${size}) for this machine's ${memory.label}? [Y/n] `,
      )
    )
      .trim()
      .toLowerCase();
    if (answer !== "" && answer !== "y" && answer !== "yes") {
      log("Not downloading.");
      if (opts.instead !== false) for (const line of instead(dir)) log(line);
      return undefined;
    }
  }
  const dest = join(dir, entry.file);
  if (existsSync(dest)) return dest;
  const url = entryUrl(entry, env);
  log(`Downloading ${entry.id} ${entry.quant} (${size}) from ${url}`);
  log(`  into ${dir}`);
  try {
    const got = await pull(url, {
      dir,
      name: entry.file,
      ...(entry.sha256 ? { sha256: entry.sha256 } : {}),
      onProgress: progressPrinter(opts.progress ?? process.stderr),
      onNote: (line) => log(`  ${line}`),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    log(
      `${got.path}: ${formatBytes(got.bytes)}, sha256 ${got.sha256} ${
        got.checkedAgainst === "option"
          ? "(matches the catalogue's)"
          : got.checkedAgainst === "server"
            ? "(matches the server's; the catalogue states none)"
            : "(neither the catalogue nor the server states a checksum: not checked)"
      }`,
    );
    return got.path;
  } catch (e) {
    if ((e as Error)?.name === "AbortError") {
      log("Download stopped; run the same command again to resume it.");
      return undefined;
    }
    log(`The download failed: ${e instanceof PullError ? e.message : (e as Error).message}`);
    if (opts.instead !== false) for (const line of instead(dir)) log(line);
    return undefined;
  }
}
