import type { DiscoveredModel } from "../ir/contract.js";
import type { BackendConfig } from "../config/types.js";
import { fittingContext, OPENCLAW_MIN_CONTEXT } from "../context/window.js";

/** A model a server has, as `init` shows it. */
export interface Candidate {
  backend: BackendConfig;
  model: DiscoveredModel;
}

export interface FitRow {
  backend: string;
  model: string;
  sizeGiB?: number;
  trained?: number;
  served?: number;
  tools?: boolean;
  /** The largest standard window that fits the memory budget (weights + KV cache); undefined when unknown. */
  fits?: number;
  /** Whether OpenClaw can use it: ≥ 16k tokens of context. */
  openclawOk?: boolean;
  note: string;
}

export interface ProposedAlias {
  alias: string;
  backend: string;
  model: string;
  contextWindow?: number;
  why: string;
}

const WINDOWS = [4096, 8192, 16384, 32768, 65536, 131072];
const CLAUDE_TIERS = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"] as const;

/** The largest standard window whose KV cache fits beside the weights in `memory` (and the model was trained for). */
export function largestFit(m: DiscoveredModel, memory: number): number | undefined {
  if (!m.sizeBytes || !m.kvBytesPerToken) return undefined;
  const most = Math.min(fittingContext(memory, m.sizeBytes, m.kvBytesPerToken), m.trainedContext ?? Infinity);
  return [...WINDOWS].reverse().find((w) => w <= most) ?? 0;
}

export function fitTable(cands: Candidate[], memory: number | undefined): FitRow[] {
  return cands.map(({ backend, model: m }) => {
    const row: FitRow = { backend: backend.name, model: m.name, note: "" };
    if (m.sizeBytes) row.sizeGiB = Math.round((m.sizeBytes / 1024 ** 3) * 10) / 10;
    if (m.trainedContext) row.trained = m.trainedContext;
    if (m.contextWindow && !m.windowPerRequest) row.served = m.contextWindow;
    if (m.tools !== undefined) row.tools = m.tools;
    const notes: string[] = [];
    if (m.windowPerRequest) {
      // Ollama: the window is ours to choose, within memory
      const fit = memory ? largestFit(m, memory) : undefined;
      if (fit !== undefined) row.fits = fit;
      if (fit === 0) notes.push("does not fit in memory even at 4k");
      else if (fit !== undefined) notes.push(`fits with a ${fit / 1024}k window`);
      else notes.push(memory ? "size unknown" : "memory unknown: window from the server");
      row.openclawOk = fit === undefined ? undefined : fit >= OPENCLAW_MIN_CONTEXT;
    } else if (row.served) {
      row.openclawOk = row.served >= OPENCLAW_MIN_CONTEXT;
      notes.push(`served with a ${Math.round(row.served / 1024)}k window (set when the server started)`);
    }
    if (row.openclawOk === false) notes.push("too small for OpenClaw (needs 16k)");
    if (m.tools === false) notes.push("no native tools: emulated");
    row.note = notes.join("; ");
    return row;
  });
}

/**
 * Aliases for Claude's tiers: the smallest usable model for haiku, the largest for opus, the one
 * in the middle for sonnet. Usable: fits with at least OpenClaw's 16k where that is known; models
 * with native tools are preferred.
 */
export function proposeAliases(cands: Candidate[], rows: FitRow[]): ProposedAlias[] {
  const usable = cands
    .map((c, i) => ({ c, row: rows[i]! }))
    .filter(({ row }) => row.openclawOk !== false && row.fits !== 0);
  if (!usable.length) return [];
  const withTools = usable.filter(({ c }) => c.model.tools !== false);
  const pool = (withTools.length ? withTools : usable).sort(
    (a, b) => (a.c.model.sizeBytes ?? 0) - (b.c.model.sizeBytes ?? 0),
  );
  const n = pool.length;
  // with two models, sonnet gets the larger one: it is the tier agents use most
  const pick = [pool[0]!, n >= 3 ? pool[Math.floor((n - 1) / 2)]! : pool[n - 1]!, pool[n - 1]!];
  return CLAUDE_TIERS.map((alias, i) => {
    const { c, row } = pick[i]!;
    const p: ProposedAlias = {
      alias,
      backend: c.backend.name,
      model: c.model.name,
      why: `${i === 0 ? "smallest" : i === 2 ? "largest" : "middle"} of ${pool.length} usable model(s)`,
    };
    if (c.model.windowPerRequest) {
      const w = row.fits ?? Math.min(c.model.trainedContext ?? 32768, 32768);
      p.contextWindow = w;
      p.why += row.fits ? `; ${w / 1024}k window fits the memory` : `; ${w / 1024}k window (memory unknown)`;
    }
    return p;
  });
}

/**
 * When nothing fits (a small --vram, or only small-window models): the smallest model for every
 * tier, with OpenClaw's minimum window where the window is chosen per request, so a config is
 * still written (with the caller's warning).
 */
export function proposeAnyway(cands: Candidate[], rows: FitRow[]): ProposedAlias[] {
  if (!cands.length) return [];
  const i = cands.reduce(
    (best, c, j) => ((c.model.sizeBytes ?? 0) < (cands[best]!.model.sizeBytes ?? 0) ? j : best),
    0,
  );
  const c = cands[i]!;
  return CLAUDE_TIERS.map((alias) => ({
    alias,
    backend: c.backend.name,
    model: c.model.name,
    why: `nothing fits: the smallest of ${cands.length} model(s)${rows[i]?.note ? ` (${rows[i]!.note})` : ""}`,
    ...(c.model.windowPerRequest ? { contextWindow: OPENCLAW_MIN_CONTEXT } : {}),
  }));
}
