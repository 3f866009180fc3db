/**
 * The short built-in catalogue of well-known GGUF files for agents, offered when a machine has no
 * model server and no model on disk (src/setup/offer.ts), and the pick by memory.
 *
 * Where the values come from (checked when the catalogue was written; see docs/embedded.md):
 * - `sha256` and `sizeBytes`: the Hugging Face LFS object of the file at the pinned revision, as
 *   recorded by at least two independent public projects that pin and verify these exact files
 *   (LocalAI's model gallery, gallery/index.yaml, for every SHA-256; download catalogues and
 *   manifests that state the byte length next to the same SHA-256 for every size). Nothing here was
 *   downloaded to compute them; `pull` checks every byte against `sha256` before a file is kept,
 *   so a wrong value can only refuse a download, never accept a wrong one.
 * - `kvBytesPerToken`: 2 (K and V) × layers × KV heads × head width × 2 bytes (f16 cache), from
 *   each model's published architecture (config.json).
 * - `trainedContext`: the context the GGUF declares (Qwen2.5-Coder's GGUF: 32,768; Llama 3.1: 131,072).
 * An entry without a verified `sha256` would be pulled against the server's `x-linked-etag`.
 */
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { z } from "zod";
import { resolveSource } from "../backends/embedded/pull.js";
import { fittingContext } from "../context/window.js";
import { detectGpuMemory, type Probe } from "./gpu.js";

export interface CatalogueEntry {
  /** What the user types (`clawbridge pull <id>`) and reads. */
  id: string;
  quant: string;
  /** The file's name in the models folder: clients name the model by it (without `.gguf`). */
  file: string;
  /** `hf:owner/repo@revision/file.gguf` (Hugging Face, $HF_ENDPOINT) or an http(s) URL. */
  source: string;
  sizeBytes: number;
  /** The file's SHA-256; absent where it could not be verified (then the server's is used). */
  sha256?: string;
  trainedContext: number;
  kvBytesPerToken: number;
  /** False: listed for `clawbridge pull <id>`, never offered by the pick. */
  offered?: boolean;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** The window the pick leaves room for (the embedded engine serves min(trained, 32k)). */
export const PICK_WINDOW = 32768;

export const CATALOGUE: readonly CatalogueEntry[] = [
  {
    id: "qwen2.5-coder-1.5b-instruct",
    quant: "Q4_K_M",
    file: "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
    source:
      "hf:bartowski/Qwen2.5-Coder-1.5B-Instruct-GGUF@1af47f78b1f9b0c242fabe43f7a365d5a67f3207/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
    sizeBytes: 986_048_800,
    sha256: "f530705d447660a4336c329981af164b471b60b974b1d808d57e8ec9fe23b239",
    trainedContext: 32768,
    kvBytesPerToken: 2 * 28 * 2 * 128 * 2,
  },
  {
    id: "qwen2.5-coder-3b-instruct",
    quant: "Q4_K_M",
    file: "Qwen2.5-Coder-3B-Instruct-Q4_K_M.gguf",
    source:
      "hf:bartowski/Qwen2.5-Coder-3B-Instruct-GGUF@7c137640ef0332dfedb229f2504c58d83ed4307a/Qwen2.5-Coder-3B-Instruct-Q4_K_M.gguf",
    sizeBytes: 1_929_903_360,
    sha256: "3da3afe6cf5c674ac195803ea0dd6fee7e1c228c2105c1ce8c66890d1d4ab460",
    trainedContext: 32768,
    kvBytesPerToken: 2 * 36 * 2 * 128 * 2,
  },
  {
    id: "qwen2.5-coder-7b-instruct",
    quant: "Q4_K_M",
    file: "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf",
    source:
      "hf:bartowski/Qwen2.5-Coder-7B-Instruct-GGUF@1f629da0c8bed16b9e50cee91c70693650e66c35/Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf",
    sizeBytes: 4_683_074_336,
    sha256: "1664fccab734674a50763490a8c6931b70e3f2f8ec10031b54806d30e5f956b6",
    trainedContext: 32768,
    kvBytesPerToken: 2 * 28 * 4 * 128 * 2,
  },
  {
    // not offered: the 7B coder above needs less memory (its 32k KV cache is 1.8 GiB, this one's
    // 4 GiB) and is the stronger agent; here for `clawbridge pull llama-3.1-8b-instruct`
    id: "llama-3.1-8b-instruct",
    quant: "Q4_K_M",
    file: "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
    source:
      "hf:bartowski/Meta-Llama-3.1-8B-Instruct-GGUF@bf5b95e96dac0462e2a09145ec66cae9a3f12067/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
    sizeBytes: 4_920_739_232,
    sha256: "7b064f5842bf9532c91456deda288a1b672397a54fa729aa665952863033557c",
    trainedContext: 131072,
    kvBytesPerToken: 2 * 32 * 8 * 128 * 2,
    offered: false,
  },
  {
    id: "qwen2.5-coder-14b-instruct",
    quant: "Q4_K_M",
    file: "Qwen2.5-Coder-14B-Instruct-Q4_K_M.gguf",
    source:
      "hf:bartowski/Qwen2.5-Coder-14B-Instruct-GGUF@5b379ec4bf71bafecb5f9081ad28b19939128988/Qwen2.5-Coder-14B-Instruct-Q4_K_M.gguf",
    sizeBytes: 8_988_111_072,
    sha256: "2946d28c9e1bb2bcae6d42e8678863a31775df6f740315c7d7e6d6b6411f5937",
    trainedContext: 32768,
    kvBytesPerToken: 2 * 48 * 8 * 128 * 2,
  },
  {
    // no pinned revision was found recorded beside this checksum: `main`, checked by the SHA-256
    id: "qwen2.5-coder-32b-instruct",
    quant: "Q4_K_M",
    file: "Qwen2.5-Coder-32B-Instruct-Q4_K_M.gguf",
    source: "hf:bartowski/Qwen2.5-Coder-32B-Instruct-GGUF/Qwen2.5-Coder-32B-Instruct-Q4_K_M.gguf",
    sizeBytes: 19_851_336_672,
    sha256: "8e2fd78ff55e7cdf577fda257bac2776feb7d73d922613caf35468073807e815",
    trainedContext: 32768,
    kvBytesPerToken: 2 * 64 * 8 * 128 * 2,
  },
];

const entrySchema = z.object({
  id: z.string().min(1),
  quant: z.string().min(1),
  file: z.string().regex(/^[^/\\]+\.gguf$/i, "a file name ending in .gguf"),
  source: z.string().min(1),
  sizeBytes: z.number().int().positive(),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/i, "64 hex digits")
    .optional(),
  trainedContext: z.number().int().positive(),
  kvBytesPerToken: z.number().positive(),
  offered: z.boolean().optional(),
});

export class CatalogueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CatalogueError";
  }
}

/**
 * The catalogue in use: the built-in one, or the JSON array of entries in $CLAWBRIDGE_CATALOGUE
 * (a mirror, a test). `hf:` sources resolve against $CLAWBRIDGE_CATALOGUE_BASE, else $HF_ENDPOINT.
 */
export function loadCatalogue(env: NodeJS.ProcessEnv = process.env): CatalogueEntry[] {
  const file = env.CLAWBRIDGE_CATALOGUE;
  if (!file) return [...CATALOGUE];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new CatalogueError(`cannot read the catalogue ${file}: ${(e as Error).message}`);
  }
  const parsed = z.array(entrySchema).min(1).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CatalogueError(
      `the catalogue ${file} is not a list of entries: ${issue.path.join(".") || "(top)"}: ${issue.message}`,
    );
  }
  return parsed.data as CatalogueEntry[];
}

/** Where an entry downloads from. */
export function entryUrl(e: CatalogueEntry, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.CLAWBRIDGE_CATALOGUE_BASE || env.HF_ENDPOINT;
  return resolveSource(e.source, base ? { ...env, HF_ENDPOINT: base } : env);
}

/** The window an entry is served with: its trained context, at most 32k. */
function windowOf(e: CatalogueEntry): number {
  return Math.min(e.trainedContext, PICK_WINDOW);
}

/** The memory an entry needs: weights, the KV cache of its window, compute buffers (as `fittingContext` counts them). */
export function memoryNeed(e: CatalogueEntry): number {
  return e.sizeBytes + e.kvBytesPerToken * windowOf(e) + Math.max(512 * MiB, 0.1 * e.sizeBytes);
}

/** The memory models may use on this machine, and how to say it. */
export interface MachineMemory {
  /** Bytes a model may use. */
  bytes: number;
  /** "12 GiB GPU", "24 GiB of unified memory", "16 GiB of RAM": for the offer's question. */
  label: string;
  /** Where it was read. */
  source: string;
  /** No GPU: the CPU runs the model. */
  cpu: boolean;
}

export function gib(n: number): string {
  const v = (n / GiB).toFixed(1);
  return `${v.endsWith(".0") ? v.slice(0, -2) : v} GiB`;
}

/**
 * What this machine has for a model: the largest GPU's memory (nvidia-smi, rocm-smi), Apple
 * silicon's unified memory (3/4 of RAM), else 3/4 of the system RAM for the CPU (the rest is the
 * system's and the agent's).
 */
export function readMemory(
  probe?: Probe,
  platform: NodeJS.Platform = process.platform,
  ram: number = totalmem(),
): MachineMemory {
  const gpu = detectGpuMemory(probe, platform);
  if (gpu) {
    const unified = gpu.source.startsWith("Apple");
    return {
      bytes: gpu.bytes,
      label: unified ? `${gib(gpu.bytes)} of unified memory` : `${gib(gpu.bytes)} GPU`,
      source: gpu.source,
      cpu: false,
    };
  }
  return {
    bytes: Math.floor(ram * 0.75),
    label: `${gib(ram)} of RAM`,
    source: `no GPU found: 3/4 of ${gib(ram)} RAM, run by the CPU`,
    cpu: true,
  };
}

export interface Pick {
  entry: CatalogueEntry;
  /** One line: why this one. */
  why: string;
}

/**
 * The largest offered entry whose weights and KV cache for its window (32k, or its trained
 * context when smaller) fit `memory`; undefined, with the reason, when none does.
 */
export function pickModel(
  memory: MachineMemory,
  entries: readonly CatalogueEntry[],
): Pick | { entry: undefined; why: string } {
  const offered = entries.filter((e) => e.offered !== false);
  const fits = offered
    .filter((e) => fittingContext(memory.bytes, e.sizeBytes, e.kvBytesPerToken) >= windowOf(e))
    .sort((a, b) => a.sizeBytes - b.sizeBytes);
  const entry = fits[fits.length - 1];
  if (!entry) {
    const smallest = [...offered].sort((a, b) => memoryNeed(a) - memoryNeed(b))[0];
    return {
      entry: undefined,
      why: smallest
        ? `no catalogue model fits ${gib(memory.bytes)} (${memory.source}): the smallest, ${smallest.id}, needs ${gib(memoryNeed(smallest))} with a ${windowOf(smallest) / 1024}k window`
        : "the catalogue offers no model",
    };
  }
  const kv = entry.kvBytesPerToken * windowOf(entry);
  return {
    entry,
    why: `${entry.id} ${entry.quant}: the largest catalogue model that fits ${gib(memory.bytes)} (${memory.source}) — ${gib(entry.sizeBytes)} of weights + ${gib(kv)} of KV cache for a ${windowOf(entry) / 1024}k window + buffers = ${gib(memoryNeed(entry))}`,
  };
}
