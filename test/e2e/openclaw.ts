/**
 * Running the real OpenClaw against clawbridge, for the end-to-end suite (test/e2e/*.e2e.ts).
 *
 * OpenClaw (npm `openclaw`, pinned in scripts/e2e-setup.mjs) and the Node 24 it needs live in `.e2e/`, put there by
 * `node scripts/e2e-setup.mjs` (run by `npm run test:e2e`). Each turn runs `openclaw agent --local ... --json` as a
 * child process in its own process group, with its own OPENCLAW_HOME, Node 24 first on PATH for it alone, and no
 * network beyond loopback: update checks, telemetry and helper downloads are switched off.
 *
 * The pieces, for this suite and later ones (context overflow, slow first token, fallbacks):
 * - startClawbridge(yaml): the gateway in this process, its log kept in memory for failure messages;
 * - createOpenClawHome(): a temp OPENCLAW_HOME with a workspace dir; writeOpenClawConfig(home, openclawConfig(...));
 * - runOpenClawTurn(home, message): one headless turn, its reply text parsed from `{payloads:[{text}]}`;
 * - describeTurn / describeRequests / describeGatewayLog: what to put in an assertion message;
 * - killLeftovers(): ends every process a turn started that still runs (call it in `after`); on exit or a signal
 *   this happens by itself, and the temp homes are removed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { parseConfig } from "../../src/config/load.js";
import type { RecordedRequest } from "../fakes/script.js";
import { type RunningGateway, startGateway } from "../helpers.js";

// ---------------------------------------------------------------------------------------------------------------
// Where things are installed (keep in step with scripts/e2e-setup.mjs)
// ---------------------------------------------------------------------------------------------------------------

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const E2E_DIR = resolve(process.env.CLAWBRIDGE_E2E_DIR || join(REPO_ROOT, ".e2e"));
const NODE_PACKAGE = `node-${process.platform}-${process.arch}`;
/** The folder holding Node 24's `node`. */
export const NODE24_BIN_DIR = join(E2E_DIR, "node_modules", NODE_PACKAGE, "bin");
export const NODE24 = join(NODE24_BIN_DIR, process.platform === "win32" ? "node.exe" : "node");
/** OpenClaw's CLI entry point (its package.json `bin`). */
export const OPENCLAW_ENTRY = join(E2E_DIR, "node_modules", "openclaw", "openclaw.mjs");

/** Throws, saying how to fix it, unless scripts/e2e-setup.mjs has completed an install. */
export function assertOpenClawInstalled(): { openclaw: string; node: string } {
  const marker = join(E2E_DIR, "installed.json");
  const missing = [marker, NODE24, OPENCLAW_ENTRY].filter((p) => !existsSync(p));
  if (missing.length) {
    throw new Error(
      `OpenClaw is not installed for the e2e suite (missing ${missing.join(", ")}): run \`node scripts/e2e-setup.mjs\``,
    );
  }
  return JSON.parse(readFileSync(marker, "utf8"));
}

// ---------------------------------------------------------------------------------------------------------------
// clawbridge, in this process
// ---------------------------------------------------------------------------------------------------------------

export interface Clawbridge extends RunningGateway {
  /** The master key OpenClaw must present. */
  apiKey: string;
  /** The gateway's log so far (pino JSON lines, debug and up). */
  logLines(): string[];
}

export const E2E_MASTER_KEY = "sk-e2e-clawbridge";

/**
 * Starts clawbridge on a free loopback port from a YAML config (e.g. `oneBackend(...)` from test/helpers.ts), with
 * `server.master_key` set to E2E_MASTER_KEY unless the YAML has a `server:` section of its own, and its log kept
 * (debug level) so a failing case can show what the gateway did.
 */
export async function startClawbridge(yaml: string, opts: { discover?: boolean } = {}): Promise<Clawbridge> {
  const text = /^server:/m.test(yaml) ? yaml : `${yaml}\nserver: { master_key: ${E2E_MASTER_KEY} }\n`;
  const config = parseConfig(text, "e2e.yaml", {});
  const lines: string[] = [];
  const log = pino(
    { level: "debug", base: undefined },
    {
      write(line: string) {
        lines.push(line.trimEnd());
      },
    },
  );
  const gw = await startGateway(config, { log, ...(opts.discover === false ? { discover: false } : {}) });
  return { ...gw, apiKey: config.server.masterKey ?? E2E_MASTER_KEY, logLines: () => [...lines] };
}

// ---------------------------------------------------------------------------------------------------------------
// An OpenClaw home and its config
// ---------------------------------------------------------------------------------------------------------------

export interface OpenClawHome {
  /** OPENCLAW_HOME (also HOME for the child): the config goes to `<root>/.openclaw/openclaw.json`. */
  root: string;
  configPath: string;
  /** The agent workspace (`agents.defaults.workspace`) and the child's working directory. */
  workspace: string;
  /** Removes the folder (kept when $CLAWBRIDGE_E2E_KEEP is set, for looking at afterwards). */
  dispose(): void;
}

export function createOpenClawHome(label = "openclaw"): OpenClawHome {
  const root = mkdtempSync(join(tmpdir(), `clawbridge-e2e-${label}-`));
  const workspace = join(root, "workspace");
  mkdirSync(join(root, ".openclaw"), { recursive: true });
  mkdirSync(workspace, { recursive: true });
  installExitHook();
  homes.add(root);
  return {
    root,
    configPath: join(root, ".openclaw", "openclaw.json"),
    workspace,
    dispose() {
      homes.delete(root);
      if (process.env.CLAWBRIDGE_E2E_KEEP) process.stderr.write(`e2e: kept ${root}\n`);
      else rmSync(root, { recursive: true, force: true });
    },
  };
}

export type OpenClawApi = "anthropic-messages" | "openai-completions" | "openai-responses";

export interface ProviderModel {
  /** The model id OpenClaw sends: a clawbridge alias. */
  id: string;
  name?: string;
  contextWindow?: number;
  maxTokens?: number;
  reasoning?: boolean;
}

export interface ProviderSpec {
  /** Provider name in OpenClaw's config; models are referred to as `<name>/<id>`. Default "clawbridge". */
  name?: string;
  api: OpenClawApi;
  /** clawbridge's base URL without `/v1`; `/v1` is added for the `openai-*` styles, as OpenClaw expects. */
  gatewayUrl: string;
  apiKey: string;
  models: ProviderModel[];
  /** OpenClaw's per-request timeout for this provider (first event / idle); unset keeps its defaults. */
  timeoutSeconds?: number;
}

/** One provider entry as reference/openclaw-client.md describes it. */
export function providerEntry(spec: ProviderSpec): Record<string, unknown> {
  const base = spec.gatewayUrl.replace(/\/+$/, "");
  return {
    baseUrl: spec.api.startsWith("openai-") ? `${base}/v1` : base,
    apiKey: spec.apiKey,
    api: spec.api,
    ...(spec.timeoutSeconds !== undefined ? { timeoutSeconds: spec.timeoutSeconds } : {}),
    models: spec.models.map((m) => ({
      id: m.id,
      name: m.name ?? `${m.id} (via clawbridge)`,
      reasoning: m.reasoning ?? false,
      input: ["text"],
      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
      contextWindow: m.contextWindow ?? 32768,
      maxTokens: m.maxTokens ?? 4096,
    })),
  };
}

export interface ConfigOptions {
  /** The providers; the first one's first model is the primary unless `primary` says otherwise. */
  providers: ProviderSpec[];
  workspace: string;
  /** `provider/model` of the primary model. */
  primary?: string;
  /** `provider/model` fallbacks, tried in order when the primary fails. */
  fallbacks?: string[];
  /** Merged (deeply, objects only) over the result, for what a later test needs. */
  extra?: Record<string, unknown>;
}

/** An openclaw.json: the providers, the agent's model and workspace, and no update checks or telemetry. */
export function openclawConfig(opts: ConfigOptions): Record<string, unknown> {
  const first = opts.providers[0];
  if (!first?.models[0]) throw new Error("openclawConfig: at least one provider with one model");
  const primary = opts.primary ?? `${first.name ?? "clawbridge"}/${first.models[0].id}`;
  const providers: Record<string, unknown> = {};
  for (const p of opts.providers) providers[p.name ?? "clawbridge"] = providerEntry(p);
  const config = {
    agents: {
      defaults: {
        model: { primary, ...(opts.fallbacks ? { fallbacks: opts.fallbacks } : {}) },
        workspace: opts.workspace,
      },
    },
    models: { mode: "merge", providers },
    update: { checkOnStart: false, auto: { enabled: false } },
    telemetry: { enabled: false },
  };
  return opts.extra ? deepMerge(config, opts.extra) : config;
}

export function writeOpenClawConfig(home: OpenClawHome, config: Record<string, unknown>): void {
  writeFileSync(home.configPath, `${JSON.stringify(config, null, 2)}\n`);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------------------------
// One turn
// ---------------------------------------------------------------------------------------------------------------

export interface TurnOptions {
  /** Default: a fresh id per turn. */
  sessionId?: string;
  /** Kill the turn (its whole process group) after this long. Default 240 s. */
  timeoutMs?: number;
  /** Extra environment for the child (e.g. OPENCLAW_LOG_LEVEL). */
  env?: Record<string, string>;
  /** Extra CLI arguments after the standard ones. */
  args?: string[];
}

export interface TurnResult {
  /** Exit code, null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  /** ANSI colours removed. */
  stderr: string;
  /** The `--json` output, when stdout held one. */
  json: any;
  /** The reply's text payloads, joined with blank lines ("" when none). */
  text: string;
  /** The command line, for messages. */
  command: string;
  /** Processes of the turn still running after it exited (killed then). */
  leftBehind: number[];
}

/** The env var names OpenClaw reads from the parent that could steer a test elsewhere: not passed on. */
const DROPPED_ENV = /^(OPENCLAW_|CLAWHUB_|ANTHROPIC_|OPENAI_|OLLAMA_|npm_)/i;

/**
 * Every process a turn starts inherits `CLAWBRIDGE_E2E_OWNER=<this process>:<turn>`: found again in /proc after it
 * left the turn's process group (OpenClaw starts some of its children detached), and killed.
 */
const OWNER_VAR = "CLAWBRIDGE_E2E_OWNER";
const OWNER = `${process.pid}-${randomBytes(4).toString("hex")}`;
let turns = 0;

/** The child's environment: isolated home, Node 24 first on PATH, nothing that phones out, no colours. */
export function openclawEnv(home: OpenClawHome, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!DROPPED_ENV.test(k)) env[k] = v;
  const loopback = "127.0.0.1,localhost,::1";
  return {
    ...env,
    PATH: `${NODE24_BIN_DIR}${delimiter}${process.env.PATH ?? ""}`,
    HOME: home.root,
    OPENCLAW_HOME: home.root,
    // No update check (https://telemetry.openclaw.ai), no feature statistics, no helper-binary downloads, no mDNS.
    OPENCLAW_NO_AUTO_UPDATE: "1",
    DO_NOT_TRACK: "1",
    CLAWHUB_DISABLE_TELEMETRY: "1",
    OPENCLAW_OFFLINE: "1",
    OPENCLAW_DISABLE_BONJOUR: "1",
    // Its CLI otherwise re-launches itself (to add a node flag) as a detached child in a session of its own, out
    // of reach of our process-group kill. The flag it wants is passed directly instead (runOpenClawTurn).
    OPENCLAW_NO_RESPAWN: "1",
    // Loopback never through a proxy the machine may have configured.
    NO_PROXY: [process.env.NO_PROXY, loopback].filter(Boolean).join(","),
    no_proxy: [process.env.no_proxy, loopback].filter(Boolean).join(","),
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    ...extra,
  };
}

const live = new Set<ChildProcess>();
/** Homes not disposed yet: removed when this process ends (unless $CLAWBRIDGE_E2E_KEEP). */
const homes = new Set<string>();
let exitHookInstalled = false;

/**
 * The children run in process groups of their own, out of reach of a Ctrl-C to the terminal's group: end them, and
 * remove the temp homes, when this process ends, however it ends.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const removeHomes = () => {
    if (!process.env.CLAWBRIDGE_E2E_KEEP) {
      for (const root of homes) {
        try {
          rmSync(root, { recursive: true, force: true, maxRetries: 3 });
        } catch {
          // A process that would not die is still writing there; nothing more to do on the way out.
        }
      }
    }
    homes.clear();
  };
  // Last resort, synchronous: give what was just killed a moment to stop writing into its home.
  process.once("exit", () => {
    if (killLeftovers().length > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    removeHomes();
  });
  // On a signal there is time to wait until they are gone, then die of the same signal.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      void (async () => {
        const deadline = Date.now() + 3000;
        while (killLeftovers().length > 0 && Date.now() < deadline) await sleep(100);
        removeHomes();
      })().finally(() => process.kill(process.pid, signal));
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/**
 * Kills every process a turn of this test process started and that is still running: the process group of each
 * child, and on Linux whatever else carries the turn's mark. Returns the pids it found running. Safe any time.
 */
export function killLeftovers(): number[] {
  const found: number[] = [];
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
      found.push(child.pid);
    killGroup(child, "SIGKILL");
  }
  for (const pid of markedProcesses(`${OWNER}:`)) {
    if (!found.includes(pid)) found.push(pid);
    killPid(pid);
  }
  return found;
}

/** Pids (Linux only) whose environment holds OWNER_VAR with a value starting with `prefix`. */
function markedProcesses(prefix: string): number[] {
  if (process.platform !== "linux") return [];
  const needle = `${OWNER_VAR}=${prefix}`;
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${name}/environ`, "latin1");
      if (environ.startsWith(needle) || environ.includes(`\0${needle}`)) out.push(Number(name));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return out;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

/**
 * Runs `openclaw agent --local --agent main --session-id S --message M --json` in the home's workspace and waits
 * for it. Never rejects for what OpenClaw did (exit code, time-out): the result says, and describeTurn shows it.
 */
export function runOpenClawTurn(
  home: OpenClawHome,
  message: string,
  opts: TurnOptions = {},
): Promise<TurnResult> {
  assertOpenClawInstalled();
  installExitHook();
  const mark = `${OWNER}:${++turns}`;
  const sessionId = opts.sessionId ?? `e2e-${Date.now().toString(36)}`;
  const args = [
    // What OpenClaw's launcher would re-launch itself with (see OPENCLAW_NO_RESPAWN).
    "--disable-warning=ExperimentalWarning",
    OPENCLAW_ENTRY,
    "agent",
    "--local",
    "--agent",
    "main",
    "--session-id",
    sessionId,
    "--message",
    message,
    "--json",
    ...(opts.args ?? []),
  ];
  const command = `${NODE24} ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}`;
  const timeoutMs = opts.timeoutMs ?? 240_000;
  const started = Date.now();
  return new Promise((resolveTurn, reject) => {
    const child = spawn(NODE24, args, {
      cwd: home.workspace,
      env: { ...openclawEnv(home, opts.env), [OWNER_VAR]: mark },
      // Its own process group: a time-out or the end of the turn can end everything it started.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGTERM");
      setTimeout(() => {
        killGroup(child, "SIGKILL");
        for (const pid of markedProcesses(mark)) killPid(pid);
      }, 3000).unref();
    }, timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      live.delete(child);
      reject(e);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      // Whatever it left running (a background exec, a detached helper) goes too.
      killGroup(child, "SIGKILL");
      const leftBehind = markedProcesses(mark);
      for (const pid of leftBehind) killPid(pid);
      live.delete(child);
      const json = parseJsonOutput(stdout);
      const payloads: Array<{ text?: unknown }> = Array.isArray(json?.payloads) ? json.payloads : [];
      const text = payloads
        .map((p) => (typeof p?.text === "string" ? p.text : ""))
        .filter((t) => t.length > 0)
        .join("\n\n");
      resolveTurn({
        code,
        signal,
        timedOut,
        durationMs: Date.now() - started,
        stdout,
        stderr: stripAnsi(stderr),
        json,
        text,
        command,
        leftBehind,
      });
    });
  });
}

/** The JSON document in `--json` output; tolerates log lines before it. */
export function parseJsonOutput(stdout: string): any {
  const trimmed = stdout.trim();
  if (!trimmed) return undefined;
  try {
    return JSON.parse(trimmed);
  } catch {
    // Log lines first: the document starts at the first line that opens an object.
    const at = stdout.search(/^\{/m);
    if (at < 0) return undefined;
    try {
      return JSON.parse(stdout.slice(at));
    } catch {
      return undefined;
    }
  }
}

export function stripAnsi(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
}

// ---------------------------------------------------------------------------------------------------------------
// Messages for failures
// ---------------------------------------------------------------------------------------------------------------

function tail(text: string, max: number): string {
  return text.length <= max ? text : `[... ${text.length - max} characters before ...]\n${text.slice(-max)}`;
}

/** How the turn went, with the end of its stdout and stderr. */
export function describeTurn(turn: TurnResult, max = 6000): string {
  const how = turn.timedOut
    ? `timed out after ${turn.durationMs} ms (killed)`
    : `exited with ${turn.code ?? turn.signal} after ${turn.durationMs} ms`;
  return [
    `openclaw ${how}`,
    `command: ${turn.command}`,
    ...(turn.leftBehind.length
      ? [`processes left running after it exited (killed): ${turn.leftBehind.join(", ")}`]
      : []),
    `reply text: ${JSON.stringify(turn.text)}`,
    turn.json === undefined
      ? `--- stdout ---\n${tail(turn.stdout, max)}`
      : `--- stdout (JSON, meta.systemPromptReport left out) ---\n${tail(JSON.stringify(condensed(turn.json), null, 1), max)}`,
    `--- stderr ---\n${tail(turn.stderr, max)}`,
  ].join("\n");
}

/** The `--json` output without its long report on the system prompt (tool and skill sizes, hashes). */
function condensed(json: any): any {
  if (!isPlainObject(json) || !isPlainObject(json.meta)) return json;
  const { systemPromptReport: _, ...meta } = json.meta;
  return { ...json, meta };
}

/** A short account of what a fake backend received: path, then the last messages of each request. */
export function describeRequests(requests: RecordedRequest[], max = 4000): string {
  const lines = requests.map((r, i) => {
    const msgs: unknown[] = Array.isArray(r.body?.messages) ? r.body.messages : [];
    const last = msgs.slice(-4).map((m) => JSON.stringify(m).slice(0, 600));
    const tools = Array.isArray(r.body?.tools) ? ` tools=${r.body.tools.length}` : "";
    return `#${i + 1} ${r.method} ${r.path}${tools} messages=${msgs.length}${last.length ? `\n    ${last.join("\n    ")}` : ""}`;
  });
  return `--- fake backend requests (${requests.length}) ---\n${tail(lines.join("\n"), max)}`;
}

/** The end of clawbridge's log. */
export function describeGatewayLog(gw: Clawbridge, max = 4000): string {
  return `--- clawbridge log ---\n${tail(gw.logLines().join("\n"), max)}`;
}
