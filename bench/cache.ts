// The prompt-cache benchmark: how many prompt tokens a llama.cpp server reads per agent turn through
// clawbridge, against the ideal (only the tokens the turn added).
//
//   node --import tsx bench/cache.ts [--runs 3] [--turns 20] [--rate 1000] [--clawbridge dist/cli/main.js]
//   npm run bench -- --only cache                (the same, from bench/run.ts)
//
// The upstream is the llama.cpp fake of the unit tests (test/fakes/openai-compat.ts, flavor llamacpp),
// which keeps a KV cache per slot as llama-server does (tools/server/server-context.cpp): each slot
// holds the tokens of the last prompt it read; a request reuses the common token prefix with its slot's
// prompt (`cache_prompt`, default true) and reads the rest (the last token always); the slot is `id_slot`
// when the request names one, else the idle slot whose prompt shares the largest fraction of the new
// one above --slot-prompt-similarity (0.1: common/common.h `slot_prompt_similarity = 0.1f` since b6470;
// 0.5 before), else the least recently used; a slot is overwritten by the next prompt it reads. Prompts
// are tokenised by the fakes' deterministic tokenizer (test/fakes/tokenizer.ts).
//
// clawbridge (its own process) serves one backend per scenario and setting: `cache_affinity` on (the
// default: `cache_prompt` + `id_slot` from its slot chooser, src/routing/conversations.ts) and off (the
// server picks the slot itself), side by side in the same run. Each scenario replays 20-turn agent
// sessions (bench/fixtures.ts: OpenClaw in the OpenAI dialect; Claude Code in the Anthropic dialect with
// its volatile billing block and a late system reminder every turn), one or several conversations
// interleaved in a seeded random order on 1, 2 or 4 slots, with background requests (titles, topic
// checks: no tools, short) after about one turn in four. Requests go one at a time.
//
// Figures per scenario: prompt tokens the server read (evaluated) over the agent turns, against the
// ideal (what a server with a slot for every prompt, none ever evicted, would read: the tokens past the
// longest prefix any earlier prompt of the scenario began with, so only the new ones), and the
// simulated time to first token at --rate tokens/s of prompt reading (computed, not slept). Background
// requests are counted apart. Several runs (--runs) use different
// interleavings; the figures give the median and the spread (min–max).
// Results: bench/results/cache.json and cache.md.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { promptIds, startOpenAICompatFake } from "../test/fakes/openai-compat.js";
import type { FakeServer } from "../test/fakes/script.js";
import { claudeCodeBackground, claudeCodeSession, openclawBackground, openclawSession } from "./fixtures.js";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, "..");
const HOST = "127.0.0.1";

type Session = "openclaw" | "claude-code";

export interface CacheScenario {
  id: string;
  session: Session;
  conversations: number;
  slots: number;
  background: boolean;
}

const SHAPES: Array<Omit<CacheScenario, "id" | "session">> = [
  { conversations: 1, slots: 1, background: false },
  { conversations: 1, slots: 2, background: true },
  { conversations: 2, slots: 1, background: true },
  { conversations: 2, slots: 2, background: false },
  { conversations: 2, slots: 2, background: true },
  { conversations: 4, slots: 2, background: true },
  { conversations: 4, slots: 4, background: true },
];

export const CACHE_SCENARIOS: CacheScenario[] = (["openclaw", "claude-code"] as const).flatMap((session) =>
  SHAPES.map((s) => ({
    ...s,
    session,
    id: `${session}-${s.conversations}c-${s.slots}s${s.background ? "-bg" : ""}`,
  })),
);

export interface CacheBenchOptions {
  runs: number;
  turns: number;
  /** Prompt tokens read per second, for the simulated time to first token. */
  rate: number;
  clawbridgeCli: string;
  resultsDir?: string;
  only?: (s: CacheScenario) => boolean;
}

/** One request as the server saw it. */
interface Served {
  conv: number; // -1: background
  turn: number;
  prompt: number;
  evaluated: number;
  /** what a server that kept every prompt would read: past the longest prefix of any earlier prompt */
  ideal: number;
  /** what a server that kept this conversation's prompts would read: past its own previous prompt */
  own: number;
  slot: number;
}

interface Cell {
  scenario: CacheScenario;
  affinity: boolean;
  /** per run */
  runs: Array<{
    served: Served[];
    agentRatio: number;
    sharedRatio: number;
    agentEvaluated: number;
    agentIdeal: number;
  }>;
}

export interface CacheBenchResult {
  rate: number;
  turns: number;
  runs: number;
  cells: Array<{
    id: string;
    affinity: boolean;
    scenario: CacheScenario;
    /** tokens read over the agent turns / each conversation's own new tokens: median, min, max of the runs */
    ratio: { median: number; min: number; max: number };
    /** the same against the tokens no earlier prompt of the scenario began with (median) */
    sharedRatio: number;
    agentEvaluated: number;
    agentIdeal: number;
    ttftS: { mean: number; ideal: number; max: number };
    background: { evaluated: number; ideal: number };
    /** the first run's agent turns: [conversation, tokens evaluated, its own new tokens], in the order served */
    perTurn: Array<[number, number, number]>;
  }>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once("error", rej);
    srv.listen(0, HOST, () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => res(addr.port));
    });
  });
}

/** mulberry32, for the interleaving. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function commonPrefix(a: number[], b: number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function startClawbridge(
  cli: string,
  config: string,
  port: number,
): Promise<{ child: ChildProcess; tail: () => string }> {
  const args = cli.endsWith(".ts") ? ["--import", "tsx", cli] : [cli];
  const child = spawn(
    process.execPath,
    [...args, "serve", "--config", config, "--port", String(port), "--log-level", "warn"],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let tail = "";
  const keep = (d: Buffer) => {
    tail = (tail + d.toString("utf8")).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const r = await request(`http://${HOST}:${port}/health`, { headersTimeout: 1000, bodyTimeout: 1000 });
      await r.body.text();
      if (r.statusCode === 200) return { child, tail: () => tail };
    } catch {
      // not yet
    }
    await sleep(100);
  }
  child.kill("SIGTERM");
  throw new Error(`clawbridge did not start: ${tail}`);
}

/** The order of one scenario's requests: [conversation, turn] for agent turns, [-1, n, of] for background. */
function schedule(s: CacheScenario, turns: number, seed: number): Array<[number, number, number]> {
  const rand = prng(seed);
  const next = Array.from({ length: s.conversations }, () => 0);
  const out: Array<[number, number, number]> = [];
  let bg = 0;
  for (;;) {
    const open = next.flatMap((t, c) => (t < turns ? [c] : []));
    if (open.length === 0) return out;
    const c = open[Math.floor(rand() * open.length)]!;
    out.push([c, next[c]!++, 0]);
    if (s.background && rand() < 0.25) out.push([-1, bg++, c]);
  }
}

async function send(
  agent: Agent,
  base: string,
  session: Session,
  model: string,
  body: object,
): Promise<void> {
  const anthropic = session === "claude-code";
  const res = await request(`${base}${anthropic ? "/v1/messages" : "/v1/chat/completions"}`, {
    method: "POST",
    dispatcher: agent,
    headers: anthropic
      ? { "content-type": "application/json", "x-api-key": "k", "anthropic-version": "2023-06-01" }
      : { "content-type": "application/json", authorization: "Bearer k" },
    body: JSON.stringify({ ...body, model }),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${model}: ${res.statusCode} ${text.slice(0, 300)}`);
}

/** One run: a fresh server per cell, one clawbridge for all of them. */
async function oneRun(
  opts: CacheBenchOptions,
  scenarios: CacheScenario[],
  run: number,
  cells: Map<string, Cell>,
): Promise<void> {
  const tmp = mkdtempSync(join(os.tmpdir(), "clawbridge-cache-bench-"));
  const fakes: Array<{ fake: FakeServer; scenario: CacheScenario; affinity: boolean; name: string }> = [];
  let cb: { child: ChildProcess; tail: () => string } | undefined;
  const agent = new Agent({ connections: 4, keepAliveTimeout: 10_000 });
  try {
    const lines = ["backends:"];
    const models = ["models:"];
    for (const [i, scenario] of scenarios.entries())
      for (const affinity of [true, false]) {
        const fake = await startOpenAICompatFake({
          flavor: "llamacpp",
          slots: scenario.slots,
          contextLength: 131072,
          maxContextLength: 131072,
        });
        const name = `c${i}${affinity ? "on" : "off"}`;
        fakes.push({ fake, scenario, affinity, name });
        lines.push(
          `  ${name}: { kind: openai-compat, url: "${fake.url}/v1", flavor: llamacpp, cache_affinity: ${affinity} }`,
        );
        models.push(`  ${name}: { backend: ${name}, model: fake-model }`);
      }
    const port = await freePort();
    const config = join(tmp, "clawbridge.yaml");
    writeFileSync(config, [`server: { host: ${HOST}, port: ${port} }`, ...lines, ...models, ""].join("\n"));
    cb = await startClawbridge(opts.clawbridgeCli, config, port);
    const base = `http://${HOST}:${port}`;
    for (const f of fakes) {
      const s = f.scenario;
      const sessions = Array.from({ length: s.conversations }, (_, c) =>
        s.session === "openclaw" ? openclawSession(c, opts.turns) : claudeCodeSession(c, opts.turns),
      );
      const seenPrompts: number[][] = [];
      const lastOf = new Map<number, number[]>();
      const served: Served[] = [];
      // the same interleaving for affinity on and off within a run
      for (const [conv, turn, of] of schedule(s, opts.turns, 1000 + run * 17 + CACHE_SCENARIOS.indexOf(s))) {
        const body =
          conv >= 0
            ? sessions[conv]![turn]!
            : s.session === "openclaw"
              ? openclawBackground(of, turn)
              : claudeCodeBackground(of, turn);
        await send(agent, base, s.session, f.name, body);
        const rec = f.fake.requests.filter((r) => r.path === "/v1/chat/completions").at(-1);
        if (!rec?.prompt || !rec.cache) throw new Error(`${f.name}: the fake recorded no prompt`);
        const prompt = rec.prompt.tokens;
        const evaluated = prompt - rec.cache.cached;
        // the ideal: a server with a slot for every prompt, each kept: only what no earlier prompt began with
        const ids = promptIds(rec.body);
        let known = 0;
        for (const seen of seenPrompts) known = Math.max(known, commonPrefix(seen, ids));
        seenPrompts.push(ids);
        const ideal = ids.length - Math.min(known, ids.length - 1);
        const prev = conv >= 0 ? lastOf.get(conv) : undefined;
        const own = ids.length - Math.min(prev ? commonPrefix(prev, ids) : 0, ids.length - 1);
        if (conv >= 0) lastOf.set(conv, ids);
        served.push({ conv, turn, prompt, evaluated, ideal, own, slot: rec.cache.slot });
        f.fake.requests.length = 0; // the bodies are large: keep none
      }
      const agentTurns = served.filter((x) => x.conv >= 0);
      const ev = agentTurns.reduce((n, x) => n + x.evaluated, 0);
      const id = agentTurns.reduce((n, x) => n + x.ideal, 0);
      const own = agentTurns.reduce((n, x) => n + x.own, 0);
      const key = `${s.id}/${f.affinity ? "on" : "off"}`;
      let cell = cells.get(key);
      if (!cell) {
        cell = { scenario: s, affinity: f.affinity, runs: [] };
        cells.set(key, cell);
      }
      cell.runs.push({
        served,
        agentRatio: ev / own,
        sharedRatio: ev / id,
        agentEvaluated: ev,
        agentIdeal: own,
      });
      process.stdout.write(
        `  run ${run + 1} ${s.id.padEnd(24)} affinity ${f.affinity ? "on " : "off"}  ${ev} tokens read: ` +
          `${(ev / own).toFixed(2)}× each conversation's new tokens (${own}), ${(ev / id).toFixed(2)}× all prompts' (${id})\n`,
      );
    }
  } finally {
    if (cb && cb.child.exitCode === null) cb.child.kill("SIGTERM");
    await agent.close();
    for (const f of fakes) await f.fake.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function runCacheBench(opts: CacheBenchOptions): Promise<CacheBenchResult> {
  const scenarios = CACHE_SCENARIOS.filter(opts.only ?? (() => true));
  const cells = new Map<string, Cell>();
  for (let run = 0; run < opts.runs; run++) await oneRun(opts, scenarios, run, cells);
  const result: CacheBenchResult = { rate: opts.rate, turns: opts.turns, runs: opts.runs, cells: [] };
  for (const [key, cell] of cells) {
    const ratios = cell.runs.map((r) => r.agentRatio);
    const all = cell.runs.flatMap((r) => r.served);
    const agentTurns = all.filter((x) => x.conv >= 0);
    const bg = all.filter((x) => x.conv < 0);
    const first = cell.runs[0]!.served.filter((x) => x.conv >= 0);
    result.cells.push({
      id: key,
      affinity: cell.affinity,
      scenario: cell.scenario,
      ratio: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) },
      sharedRatio: median(cell.runs.map((r) => r.sharedRatio)),
      agentEvaluated: median(cell.runs.map((r) => r.agentEvaluated)),
      agentIdeal: median(cell.runs.map((r) => r.agentIdeal)),
      ttftS: {
        mean: agentTurns.reduce((n, x) => n + x.evaluated, 0) / agentTurns.length / opts.rate,
        ideal: agentTurns.reduce((n, x) => n + x.own, 0) / agentTurns.length / opts.rate,
        max: Math.max(...agentTurns.map((x) => x.evaluated)) / opts.rate,
      },
      background: {
        evaluated: bg.reduce((n, x) => n + x.evaluated, 0),
        ideal: bg.reduce((n, x) => n + x.ideal, 0),
      },
      perTurn: first.map((x) => [x.conv, x.evaluated, x.own]),
    });
  }
  const dir = opts.resultsDir ?? join(BENCH_DIR, "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "cache.json"), `${JSON.stringify(result, null, 1)}\n`);
  writeFileSync(join(dir, "cache.md"), cacheMarkdown(result));
  return result;
}

/** The table: one row per scenario, affinity on and off side by side. */
export function cacheMarkdown(r: CacheBenchResult): string {
  const rows: string[] = [
    "| session | conv. | slots | background | on: × own (min–max) | on: × shared | on: TTFT / ideal | off: × own (min–max) | off: × shared | off: TTFT |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const byId = new Map(r.cells.map((c) => [c.id, c]));
  for (const s of CACHE_SCENARIOS) {
    const on = byId.get(`${s.id}/on`);
    const off = byId.get(`${s.id}/off`);
    if (!on || !off) continue;
    const x = (c: typeof on) =>
      `${c.ratio.median.toFixed(2)}× (${c.ratio.min.toFixed(2)}–${c.ratio.max.toFixed(2)}) | ${c.sharedRatio.toFixed(2)}×`;
    rows.push(
      `| ${s.session} | ${s.conversations} | ${s.slots} | ${s.background ? "yes" : "no"} | ${x(on)} | ` +
        `${on.ttftS.mean.toFixed(2)} s / ${on.ttftS.ideal.toFixed(2)} s | ${x(off)} | ${off.ttftS.mean.toFixed(2)} s |`,
    );
  }
  return [
    "# Prompt-cache benchmark",
    "",
    `${r.runs} run(s), ${r.turns} turns per conversation, requests one at a time, background requests after ` +
      "about one agent turn in four. × own = prompt tokens the server read over the agent turns / the tokens " +
      "each turn added to its own conversation (a conversation's first turn: its whole prompt); median of the " +
      "runs (min–max). × shared = the same against a server that kept every prompt (only tokens no earlier " +
      `prompt began with: conversations of one client share the system prompt and tools). TTFT = simulated ` +
      `time to first token per agent turn at ${r.rate} prompt tokens/s (mean), against × own's ideal. ` +
      "on / off: clawbridge's slot affinity (`cache_affinity`).",
    "",
    ...rows,
    "",
  ].join("\n");
}

export function printCacheResult(r: CacheBenchResult): void {
  process.stdout.write(`\n${cacheMarkdown(r)}`);
}

interface Flags {
  runs: number;
  turns: number;
  rate: number;
  clawbridgeCli: string;
}

function parseFlags(argv: string[]): Flags {
  const dist = join(ROOT, "dist", "cli", "main.js");
  const flags: Flags = {
    runs: 3,
    turns: 20,
    rate: 1000,
    clawbridgeCli: existsSync(dist) ? dist : join(ROOT, "src", "cli", "main.ts"),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${a} wants a positive number`);
      i++;
      return n;
    };
    if (a === "--runs") flags.runs = Math.floor(num());
    else if (a === "--turns") flags.turns = Math.floor(num());
    else if (a === "--rate") flags.rate = num();
    else if (a === "--clawbridge") {
      flags.clawbridgeCli = resolve(v ?? "");
      i++;
    } else throw new Error(`unknown option ${a}`);
  }
  return flags;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  runCacheBench(flags).then(
    (r) => {
      printCacheResult(r);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`cache bench: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
