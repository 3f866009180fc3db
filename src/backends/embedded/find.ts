/**
 * Finding GGUF models on disk: clawbridge's own models folder, paths from the config, and the
 * models Ollama has pulled (its manifests name the GGUF blob of each model), so a machine with
 * Ollama's models but no running Ollama can serve them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join, resolve } from "node:path";

export interface FoundModel {
  /** The name clients use: the file's name without `.gguf`, or Ollama's `name:tag`. */
  name: string;
  path: string;
  from: "models-folder" | "config" | "ollama";
  sizeBytes: number;
}

export interface FindOptions {
  /** clawbridge's models folder (default $CLAWBRIDGE_MODELS or ~/.clawbridge/models). */
  modelsDir?: string;
  /** Files or folders named in the config. */
  paths?: string[];
  /** Ollama's models folder (default $OLLAMA_MODELS or ~/.ollama/models); false: not searched. */
  ollamaDir?: string | false;
}

const OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model";

export function expandHome(p: string): string {
  return p === "~" ? homedir() : p.startsWith("~/") ? join(homedir(), p.slice(2)) : p;
}

/** clawbridge's own models folder: `$CLAWBRIDGE_MODELS`, else `~/.clawbridge/models`. */
export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(expandHome(env.CLAWBRIDGE_MODELS || join(homedir(), ".clawbridge", "models")));
}

/** Ollama's models folder: `$OLLAMA_MODELS`, else `~/.ollama/models`. */
function defaultOllamaDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(expandHome(env.OLLAMA_MODELS || join(homedir(), ".ollama", "models")));
}

/** Every model found, the first of each name kept (config paths, then the models folder, then Ollama's). */
export function findModels(opts: FindOptions = {}, env: NodeJS.ProcessEnv = process.env): FoundModel[] {
  const out: FoundModel[] = [];
  const names = new Set<string>();
  const paths = new Set<string>();
  const add = (m: FoundModel) => {
    if (names.has(m.name) || (m.from !== "ollama" && paths.has(m.path))) return;
    names.add(m.name);
    paths.add(m.path);
    out.push(m);
  };
  for (const p of opts.paths ?? []) {
    const full = resolve(expandHome(p));
    if (isDir(full)) for (const m of ggufFiles(full, "config")) add(m);
    else if (existsSync(full))
      add({ name: nameOf(full), path: full, from: "config", sizeBytes: sizeOf(full) });
  }
  for (const m of ggufFiles(resolve(expandHome(opts.modelsDir ?? defaultModelsDir(env))), "models-folder"))
    add(m);
  if (opts.ollamaDir !== false) for (const m of ollamaModels(opts.ollamaDir ?? defaultOllamaDir(env))) add(m);
  return out;
}

function nameOf(file: string): string {
  return basename(file).replace(/\.gguf$/i, "");
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function sizeOf(p: string): number {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
}

/** `*.gguf` files in a folder and its sub-folders (two levels), by name. */
function ggufFiles(dir: string, from: FoundModel["from"], depth = 0): FoundModel[] {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: FoundModel[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(dir, e.name);
    if (e.isDirectory() && depth < 2) out.push(...ggufFiles(full, from, depth + 1));
    else if ((e.isFile() || e.isSymbolicLink()) && /\.gguf$/i.test(e.name))
      out.push({ name: nameOf(full), path: full, from, sizeBytes: sizeOf(full) });
  }
  return out;
}

/**
 * The models Ollama has pulled: `manifests/<registry>/<namespace>/<model>/<tag>` JSON files whose
 * model layer (`application/vnd.ollama.image.model`) names a blob `sha256:<hex>`, stored as
 * `blobs/sha256-<hex>`. Named as Ollama names them: `qwen2.5:7b`, `user/model:tag`, and
 * `host/namespace/model:tag` outside Ollama's own registry.
 */
export function ollamaModels(dir: string): FoundModel[] {
  const root = resolve(expandHome(dir));
  const manifests = join(root, "manifests");
  const out: FoundModel[] = [];
  for (const registry of subdirs(manifests))
    for (const namespace of subdirs(join(manifests, registry)))
      for (const model of subdirs(join(manifests, registry, namespace))) {
        const folder = join(manifests, registry, namespace, model);
        let tags: string[];
        try {
          tags = readdirSync(folder).sort();
        } catch {
          continue;
        }
        for (const tag of tags) {
          const blob = modelBlob(join(folder, tag), root);
          if (!blob) continue;
          const prefix =
            registry === "registry.ollama.ai"
              ? namespace === "library"
                ? ""
                : `${namespace}/`
              : `${registry}/${namespace}/`;
          out.push({ name: `${prefix}${model}:${tag}`, path: blob, from: "ollama", sizeBytes: sizeOf(blob) });
        }
      }
  return out;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

function modelBlob(manifest: string, root: string): string | undefined {
  try {
    const j = JSON.parse(readFileSync(manifest, "utf8")) as {
      layers?: Array<{ mediaType?: string; digest?: string }>;
    };
    const layer = j.layers?.find((l) => l.mediaType === OLLAMA_MODEL_LAYER);
    const m = /^sha256[:-]([0-9a-f]{64})$/.exec(layer?.digest ?? "");
    if (!m) return undefined;
    const blob = join(root, "blobs", `sha256-${m[1]}`);
    return existsSync(blob) ? blob : undefined;
  } catch {
    return undefined;
  }
}
