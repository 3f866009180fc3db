/**
 * Running the real Claude Code CLI against clawbridge, for the end-to-end suite (test/e2e/claude-code.e2e.ts).
 *
 * Claude Code (npm `@anthropic-ai/claude-code`, pinned in scripts/e2e-setup.mjs) is a native binary installed in
 * `.e2e/claude-code/`. Each run is `claude -p PROMPT --output-format json` as a child process in its own process
 * group, with a temp HOME and CLAUDE_CONFIG_DIR (no global settings read or written), every variable that could
 * steer it elsewhere dropped, and everything but the API call switched off (telemetry, updates, error reports).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { E2E_DIR } from "./openclaw.js";

export const CLAUDE_CODE_DIR = join(E2E_DIR, "claude-code");
/** The package's `bin` (its postinstall puts the platform's native binary there). */
export const CLAUDE_BIN = join(
  CLAUDE_CODE_DIR,
  "node_modules",
  "@anthropic-ai",
  "claude-code",
  "bin",
  "claude.exe",
);

/** Throws, saying how to fix it, unless scripts/e2e-setup.mjs has installed Claude Code. */
export function assertClaudeCodeInstalled(): { claudeCode: string } {
  const marker = join(CLAUDE_CODE_DIR, "installed.json");
  const missing = [marker, CLAUDE_BIN].filter((p) => !existsSync(p));
  if (missing.length) {
    throw new Error(
      `Claude Code is not installed for the e2e suite (missing ${missing.join(", ")}): run \`node scripts/e2e-setup.mjs\``,
    );
  }
  return JSON.parse(readFileSync(marker, "utf8"));
}

export interface ClaudeHome {
  /** HOME for the child; CLAUDE_CONFIG_DIR is `<root>/.claude`. */
  root: string;
  /** The child's working directory (the project Claude Code works in). */
  project: string;
  dispose(): void;
}

export function createClaudeHome(label = "claude"): ClaudeHome {
  const root = mkdtempSync(join(tmpdir(), `clawbridge-e2e-${label}-`));
  const project = join(root, "project");
  mkdirSync(join(root, ".claude"), { recursive: true });
  mkdirSync(project, { recursive: true });
  live.homes.add(root);
  return {
    root,
    project,
    dispose() {
      live.homes.delete(root);
      if (process.env.CLAWBRIDGE_E2E_KEEP) process.stderr.write(`e2e: kept ${root}\n`);
      else rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Variables Claude Code reads that could point it elsewhere or change how it behaves: never passed on. */
const DROPPED_ENV =
  /^(ANTHROPIC_|CLAUDE_|CLAUDECODE|DISABLE_|MAX_THINKING|API_TIMEOUT|OTEL_|AWS_|GOOGLE_|VERTEX_|npm_)/i;

/**
 * The child's environment: `vars` (what `clawbridge claude-code` prints), an isolated home, and nothing that
 * phones out. The names are Claude Code 2.1.332's own (found in its binary): non-essential traffic, telemetry,
 * the auto-updater and error reporting off.
 */
export function claudeEnv(home: ClaudeHome, vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!DROPPED_ENV.test(k)) env[k] = v;
  const loopback = "127.0.0.1,localhost,::1";
  return {
    ...env,
    HOME: home.root,
    CLAUDE_CONFIG_DIR: join(home.root, ".claude"),
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_AUTOUPDATER: "1",
    DISABLE_ERROR_REPORTING: "1",
    NO_PROXY: [process.env.NO_PROXY, loopback].filter(Boolean).join(","),
    no_proxy: [process.env.no_proxy, loopback].filter(Boolean).join(","),
    NO_COLOR: "1",
    ...vars,
  };
}

export interface ClaudeRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** The `--output-format json` document: `{type: "result", is_error, result, ...}`. */
  json: any;
  command: string;
}

const live = { children: new Set<ChildProcess>(), homes: new Set<string>() };
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once("exit", () => {
    killClaudeLeftovers();
    if (!process.env.CLAWBRIDGE_E2E_KEEP)
      for (const root of live.homes) rmSync(root, { recursive: true, force: true });
  });
}

/** Kills the process group of every run still going. Safe any time. */
export function killClaudeLeftovers(): void {
  for (const child of live.children) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
}

/**
 * `claude -p PROMPT --output-format json ARGS...` in the home's project folder. Never rejects for what Claude Code
 * did (exit code, time-out): the result says.
 */
export function runClaude(
  home: ClaudeHome,
  prompt: string,
  vars: Record<string, string>,
  opts: { args?: string[]; timeoutMs?: number } = {},
): Promise<ClaudeRun> {
  assertClaudeCodeInstalled();
  hook();
  const args = ["-p", prompt, "--output-format", "json", ...(opts.args ?? [])];
  const command = `claude ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}`;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(CLAUDE_BIN, args, {
      cwd: home.project,
      env: claudeEnv(home, vars),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.children.add(child);
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
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      live.children.delete(child);
      fail(e);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // The group is gone: nothing left behind.
      }
      live.children.delete(child);
      let json: any;
      try {
        json = JSON.parse(stdout.trim());
      } catch {
        json = undefined;
      }
      done({ code, signal, timedOut, durationMs: Date.now() - started, stdout, stderr, json, command });
    });
  });
}

export function describeRun(run: ClaudeRun, max = 4000): string {
  const cut = (t: string) => (t.length <= max ? t : `[...]${t.slice(-max)}`);
  const how = run.timedOut
    ? `timed out after ${run.durationMs} ms (killed)`
    : `exited with ${run.code ?? run.signal} after ${run.durationMs} ms`;
  return [
    `claude ${how}`,
    `command: ${run.command}`,
    `--- stdout ---\n${cut(run.stdout)}`,
    `--- stderr ---\n${cut(run.stderr)}`,
  ].join("\n");
}
