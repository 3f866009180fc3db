import type { DiscoveredModel } from "../ir/contract.js";
import type { ContextInfo } from "../ir/contract.js";

/**
 * num_ctx when nothing better is known: real agent prompts fit it (OpenClaw's first request is
 * ~17.8k tokens, Claude Code's ~19.8k with all its tools; OpenClaw warns below 32k), and it is
 * Ollama's own default on 24–48 GiB cards.
 */
const DEFAULT_NUM_CTX = 32768;
/** OpenClaw's practical minimum: below it its first turn overflows. */
export const OPENCLAW_MIN_CONTEXT = 16384;
/** Below this a window is of no use to an agent; memory budgets never choose less. */
const MIN_WINDOW = 2048;
const MiB = 1024 ** 2;

export interface WindowInput {
  /** context_window from config (LiteLLM: model_info.max_input_tokens). */
  configuredWindow?: number;
  /** num_ctx from config (Ollama). */
  configuredNumCtx?: number;
  /** The memory the user says the model may use (vram_gb). */
  memoryBytes?: number;
  /** What the server said of the model, when it answered. */
  discovered?: DiscoveredModel;
  /** The backend takes the window per request (Ollama's num_ctx) rather than fixing it at start. */
  perRequest: boolean;
}

export interface WindowChoice {
  /** The window requests are kept inside; undefined when nothing says. */
  window?: number;
  /** Ollama: the num_ctx to send with every request. */
  numCtx?: number;
  info: ContextInfo;
}

/**
 * The window a model is served with. Configured beats reported, with a warning when they
 * disagree. For Ollama, where the client picks the window, num_ctx is chosen: configured, else
 * the largest that fits the memory budget, else the Modelfile's, else 32k — never Ollama's own
 * silent default.
 */
export function chooseWindow(i: WindowInput): WindowChoice {
  const d = i.discovered;
  const warnings: string[] = [];
  const base = {
    ...(d?.contextWindow !== undefined ? { served: d.contextWindow } : {}),
    ...(d?.contextFrom !== undefined ? { servedFrom: d.contextFrom } : {}),
    ...(d?.trainedContext !== undefined ? { trained: d.trainedContext } : {}),
  };
  const configured = i.configuredWindow ?? (i.perRequest ? i.configuredNumCtx : undefined);
  if (configured !== undefined) Object.assign(base, { configured });

  if (!i.perRequest) {
    const served = d?.contextWindow;
    if (i.configuredWindow !== undefined) {
      if (served !== undefined && served !== i.configuredWindow) {
        warnings.push(
          `context_window ${i.configuredWindow} from config, but the server reports ${served} (${d?.contextFrom ?? "discovery"})` +
            (i.configuredWindow > served
              ? ": prompts between the two will be refused or cut by the server"
              : ": clients are told less than the server could take"),
        );
      }
      return {
        window: i.configuredWindow,
        info: { ...base, source: "config", why: "context_window from config", warnings },
      };
    }
    if (served !== undefined) {
      return {
        window: served,
        info: {
          ...base,
          source: "server",
          why: `reported by the server (${d?.contextFrom ?? "discovery"})`,
          warnings,
        },
      };
    }
    if (d?.contextNote) warnings.push(d.contextNote);
    return {
      info: {
        ...base,
        source: "unknown",
        why: d?.contextNote ?? "the server does not say; set context_window to keep requests inside it",
        warnings,
      },
    };
  }

  // Ollama: the window is whatever num_ctx each request carries.
  const trained = d?.trainedContext;
  const size = d?.sizeBytes;
  const kv = d?.kvBytesPerToken;
  const fit =
    i.memoryBytes !== undefined && size !== undefined && kv !== undefined
      ? fittingContext(i.memoryBytes, size, kv)
      : undefined;
  const budget =
    fit !== undefined
      ? `model ${gib(size!)} + KV cache ${kib(kv!)}/token in the ${gib(i.memoryBytes!)} stated (vram_gb)`
      : "";
  let n: number;
  let source: ContextInfo["source"];
  let why: string;
  if (i.configuredNumCtx !== undefined || i.configuredWindow !== undefined) {
    n = (i.configuredNumCtx ?? i.configuredWindow)!;
    source = "config";
    why = i.configuredNumCtx !== undefined ? "num_ctx from config" : "context_window from config";
    if (fit !== undefined && n > fit) {
      const usable = Math.max(fit, MIN_WINDOW);
      warnings.push(`${n} tokens do not fit: ${budget}; num_ctx ${usable} is sent instead`);
      why += `, lowered to ${usable} to fit the memory stated`;
      n = usable;
    }
  } else if (fit !== undefined) {
    n = Math.max(MIN_WINDOW, trained !== undefined ? Math.min(fit, trained) : fit);
    source = "memory";
    why = `the largest that fits: ${budget}`;
    if (trained !== undefined && fit > trained) why += `; capped at the ${trained} it was trained for`;
    if (fit < MIN_WINDOW)
      warnings.push(`the model hardly fits: ${budget} leaves room for ${fit} tokens; ${MIN_WINDOW} sent`);
  } else if (d?.numCtxParameter !== undefined) {
    n = d.numCtxParameter;
    source = "model";
    why = "the model's num_ctx parameter (Modelfile)";
  } else {
    n = trained !== undefined ? Math.min(trained, DEFAULT_NUM_CTX) : DEFAULT_NUM_CTX;
    source = "default";
    why =
      n === DEFAULT_NUM_CTX
        ? `no memory budget stated (vram_gb): ${DEFAULT_NUM_CTX}, enough for agent clients' prompts`
        : `the ${n} it was trained for (no memory budget stated)`;
    if (kv !== undefined) why += `; its KV cache takes ${gib(n * kv)}`;
  }
  if (trained !== undefined && n > trained) {
    warnings.push(
      `num_ctx ${n} is more than the ${trained} tokens the model was trained for: Ollama caps it there and cuts longer prompts silently`,
    );
  }
  return { window: n, numCtx: n, info: { ...base, source, why, warnings } };
}

/**
 * What to raise so a prompt fits a model's window, in words: the setting the window came from.
 */
export function windowAdvice(
  p: { alias: string; numCtx?: number },
  info: ContextInfo | undefined,
  window: number,
): string {
  const at = `'${p.alias}' is served with a ${window}-token window`;
  const perRequest = p.numCtx !== undefined;
  switch (info?.source) {
    case "memory":
      return `${at} (the most that fits the memory stated): raise vram_gb on its backend, or set num_ctx on the model in clawbridge's config`;
    case "config":
      return `${at} (from clawbridge's config): raise ${perRequest ? "num_ctx" : "context_window"} on the model`;
    case "server":
    case "truncation":
      return `${at} (what the server serves): start the server with a larger context, then restart clawbridge`;
    default:
      return perRequest
        ? `${at}: set num_ctx (or vram_gb on its backend) in clawbridge's config`
        : `${at}: serve it with a larger context and set context_window in clawbridge's config`;
  }
}

/**
 * The most tokens of context whose KV cache fits beside the weights in `memoryBytes`, in steps
 * of 1024, leaving room for the compute buffers.
 */
export function fittingContext(memoryBytes: number, sizeBytes: number, kvBytesPerToken: number): number {
  const overhead = Math.max(512 * MiB, 0.1 * sizeBytes);
  const free = memoryBytes - sizeBytes - overhead;
  if (free <= 0 || kvBytesPerToken <= 0) return 0;
  return Math.floor(free / kvBytesPerToken / 1024) * 1024;
}

function gib(n: number): string {
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

function kib(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}
