import type { Command } from "commander";
import { defaultModelsDir, expandHome } from "../backends/embedded/find.js";
import { formatBytes, PullError, progressPrinter, pull, resolveSource } from "../backends/embedded/pull.js";
import { CatalogueError, entryUrl, loadCatalogue } from "../setup/catalogue.js";

export interface PullCliOptions {
  dir?: string;
  name?: string;
  sha256?: string;
}

export function registerPull(program: Command): void {
  program
    .command("pull")
    .description(
      "download a GGUF model into clawbridge's models folder (resumes, checks the SHA-256 where the source gives one); `serve` runs it in-process",
    )
    .argument(
      "<source>",
      "an http(s) URL of a .gguf file, hf:owner/repo/file.gguf, or a catalogue id (docs/embedded.md)",
    )
    .option("--dir <folder>", "where to put it (default $CLAWBRIDGE_MODELS or ~/.clawbridge/models)")
    .option("--name <file>", "the file name (default: the URL's)")
    .option("--sha256 <hex>", "the expected SHA-256 (otherwise the server's, when it states one)")
    .action(async (source: string, opts: PullCliOptions) => {
      process.exitCode = await pullCommand(source, opts);
    });
}

async function pullCommand(source: string, opts: PullCliOptions): Promise<number> {
  const err = process.stderr;
  if (opts.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(opts.sha256)) {
    err.write("clawbridge pull: --sha256 takes 64 hex digits\n");
    return 2;
  }
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  try {
    // a catalogue id: its URL, file name and checksum
    const entry = /^[\w.-]+$/.test(source) ? loadCatalogue().find((e) => e.id === source) : undefined;
    if (entry) {
      opts = { name: entry.file, ...(entry.sha256 ? { sha256: entry.sha256 } : {}), ...opts };
    }
    const url = entry ? entryUrl(entry) : resolveSource(source);
    const dir = opts.dir ? expandHome(opts.dir) : defaultModelsDir();
    err.write(`pulling ${url}\n  into ${dir}\n`);
    const got = await pull(url, {
      dir,
      ...(opts.name ? { name: opts.name } : {}),
      ...(opts.sha256 ? { sha256: opts.sha256 } : {}),
      onProgress: progressPrinter(err),
      onNote: (line) => err.write(`  ${line}\n`),
      signal: abort.signal,
    });
    err.write(
      `${got.path}: ${formatBytes(got.bytes)}, sha256 ${got.sha256} ${
        got.checkedAgainst === "option"
          ? entry && opts.sha256 === entry.sha256
            ? "(matches the catalogue's)"
            : "(matches --sha256)"
          : got.checkedAgainst === "server"
            ? "(matches the server's)"
            : "(the source states no checksum: not checked)"
      }\n`,
    );
    process.stdout.write(`${got.path}\n`);
    return 0;
  } catch (e) {
    if (abort.signal.aborted) {
      err.write("\nclawbridge pull: stopped; run it again to resume\n");
      return 130;
    }
    err.write(
      `\nclawbridge pull: ${e instanceof PullError || e instanceof CatalogueError ? e.message : (e as Error).message}\n`,
    );
    return 1;
  } finally {
    process.off("SIGINT", stop);
  }
}
