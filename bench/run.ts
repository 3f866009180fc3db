// The benchmark harness: starts the fake upstream, the byte pass-through, clawbridge and (where it installs)
// the peer @musistudio/llms, each in its own process on loopback; runs every scenario against each of them;
// prints a table and writes bench/results/latest.json and bench/results/latest.md.
//
//   npm run bench -- [--duration 5] [--warmup 1] [--only small,stream-c1] [--skip-peer]
//   node --import tsx bench/run.ts ...          (the same, without `npm run build` first)
//
// See bench/README.md for what each scenario measures.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { request } from "undici";
import {
  openclawAnthropic,
  openclawOpenAI,
  smallAnthropic,
  smallOpenAI,
  streamAnthropic,
  streamOpenAI,
} from "./fixtures.js";
import { type LoadResult, mergeResults, runLoad } from "./load.js";
import { printQueueResult, runQueueBench } from "./queue.js";
import { printEmbeddedResult, runEmbeddedBench } from "./embedded.js";
import { printCacheResult, runCacheBench } from "./cache.js";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, "..");
const RESULTS_DIR = join(BENCH_DIR, "results");
const PEERS_DIR = join(BENCH_DIR, "peers");
const HOST = "127.0.0.1";
/** What a non-streaming answer must look like: a completion with a message, in the client's dialect. */
const EXPECT: Record<"openai" | "anthropic", RegExp> = {
  openai: /"choices"\s*:\s*\[\s*\{[\s\S]*"message"\s*:/,
  anthropic: /"type"\s*:\s*"message"[\s\S]*"content"\s*:\s*\[/,
};
const STREAM_CHUNKS = 200;
const OPENCLAW_CHUNKS = 100;

// --- flags ------------------------------------------------------------------------------------------

interface Flags {
  durationS: number;
  warmupS: number;
  rounds: number;
  only: string[] | null;
  skipPeer: boolean;
  skipClawbridge: boolean;
  clawbridgeCli: string;
  coalesce: boolean;
  timeoutS: number;
  /** the queue bench (bench/queue.ts) after the scenarios: its duration, or null to skip it */
  queueS: number | null;
  /** the embedded bench (bench/embedded.ts) after the queue bench: its rounds, or null to skip it */
  embeddedRounds: number | null;
  /** the prompt-cache bench (bench/cache.ts) after the embedded bench: its runs, or null to skip it */
  cacheRuns: number | null;
  /** one clawbridge per CLAWBRIDGE_FAST_PATHS setting, side by side (null: one, with the environment's) */
  fastPaths: string[] | null;
  /** other clawbridge builds to run side by side with this one, in the same rounds: [label, CLI path] */
  also: Array<[string, string]>;
  /** run clawbridge with its request journal on and off, side by side (false: on, as users run it) */
  journal: boolean;
  /** write a CPU profile of each clawbridge process into this folder (node --cpu-prof), or null */
  profile: string | null;
  /** only these dialects against clawbridge (null: both) */
  dialects: Dialect[] | null;
  /** the name of the results files in bench/results (default latest) */
  out: string;
}

class UsageError extends Error {}

function usage(): never {
  process.stdout.write(
    [
      "usage: node --import tsx bench/run.ts [options]",
      "  --duration <s>        measured seconds per scenario and target, all rounds together (default 5)",
      "  --rounds <n>          split each cell into n rounds, target order rotated between them (default 2)",
      "  --warmup <s>          unmeasured warm-up seconds before each round of each cell (default 0.5)",
      "  --only <a,b,...>      scenarios to run: ids (small-c32) or groups (small, stream, openclaw)",
      "  --skip-peer           do not install or run @musistudio/llms",
      "  --skip-clawbridge     do not start clawbridge (pass-through and peer only)",
      "  --clawbridge <path>   the CLI to start (default dist/cli/main.js)",
      "  --coalesce            upstream writes each stream in one write instead of one per event",
      "  --timeout <s>         per-request timeout (default 30)",
      "  --queue-duration <s>  the queue bench (64 streaming clients, one-slot backend) runs this long (default 60)",
      "  --skip-queue          do not run the queue bench (`--only queue` runs it alone)",
      "  --embedded-rounds <n> the embedded bench (GGUF in-process: clawbridge vs node-llama-cpp directly) rounds (default 12)",
      "  --skip-embedded       do not run the embedded bench (`--only embedded` runs it alone)",
      "  --cache-runs <n>      the prompt-cache bench (agent sessions on a slot-caching llama.cpp fake) runs (default 3)",
      "  --skip-cache          do not run the prompt-cache bench (`--only cache` runs it alone)",
      "  --fast-paths <set>    run one clawbridge per CLAWBRIDGE_FAST_PATHS setting, side by side in the same",
      "                        rounds (repeat it: --fast-paths 1 --fast-paths 0 --fast-paths -templates)",
      "  --also <label>=<cli> also run another clawbridge build (its dist/cli/main.js) side by side, in the",
      "                        same rounds: a before/after comparison in one run (repeatable)",
      "  --journal             run clawbridge with its request journal on and off, side by side in the same",
      "                        rounds (its cost; without it the journal is on, in a temp folder)",
      "  --profile <dir>       write a CPU profile of each clawbridge process to <dir> (node --cpu-prof;",
      "                        open it in Chrome DevTools); its figures are not comparable with a run without",
      "  --dialect <d>         only this clawbridge dialect (openai or anthropic; repeatable)",
      "  --out <name>          results to bench/results/<name>.json and .md (default latest)",
      "",
    ].join("\n"),
  );
  process.exit(0);
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = {
    durationS: 5,
    warmupS: 0.5,
    rounds: 2,
    only: null,
    skipPeer: false,
    skipClawbridge: false,
    clawbridgeCli: join(ROOT, "dist", "cli", "main.js"),
    coalesce: false,
    timeoutS: 30,
    queueS: 60,
    embeddedRounds: 12,
    cacheRuns: 3,
    fastPaths: null,
    also: [],
    journal: false,
    profile: null,
    dialects: null,
    out: "latest",
  };
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0)
      throw new UsageError(`${name} needs a non-negative number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--duration":
        flags.durationS = num(a, argv[++i]);
        break;
      case "--warmup":
        flags.warmupS = num(a, argv[++i]);
        break;
      case "--rounds":
        flags.rounds = Math.max(1, Math.round(num(a, argv[++i])));
        break;
      case "--timeout":
        flags.timeoutS = Math.max(1, num(a, argv[++i]));
        break;
      case "--only":
        flags.only = (argv[++i] ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case "--skip-peer":
        flags.skipPeer = true;
        break;
      case "--skip-clawbridge":
        flags.skipClawbridge = true;
        break;
      case "--clawbridge":
        flags.clawbridgeCli = resolve(argv[++i] ?? "");
        break;
      case "--coalesce":
        flags.coalesce = true;
        break;
      case "--queue-duration":
        flags.queueS = Math.max(1, num(a, argv[++i]));
        break;
      case "--skip-queue":
        flags.queueS = null;
        break;
      case "--embedded-rounds":
        flags.embeddedRounds = Math.max(1, Math.round(num(a, argv[++i])));
        break;
      case "--skip-embedded":
        flags.embeddedRounds = null;
        break;
      case "--journal":
        flags.journal = true;
        break;
      case "--profile":
        flags.profile = resolve(argv[++i] ?? "");
        break;
      case "--cache-runs":
        flags.cacheRuns = Math.max(1, Math.round(num(a, argv[++i])));
        break;
      case "--skip-cache":
        flags.cacheRuns = null;
        break;
      case "--fast-paths":
        flags.fastPaths = [...(flags.fastPaths ?? []), argv[++i] ?? ""];
        break;
      case "--also": {
        const v = argv[++i] ?? "";
        const eq = v.indexOf("=");
        if (eq < 1) throw new UsageError("--also takes <label>=<path of a clawbridge CLI>");
        const cli = resolve(v.slice(eq + 1));
        if (!existsSync(cli)) throw new UsageError(`--also: ${cli} does not exist`);
        flags.also.push([v.slice(0, eq), cli]);
        break;
      }
      case "--dialect": {
        const d = argv[++i];
        if (d !== "openai" && d !== "anthropic") throw new UsageError("--dialect takes openai or anthropic");
        flags.dialects = [...(flags.dialects ?? []), d];
        break;
      }
      case "--out": {
        const name = argv[++i] ?? "";
        if (!/^[\w.-]+$/.test(name)) throw new UsageError("--out takes a plain file name");
        flags.out = name;
        break;
      }
      case "-h":
      case "--help":
        usage();
        break;
      default:
        throw new UsageError(`unknown flag ${a} (try --help)`);
    }
  }
  return flags;
}

// --- processes --------------------------------------------------------------------------------------

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  port: number;
  /** the last output of the process (stderr and stdout) */
  stderrTail: () => string;
  exited: () => boolean;
}

const children: ChildProcess[] = [];

function killAll(signal: NodeJS.Signals): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try {
        process.kill(c.pid, signal);
      } catch {
        // already gone
      }
    }
  }
}

async function stopAll(): Promise<void> {
  killAll("SIGTERM");
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && children.some((c) => c.exitCode === null && c.signalCode === null)) {
    await sleep(50);
  }
  killAll("SIGKILL");
}

const tmpDirs: string[] = [];
process.on("exit", () => {
  killAll("SIGKILL");
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping children\n`);
    killAll("SIGKILL");
    process.exit(130);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function startProcess(
  name: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
): Omit<Proc, "port"> {
  const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env });
  children.push(child);
  // Keep the last few KB of both streams (and keep draining them, so a chatty child never blocks on a full
  // pipe); error messages quote them.
  let tail = "";
  const keep = (d: string): void => {
    tail = (tail + d).slice(-4000);
  };
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", keep);
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", keep);
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  child.on("error", (err) => {
    tail += `\nspawn error: ${err.message}`;
    exited = true;
  });
  return { name, child, pid: child.pid ?? -1, stderrTail: () => tail.trim(), exited: () => exited };
}

/** Starts a bench script that prints `{"event":"listening","port":N}` on stdout. */
async function startListening(name: string, args: string[], timeoutMs: number): Promise<Proc> {
  const p = startProcess(name, args, ROOT);
  const port = await new Promise<number>((res, rej) => {
    let buf = "";
    const timer = setTimeout(() => rej(new Error(`${name}: not listening after ${timeoutMs} ms`)), timeoutMs);
    p.child.stdout?.on("data", (d: string) => {
      buf += d;
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { event?: string; port?: number };
          if (msg.event === "listening" && typeof msg.port === "number") {
            clearTimeout(timer);
            res(msg.port);
          }
        } catch {
          // not ours
        }
        nl = buf.indexOf("\n");
      }
    });
    p.child.on("exit", (code, signal) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited (${signal ?? code}) before listening: ${p.stderrTail() || "no stderr"}`));
    });
  });
  return { ...p, port };
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

async function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; text: string }> {
  const res = await request(url, { method: "GET", headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  return { status: res.statusCode, text: await res.body.text() };
}

async function waitHealthy(p: Omit<Proc, "port">, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (p.exited()) throw new Error(`${p.name} exited during start-up: ${p.stderrTail() || "no stderr"}`);
    try {
      const r = await httpGet(`http://${HOST}:${port}/health`, 1000);
      if (r.status === 200) return;
      last = `GET /health → ${r.status} ${r.text.slice(0, 200)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new Error(
    `${p.name}: /health not 200 after ${timeoutMs} ms (${last}); stderr: ${p.stderrTail() || "none"}`,
  );
}

/**
 * The helper scripts (upstream, pass-through, peer starter) import only node: modules, so they are
 * transpiled to plain JavaScript and run without a TypeScript loader: the pass-through's RSS then
 * compares fairly with clawbridge's compiled dist/. Falls back to `--import tsx` if transpiling fails.
 */
function scriptArgs(tmp: string, rel: string): string[] {
  const src = join(BENCH_DIR, rel);
  try {
    const out = ts.transpileModule(readFileSync(src, "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: src,
    });
    const dest = join(tmp, rel.replace(/[\\/]/g, "_").replace(/\.ts$/, ".mjs"));
    writeFileSync(dest, out.outputText);
    return [dest];
  } catch {
    return ["--import", "tsx", src];
  }
}

// --- RSS --------------------------------------------------------------------------------------------

function readStatusKb(pid: number, field: "VmRSS" | "VmHWM"): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] !== undefined ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The machine's CPU time so far, in clock ticks, from /proc/stat (null where there is none). */
interface HostTicks {
  /** all of it: user nice system idle iowait irq softirq steal (guest time is counted in user already) */
  total: number;
  /** idle and waiting for I/O */
  idle: number;
  /** given by the hypervisor to other guests */
  steal: number;
}

function hostTicks(): HostTicks | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (v.length < 8 || v.some((x) => !Number.isFinite(x))) return null;
    return { total: v.reduce((x, y) => x + y, 0), idle: v[3]! + v[4]!, steal: v[7]! };
  } catch {
    return null;
  }
}

/** Share of all CPUs busy over `ms` (null where /proc/stat is missing). */
async function machineBusy(ms: number): Promise<number | null> {
  const a = hostTicks();
  await sleep(ms);
  const b = hostTicks();
  if (!a || !b || b.total === a.total) return null;
  return (b.total - b.idle - (a.total - a.idle)) / (b.total - a.total);
}

let clockTicks: number | undefined;

/** User + system CPU time of a process so far, milliseconds (Linux /proc; null elsewhere). */
function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after "(comm)" start at field 3; utime and stime are fields 14 and 15
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(rest[11]) + Number(rest[12]);
    if (clockTicks === undefined) {
      try {
        clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
      } catch {
        clockTicks = 100;
      }
    }
    return Number.isFinite(ticks) ? (ticks * 1000) / clockTicks : null;
  } catch {
    return null;
  }
}

/** Samples VmRSS of every server process every 100 ms; peaks are kept per target under load. */
class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private current: { target: string; pid: number } | null = null;
  readonly peakKb = new Map<string, number>();
  readonly peakByProcKb = new Map<number, number>();

  constructor(private readonly pids: number[]) {}

  start(): void {
    this.timer = setInterval(() => this.sample(), 100);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Attribute samples of `pid` to `target` until the next call (null: idle between runs). */
  under(target: string | null, pid = -1): void {
    this.current = target === null ? null : { target, pid };
    if (target !== null) this.sample();
  }

  private sample(): void {
    for (const pid of this.pids) {
      const kb = readStatusKb(pid, "VmRSS");
      if (kb === null) continue;
      this.peakByProcKb.set(pid, Math.max(this.peakByProcKb.get(pid) ?? 0, kb));
      if (this.current && this.current.pid === pid) {
        const t = this.current.target;
        this.peakKb.set(t, Math.max(this.peakKb.get(t) ?? 0, kb));
      }
    }
  }
}

// --- peer -------------------------------------------------------------------------------------------

function runNpmInstall(timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((res) => {
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    const child = spawn(npm, ["install", "--prefix", PEERS_DIR, "--no-audit", "--no-fund"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: process.env,
    });
    children.push(child);
    let out = "";
    const keep = (d: Buffer): void => {
      out = (out + d.toString("utf8")).slice(-3000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      out += `\nnpm install: killed after ${timeoutMs / 1000} s`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      res({ ok: false, output: `${out}\n${err.message}` });
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      res({ ok: code === 0, output: out.trim() });
    });
  });
}

async function ensurePeer(notes: string[]): Promise<boolean> {
  const pkgJson = join(PEERS_DIR, "node_modules", "@musistudio", "llms", "package.json");
  const version = (file: string, dep?: string): string | undefined => {
    try {
      const j = JSON.parse(readFileSync(file, "utf8")) as {
        version?: string;
        dependencies?: Record<string, string>;
      };
      return dep ? j.dependencies?.[dep] : j.version;
    } catch {
      return undefined;
    }
  };
  const pinned = version(join(PEERS_DIR, "package.json"), "@musistudio/llms");
  const installed = version(pkgJson);
  if (installed !== undefined && (pinned === undefined || pinned === installed)) return true;
  process.stdout.write("installing peer @musistudio/llms into bench/peers/node_modules …\n");
  const r = await runNpmInstall(180_000);
  if (!r.ok || !existsSync(pkgJson)) {
    const tail = r.output.split("\n").slice(-6).join(" | ");
    notes.push(`peer @musistudio/llms skipped: npm install failed (${tail})`);
    return false;
  }
  return true;
}

// --- scenarios and targets --------------------------------------------------------------------------

type Dialect = "openai" | "anthropic";
type Metric = "rps" | "p50" | "p99" | "ttfb50" | "ttfb99" | "cpu";

interface Target {
  id: string;
  label: string;
  proc: string;
  dialect: Dialect;
  url: string;
  model: string;
  pid: number;
}

interface Scenario {
  id: string;
  group: string;
  title: string;
  concurrency: number;
  stream: boolean;
  body: (d: Dialect) => Record<string, unknown>;
  metrics: Metric[];
}

const SCENARIOS: Scenario[] = [
  {
    id: "small-c1",
    group: "small",
    title: "small non-streaming, concurrency 1",
    concurrency: 1,
    stream: false,
    body: (d) => (d === "openai" ? smallOpenAI() : smallAnthropic()),
    metrics: ["rps", "p50", "p99"],
  },
  {
    id: "small-c32",
    group: "small",
    title: "small non-streaming, concurrency 32",
    concurrency: 32,
    stream: false,
    body: (d) => (d === "openai" ? smallOpenAI() : smallAnthropic()),
    metrics: ["rps", "p50", "p99"],
  },
  {
    id: "stream-c1",
    group: "stream",
    title: `${STREAM_CHUNKS}-chunk stream, concurrency 1`,
    concurrency: 1,
    stream: true,
    body: (d) => (d === "openai" ? streamOpenAI(STREAM_CHUNKS) : streamAnthropic(STREAM_CHUNKS)),
    metrics: ["ttfb50", "p50", "p99"],
  },
  {
    id: "stream-c16",
    group: "stream",
    title: `${STREAM_CHUNKS}-chunk stream, concurrency 16`,
    concurrency: 16,
    stream: true,
    body: (d) => (d === "openai" ? streamOpenAI(STREAM_CHUNKS) : streamAnthropic(STREAM_CHUNKS)),
    metrics: ["rps", "ttfb50", "p50"],
  },
  {
    id: "openclaw-c1",
    group: "openclaw",
    title: `OpenClaw-sized request (~150 KB), ${OPENCLAW_CHUNKS}-chunk stream, concurrency 1`,
    concurrency: 1,
    stream: true,
    body: (d) => (d === "openai" ? openclawOpenAI(OPENCLAW_CHUNKS) : openclawAnthropic(OPENCLAW_CHUNKS)),
    metrics: ["ttfb50", "p50", "rps"],
  },
  {
    id: "openclaw-c8",
    group: "openclaw",
    title: `OpenClaw-sized request (~150 KB), ${OPENCLAW_CHUNKS}-chunk stream, concurrency 8`,
    concurrency: 8,
    stream: true,
    body: (d) => (d === "openai" ? openclawOpenAI(OPENCLAW_CHUNKS) : openclawAnthropic(OPENCLAW_CHUNKS)),
    metrics: ["rps", "ttfb50", "p50"],
  },
];

const METRIC_LABEL: Record<Metric, string> = {
  rps: "req/s",
  p50: "total p50 (ms)",
  p99: "total p99 (ms)",
  ttfb50: "TTFB p50 (ms)",
  ttfb99: "TTFB p99 (ms)",
  cpu: "server CPU/req (µs)",
};

function metricValue(rec: RunRecord | undefined, m: Metric): number | null {
  const r = rec?.result;
  if (!r || r.ok === 0) return null;
  switch (m) {
    case "rps":
      return r.rps;
    case "p50":
      return r.latencyMs.p50;
    case "p99":
      return r.latencyMs.p99;
    case "ttfb50":
      return r.ttfbMs.p50;
    case "ttfb99":
      return r.ttfbMs.p99;
    case "cpu":
      return rec.serverCpuUsPerRequest ?? null;
  }
}

function headersFor(d: Dialect): Record<string, string> {
  return d === "openai"
    ? { "content-type": "application/json" }
    : { "content-type": "application/json", "anthropic-version": "2023-06-01" };
}

function bodyFor(s: Scenario, t: Target): Buffer {
  return Buffer.from(JSON.stringify({ ...s.body(t.dialect), model: t.model }));
}

// --- formatting -------------------------------------------------------------------------------------

function fmt(v: number | null | undefined, m: Metric | "mib"): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  if (m === "rps" || m === "cpu") return v >= 100 ? v.toFixed(0) : v.toFixed(1);
  if (m === "mib") return v.toFixed(1);
  return v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function ratio(v: number | null | undefined, ref: number | null | undefined): string {
  if (v === null || v === undefined || ref === null || ref === undefined || ref === 0) return "—";
  if (!Number.isFinite(v) || !Number.isFinite(ref)) return "—";
  return `${(v / ref).toFixed(2)}×`;
}

function textTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows
    .map((row, ri) => {
      const line = row.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
      return ri === 0 ? `${line}\n${"-".repeat(line.length)}` : line;
    })
    .join("\n");
}

function mdTable(rows: string[][]): string {
  const [head, ...body] = rows;
  if (!head) return "";
  const sep = head.map((_, i) => (i < 2 ? "---" : "---:"));
  return [head, sep, ...body].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

// --- main -------------------------------------------------------------------------------------------

interface RunRecord {
  result: LoadResult | null;
  error?: string;
  /** upstream completions during the measured phase: one per request for a gateway that does not retry */
  upstreamCompletions?: number;
  /** CPU time the target's server process spent in the measured phase, milliseconds */
  serverCpuMs?: number;
  /** serverCpuMs per finished request, microseconds */
  serverCpuUsPerRequest?: number;
  /** req/s of each round */
  roundRps?: number[];
  /** share of the machine's CPU time the hypervisor gave to other guests during the measured phase */
  stolenShare?: number;
}

async function upstreamCompletions(port: number): Promise<number | undefined> {
  try {
    const r = await httpGet(`http://${HOST}:${port}/_bench/stats`);
    return (JSON.parse(r.text) as { completions: number }).completions;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const notes: string[] = [];
  const startedAt = new Date();
  const scenarios = SCENARIOS.filter(
    (s) => flags.only === null || flags.only.includes(s.id) || flags.only.includes(s.group),
  );
  const queueS = flags.only === null || flags.only.includes("queue") ? flags.queueS : null;
  const embeddedRounds = flags.only === null || flags.only.includes("embedded") ? flags.embeddedRounds : null;
  const cacheRuns = flags.only === null || flags.only.includes("cache") ? flags.cacheRuns : null;
  if (scenarios.length === 0 && (queueS !== null || embeddedRounds !== null || cacheRuns !== null)) {
    if (queueS !== null) await runQueue(flags, queueS);
    if (embeddedRounds !== null) await runEmbedded(flags, embeddedRounds);
    if (cacheRuns !== null) await runCache(flags, cacheRuns);
    return;
  }
  if (scenarios.length === 0)
    throw new UsageError(
      `--only matched no scenario (have: ${SCENARIOS.map((s) => s.id).join(", ")}, queue, embedded, cache)`,
    );

  // A hard bound on the whole run, whatever hangs: every cell at its worst (both phases running into the
  // request timeout) plus ten minutes for start-up and the peer's install.
  const worstCellS = flags.durationS + flags.rounds * (flags.warmupS + 2 * (flags.timeoutS + 1) + 1);
  const hardLimit = setTimeout(
    () => {
      process.stderr.write("bench: hard time limit reached, stopping\n");
      killAll("SIGKILL");
      process.exit(1);
    },
    (scenarios.length * 4 * worstCellS + 600) * 1000,
  );
  hardLimit.unref();

  // Other work on the machine skews every figure: say so when there is some.
  const busyBefore = await machineBusy(1000);
  if (busyBefore !== null && busyBefore > 0.15) {
    const msg =
      `the machine was ${(busyBefore * 100).toFixed(0)}% busy before the run started (other processes): ` +
      "figures are skewed; compare ratios only, or rerun on a quiet machine";
    notes.push(msg);
    process.stdout.write(`warning: ${msg}\n`);
  }

  const tmp = mkdtempSync(join(os.tmpdir(), "clawbridge-bench-"));
  tmpDirs.push(tmp);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const lifetime = ["--max-lifetime", "1800"];

  // Upstream and pass-through are required; anything else may fail and is then skipped with a note.
  const upArgs = [...scriptArgs(tmp, "upstream.ts"), "--host", HOST, "--port", "0", ...lifetime];
  if (flags.coalesce) upArgs.push("--coalesce");
  const upstream = await startListening("upstream", upArgs, 10_000);
  const upstreamUrl = `http://${HOST}:${upstream.port}`;
  const passthrough = await startListening(
    "passthrough",
    [
      ...scriptArgs(tmp, "passthrough.ts"),
      "--upstream",
      upstreamUrl,
      "--host",
      HOST,
      "--port",
      "0",
      ...lifetime,
    ],
    10_000,
  );
  process.stdout.write(`upstream on ${upstream.port}, pass-through on ${passthrough.port}\n`);

  const targets: Target[] = [
    {
      id: "passthrough",
      label: "pass-through",
      proc: "passthrough",
      dialect: "openai",
      url: `http://${HOST}:${passthrough.port}/v1/chat/completions`,
      model: "bench-model",
      pid: passthrough.pid,
    },
  ];
  const procs: Record<string, Proc> = { passthrough };
  const status: Record<string, string> = { passthrough: "ok" };

  // clawbridge: one process, or one per fast-path setting, and one per other build (side by side in the same rounds)
  // with --journal: each of those twice, the request journal on and off
  const journals = flags.journal ? [true, false] : [null];
  const variants: Array<{ name: string; cli: string; fastPaths: string | null; journal: boolean | null }> = [
    ...(flags.fastPaths ?? [null]).flatMap((fp) =>
      journals.map((journal) => ({
        name: `clawbridge${fp === null ? "" : `[${fp}]`}${journal === null ? "" : journal ? "[journal]" : "[no journal]"}`,
        cli: flags.clawbridgeCli,
        fastPaths: fp,
        journal,
      })),
    ),
    ...flags.also.map(([label, cli]) => ({
      name: `clawbridge ${label}`,
      cli,
      fastPaths: null,
      journal: null,
    })),
  ];
  if (flags.skipClawbridge) {
    status.clawbridge = "skipped (--skip-clawbridge)";
  } else if (!existsSync(flags.clawbridgeCli)) {
    status.clawbridge = `not built: ${flags.clawbridgeCli} is missing (run \`npm run build\`)`;
  } else {
    for (const { name, cli, fastPaths, journal } of variants) {
      const port = await freePort();
      const cfg = join(tmp, `clawbridge-${port}.yaml`);
      writeFileSync(
        cfg,
        [
          `server: { host: ${HOST}, port: ${port} }`,
          "log: { level: warn }",
          "backends:",
          `  up: { kind: openai-compat, url: "${upstreamUrl}/v1" }`,
          "models:",
          "  bench-model: { backend: up, model: fake-model }",
          "",
        ].join("\n"),
      );
      // the journal as users have it (on) unless --journal turns it off, in the run's temp folder (never the user's own)
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        CLAWBRIDGE_HOME: join(tmp, `home-${port}`),
        ...(fastPaths === null ? {} : { CLAWBRIDGE_FAST_PATHS: fastPaths }),
        ...(journal === false ? { CLAWBRIDGE_JOURNAL: "off" } : {}),
      };
      const p = startProcess(
        name,
        [
          ...(flags.profile
            ? [
                "--cpu-prof",
                `--cpu-prof-dir=${flags.profile}`,
                `--cpu-prof-name=clawbridge-${port}.cpuprofile`,
              ]
            : []),
          cli,
          "serve",
          "--config",
          cfg,
          "--host",
          HOST,
          "--port",
          String(port),
        ],
        ROOT,
        env,
      );
      try {
        await waitHealthy(p, port, 20_000);
        procs[name] = { ...p, port };
        status[name] = "ok";
        for (const d of flags.dialects ?? (["openai", "anthropic"] as const)) {
          targets.push({
            id: `${name}-${d}`,
            label: `${name} (${d === "openai" ? "OpenAI" : "Anthropic"})`,
            proc: name,
            dialect: d,
            url: `http://${HOST}:${port}${d === "openai" ? "/v1/chat/completions" : "/v1/messages"}`,
            model: "bench-model",
            pid: p.pid,
          });
        }
      } catch (err) {
        status[name] = `failed to start: ${err instanceof Error ? err.message : String(err)}`;
        if (p.pid > 0 && !p.exited()) p.child.kill("SIGKILL");
      }
    }
  }
  for (const { name } of variants) {
    const said = status[name] ?? status.clawbridge;
    if (said !== "ok") {
      process.stdout.write(`\n*** ${name}: ${said}\n*** continuing without it\n\n`);
      notes.push(`${name}: ${said}`);
    }
  }

  // peer
  let peerVersion: string | undefined;
  if (flags.skipPeer) {
    status.peer = "skipped (--skip-peer)";
  } else if (!(await ensurePeer(notes))) {
    status.peer = "skipped: install failed";
  } else {
    try {
      const peer = await startListening(
        "peer",
        [
          ...scriptArgs(tmp, "peers/start-llms.ts"),
          "--dir",
          PEERS_DIR,
          "--upstream",
          upstreamUrl,
          "--host",
          HOST,
          "--port",
          "0",
          ...lifetime,
        ],
        30_000,
      );
      await waitHealthy(peer, peer.port, 10_000);
      procs.peer = peer;
      status.peer = "ok";
      try {
        const pkg = JSON.parse(
          readFileSync(join(PEERS_DIR, "node_modules", "@musistudio", "llms", "package.json"), "utf8"),
        ) as { version?: string };
        peerVersion = pkg.version;
      } catch {
        // version unknown
      }
      targets.push({
        id: "peer-anthropic",
        label: `@musistudio/llms${peerVersion ? ` ${peerVersion}` : ""} (Anthropic)`,
        proc: "peer",
        dialect: "anthropic",
        url: `http://${HOST}:${peer.port}/v1/messages`,
        model: "up,fake-model",
        pid: peer.pid,
      });
    } catch (err) {
      status.peer = `failed to start: ${err instanceof Error ? err.message : String(err)}`;
      notes.push(`peer @musistudio/llms: ${status.peer}`);
      process.stdout.write(`\n*** peer: ${status.peer}\n*** continuing without it\n\n`);
    }
  }

  // Idle RSS: after start and one warm-up request per target, then a second of quiet.
  for (const t of targets) {
    const small = SCENARIOS[0]!;
    try {
      const r = await runLoad({
        url: t.url,
        headers: headersFor(t.dialect),
        body: bodyFor(small, t),
        concurrency: 1,
        durationMs: 10_000,
        maxRequests: 1,
        requestTimeoutMs: 10_000,
        expect: EXPECT[t.dialect],
      });
      if (r.ok !== 1) notes.push(`warm-up request to ${t.label} failed: ${r.samples[0] ?? "unknown"}`);
    } catch (err) {
      notes.push(`warm-up request to ${t.label} threw: ${String(err)}`);
    }
  }
  await sleep(1000);
  const idleKb: Record<string, number | null> = {};
  for (const [name, p] of Object.entries(procs)) idleKb[name] = readStatusKb(p.pid, "VmRSS");

  const sampler = new RssSampler(Object.values(procs).map((p) => p.pid));
  sampler.start();

  // Every scenario against every target, in rounds: each round runs every target once, in an order rotated
  // from round to round and scenario to scenario, so that drift of a shared machine hits all targets alike.
  // A cell's figures merge its rounds.
  const records: Record<string, Record<string, RunRecord>> = {};
  const roundS = flags.durationS / flags.rounds;
  process.stdout.write(
    `running ${scenarios.length} scenarios × ${targets.length} targets × ${flags.rounds} rounds of ` +
      `${flags.warmupS} s warm-up + ${roundS.toFixed(1)} s, ~${Math.ceil(
        scenarios.length * targets.length * flags.rounds * (flags.warmupS + roundS + 0.2),
      )} s\n`,
  );
  for (const [si, s] of scenarios.entries()) {
    process.stdout.write(`\n[${s.id}] ${s.title}\n`);
    const acc = new Map<
      string,
      {
        results: LoadResult[];
        rec: RunRecord;
        cpuMs: number;
        upstream: number;
        /** the hypervisor's share, summed over the measured phases (see `hostTicks`) */
        host: { steal: number; total: number };
      }
    >();
    for (const t of targets)
      acc.set(t.id, {
        results: [],
        rec: { result: null, roundRps: [] },
        cpuMs: 0,
        upstream: 0,
        host: { steal: 0, total: 0 },
      });
    for (let round = 0; round < flags.rounds; round++) {
      const shift = (si + round) % targets.length;
      const order = [...targets.slice(shift), ...targets.slice(0, shift)];
      for (const t of order) {
        const a = acc.get(t.id)!;
        const proc = procs[t.proc];
        if (proc?.exited()) {
          a.rec.error = `${t.proc} is no longer running: ${proc.stderrTail().slice(-300)}`;
          continue;
        }
        let before: number | undefined;
        let cpuBefore: number | null = null;
        // (asserted, so that the assignment in the callback below is not narrowed away)
        let hostBefore = null as HostTicks | null;
        try {
          const r = await runLoad({
            url: t.url,
            headers: headersFor(t.dialect),
            body: bodyFor(s, t),
            concurrency: s.concurrency,
            durationMs: roundS * 1000,
            warmupMs: flags.warmupS * 1000,
            stream: s.stream,
            terminator: t.dialect === "openai" ? "[DONE]" : "message_stop",
            expect: s.stream ? undefined : EXPECT[t.dialect],
            requestTimeoutMs: flags.timeoutS * 1000,
            keepRaw: true,
            onMeasureStart: async () => {
              before = await upstreamCompletions(upstream.port);
              cpuBefore = cpuMs(t.pid);
              hostBefore = hostTicks();
              sampler.under(t.id, t.pid);
            },
          });
          a.results.push(r);
          a.rec.roundRps?.push(r.rps);
        } catch (err) {
          a.rec.error = err instanceof Error ? err.message : String(err);
        }
        sampler.under(null);
        const cpuAfter = cpuMs(t.pid);
        const hostAfter = hostTicks();
        if (hostBefore !== null && hostAfter !== null) {
          a.host.steal += hostAfter.steal - hostBefore.steal;
          a.host.total += hostAfter.total - hostBefore.total;
        }
        const after = await upstreamCompletions(upstream.port);
        if (before !== undefined && after !== undefined) a.upstream += after - before;
        if (cpuBefore !== null && cpuAfter !== null) a.cpuMs += cpuAfter - cpuBefore;
        await sleep(200);
      }
    }
    records[s.id] = {};
    for (const t of targets) {
      const a = acc.get(t.id)!;
      const rec = a.rec;
      records[s.id]![t.id] = rec;
      if (a.results.length === 0) {
        process.stdout.write(`  ${t.label.padEnd(36)} error: ${rec.error ?? "no result"}\n`);
        continue;
      }
      const r = mergeResults(a.results);
      rec.result = r;
      rec.upstreamCompletions = a.upstream;
      rec.serverCpuMs = a.cpuMs;
      if (r.requests > 0) rec.serverCpuUsPerRequest = (a.cpuMs * 1000) / r.requests;
      if (a.host.total > 0) rec.stolenShare = a.host.steal / a.host.total;
      const parts = [
        `${fmt(r.rps, "rps")} req/s`,
        `p50 ${fmt(r.latencyMs.p50, "p50")} ms`,
        `p99 ${fmt(r.latencyMs.p99, "p99")} ms`,
      ];
      if (s.stream)
        parts.push(`TTFB p50 ${fmt(r.ttfbMs.p50, "ttfb50")} ms`, `${r.eventsPerResponse.toFixed(0)} ev`);
      parts.push(`ok ${r.ok}`, `failed ${r.failed}`);
      if (rec.serverCpuUsPerRequest !== undefined)
        parts.push(`cpu ${fmt(rec.serverCpuUsPerRequest, "cpu")} µs/req`);
      if (flags.rounds > 1) parts.push(`rounds ${rec.roundRps?.map((x) => fmt(x, "rps")).join("/")} req/s`);
      if (rec.stolenShare !== undefined) parts.push(`stolen ${(rec.stolenShare * 100).toFixed(1)}%`);
      process.stdout.write(`  ${t.label.padEnd(36)} ${parts.join("  ")}\n`);
      if (r.failed > 0)
        process.stdout.write(`    failures: ${JSON.stringify(r.failures)}; ${r.samples[0] ?? ""}\n`);
      if (r.failed === 0 && rec.upstreamCompletions !== r.requests) {
        notes.push(
          `${s.id} / ${t.label}: ${r.requests} requests but ${rec.upstreamCompletions} upstream completions`,
        );
      }
    }
  }
  sampler.stop();

  const hwmKb: Record<string, number | null> = {};
  for (const [name, p] of Object.entries(procs)) hwmKb[name] = readStatusKb(p.pid, "VmHWM");

  // --- report ---
  const ref = targets[0]!;
  const others = targets.slice(1);
  const header = ["scenario", "figure", ref.label, ...others.flatMap((t) => [t.label, "×PT"])];
  const rows: string[][] = [header];
  for (const s of scenarios) {
    const refRec = records[s.id]?.[ref.id];
    for (const m of [...s.metrics, "cpu" as const]) {
      const refV = metricValue(refRec, m);
      const row = [s.id, METRIC_LABEL[m], fmt(refV, m)];
      for (const t of others) {
        const v = metricValue(records[s.id]?.[t.id], m);
        row.push(fmt(v, m), ratio(v, refV));
      }
      rows.push(row);
    }
    const anyFail = targets.some((t) => {
      const rec = records[s.id]?.[t.id];
      return !rec?.result || rec.result.failed > 0;
    });
    if (anyFail) {
      const cell = (t: Target): string => {
        const r = records[s.id]?.[t.id]?.result;
        return r ? `${r.failed}/${r.requests}` : "error";
      };
      rows.push([s.id, "failed/requests", cell(ref), ...others.flatMap((t) => [cell(t), ""])]);
    }
  }
  const mib = (kb: number | null | undefined): number | null =>
    kb === null || kb === undefined ? null : kb / 1024;
  const rssRow = (label: string, value: (t: Target) => number | null): string[] => {
    const refV = value(ref);
    return [
      "rss",
      label,
      fmt(refV, "mib"),
      ...others.flatMap((t) => {
        const v = value(t);
        return [fmt(v, "mib"), ratio(v, refV)];
      }),
    ];
  };
  rows.push(rssRow("idle RSS (MiB)", (t) => mib(idleKb[t.proc])));
  rows.push(rssRow("peak RSS under load (MiB)", (t) => mib(sampler.peakKb.get(t.id))));
  rows.push(rssRow("VmHWM at end (MiB)", (t) => mib(hwmKb[t.proc])));

  // the hypervisor's share while each cell was measured: where it differs, so may the figures
  const stolen = (rec: RunRecord | undefined): string =>
    rec?.stolenShare === undefined ? "–" : `${(rec.stolenShare * 100).toFixed(1)}%`;
  const stolenRows: string[][] = [["scenario", "figure", ...targets.map((t) => t.label)]];
  for (const s of scenarios)
    stolenRows.push([s.id, "CPU stolen", ...targets.map((t) => stolen(records[s.id]?.[t.id]))]);
  const anyStolen = scenarios.some((s) =>
    targets.some((t) => records[s.id]?.[t.id]?.stolenShare !== undefined),
  );

  const table = textTable(rows);
  process.stdout.write(`\n${table}\n`);
  for (const n of notes) process.stdout.write(`note: ${n}\n`);

  const meta = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    durationS: flags.durationS,
    rounds: flags.rounds,
    warmupS: flags.warmupS,
    upstreamWrites: flags.coalesce ? "one write per response" : "one write per SSE event",
    streamChunks: STREAM_CHUNKS,
    openclawChunks: OPENCLAW_CHUNKS,
    openclawBytes: {
      openai: Buffer.byteLength(JSON.stringify(openclawOpenAI(OPENCLAW_CHUNKS))),
      anthropic: Buffer.byteLength(JSON.stringify(openclawAnthropic(OPENCLAW_CHUNKS))),
    },
    peerVersion: peerVersion ?? null,
    machineBusyBeforeRun: busyBefore,
  };
  const json = {
    meta,
    status,
    notes,
    targets: targets.map(({ id, label, proc, dialect, url, model }) => ({
      id,
      label,
      proc,
      dialect,
      url,
      model,
    })),
    scenarios: scenarios.map((s) => ({
      id: s.id,
      title: s.title,
      concurrency: s.concurrency,
      stream: s.stream,
      headline: s.metrics,
      results: records[s.id],
      ratios: Object.fromEntries(
        others.map((t) => {
          const rec = records[s.id]?.[t.id];
          const refRec = records[s.id]?.[ref.id];
          return [
            t.id,
            Object.fromEntries(
              (["rps", "p50", "p99", "ttfb50", "ttfb99", "cpu"] as const).map((m) => {
                const v = metricValue(rec, m);
                const refV = metricValue(refRec, m);
                return [m, v !== null && refV ? v / refV : null];
              }),
            ),
          ];
        }),
      ),
    })),
    rss: {
      idleKb,
      peakUnderLoadKbByTarget: Object.fromEntries(sampler.peakKb),
      vmHwmKb: hwmKb,
    },
  };
  writeAtomic(join(RESULTS_DIR, `${flags.out}.json`), `${JSON.stringify(json, null, 2)}\n`);

  const md = [
    "# clawbridge benchmark — latest run",
    "",
    `${meta.finishedAt} · Node ${meta.node} · ${meta.cpus} × ${meta.cpuModel} · ` +
      `${meta.durationS} s measured per cell in ${meta.rounds} round(s), each after ${meta.warmupS} s warm-up · ` +
      `upstream: ${meta.upstreamWrites}`,
    "",
    "×PT is the figure divided by the pass-through's (the OpenAI-dialect byte pass-through is the reference " +
      "for every column): for req/s below 1× is slower; for latencies and RSS above 1× is worse.",
    "",
    mdTable(rows),
    "",
    ...(anyStolen
      ? [
          "CPU time the hypervisor gave to other guests (steal) while each cell was measured, as a share of " +
            "the machine's CPU time: a cell measured while more was stolen is slower for that reason alone.",
          "",
          mdTable(stolenRows),
          "",
        ]
      : []),
    ...Object.entries(status).map(([k, v]) => `- ${k}: ${v}`),
    ...notes.map((n) => `- note: ${n}`),
    "",
  ].join("\n");
  writeAtomic(join(RESULTS_DIR, `${flags.out}.md`), md);
  process.stdout.write(
    `\nwrote ${join("bench", "results", `${flags.out}.json`)} and ${join("bench", "results", `${flags.out}.md`)}\n`,
  );

  await stopAll();
  if (queueS !== null) await runQueue(flags, queueS);
  if (embeddedRounds !== null) await runEmbedded(flags, embeddedRounds);
  if (cacheRuns !== null) await runCache(flags, cacheRuns);
}

/** The prompt-cache bench (bench/cache.ts): agent sessions on a slot-caching llama.cpp fake, affinity on and off. */
async function runCache(flags: Flags, runs: number): Promise<void> {
  if (!existsSync(flags.clawbridgeCli)) {
    process.stdout.write(
      `\ncache bench skipped: ${flags.clawbridgeCli} is missing (run \`npm run build\`)\n`,
    );
    return;
  }
  process.stdout.write(`\n[cache] 20-turn agent sessions on a slot-caching llama.cpp fake, ${runs} run(s)\n`);
  const r = await runCacheBench({
    runs,
    turns: 20,
    rate: 1000,
    clawbridgeCli: flags.clawbridgeCli,
    resultsDir: RESULTS_DIR,
  });
  printCacheResult(r);
  process.stdout.write(
    `wrote ${join("bench", "results", "cache.json")} and ${join("bench", "results", "cache.md")}\n`,
  );
}

/** The embedded bench (bench/embedded.ts): a GGUF run in-process, through clawbridge and directly. */
async function runEmbedded(flags: Flags, rounds: number): Promise<void> {
  if (!existsSync(flags.clawbridgeCli)) {
    process.stdout.write(
      `\nembedded bench skipped: ${flags.clawbridgeCli} is missing (run \`npm run build\`)\n`,
    );
    return;
  }
  process.stdout.write(
    `\n[embedded] tokens/s of the tiny GGUF through clawbridge vs node-llama-cpp directly, ${rounds} rounds\n`,
  );
  try {
    const r = await runEmbeddedBench({
      rounds,
      tokens: 1000,
      threads: 1,
      clawbridgeCli: flags.clawbridgeCli,
      resultsDir: RESULTS_DIR,
    });
    printEmbeddedResult(r);
    process.stdout.write(
      `wrote ${join("bench", "results", "embedded.json")} and ${join("bench", "results", "embedded.md")}\n`,
    );
  } catch (e) {
    // no engine on this machine (an install without optional dependencies): said, not a failed run
    process.stdout.write(`embedded bench skipped: ${(e as Error).message}\n`);
  }
}

/** The queue bench (bench/queue.ts): many streaming clients, one slot, lanes; its own processes and results. */
async function runQueue(flags: Flags, durationS: number): Promise<void> {
  if (!existsSync(flags.clawbridgeCli)) {
    process.stdout.write(
      `\nqueue bench skipped: ${flags.clawbridgeCli} is missing (run \`npm run build\`)\n`,
    );
    return;
  }
  process.stdout.write(`\n[queue] 64 streaming clients against a one-slot backend, ${durationS} s\n`);
  const r = await runQueueBench({
    durationS,
    clients: 64,
    chunks: 30,
    gapMs: 5,
    staggerMs: 3,
    clawbridgeCli: flags.clawbridgeCli,
    resultsDir: RESULTS_DIR,
  });
  printQueueResult(r);
  process.stdout.write(
    `wrote ${join("bench", "results", "queue.json")} and ${join("bench", "results", "queue.md")}\n`,
  );
  if (!r.ok) process.exitCode = 1;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  async (err: unknown) => {
    const text =
      err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : err;
    process.stderr.write(`bench: ${String(text)}\n`);
    await stopAll();
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
