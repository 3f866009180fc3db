/**
 * `clawbridge launch` with the real clients (installed by scripts/e2e-setup.mjs), and the real Codex CLI on the
 * Responses surface:
 * - `clawbridge launch claude -- -p … --output-format json`: Claude Code headless through a gateway started for the
 *   session, which is gone afterwards, and nothing the user had in HOME changed;
 * - `codex exec` with the provider launch gives it (wire_api = "responses"): the fake model asks for a shell command,
 *   Codex runs it and the model answers with its output; what Codex posted to /v1/responses is recorded (a loopback
 *   proxy in front of the gateway) and its tool list checked;
 * - `clawbridge launch codex -- exec …`: the same turn through launch.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import http from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { codexOverrides } from "../../src/clients/codex.js";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer, RecordedRequest } from "../fakes/script.js";
import { oneBackend, startGateway } from "../helpers.js";
import { CLAUDE_BIN } from "./claude-code.js";
import { E2E_DIR, REPO_ROOT } from "./openclaw.js";

// keep in step with scripts/e2e-setup.mjs
const CODEX_JS = join(E2E_DIR, "codex", "node_modules", "@openai", "codex", "bin", "codex.js");

/** A folder holding `claude` and `codex` as npm's global install names them, and node. */
function clientBin(): string {
  for (const f of [CLAUDE_BIN, CODEX_JS]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`node scripts/e2e-setup.mjs\``);
  }
  const bin = mkdtempSync(join(tmpdir(), "clawbridge-e2e-bin-"));
  symlinkSync(CLAUDE_BIN, join(bin, "claude"));
  writeFileSync(join(bin, "codex"), `#!/bin/sh\nexec "${process.execPath}" "${CODEX_JS}" "$@"\n`, {
    mode: 0o755,
  });
  return bin;
}

/** Every file under `dir` with its contents. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.set(join(e.parentPath, e.name), readFileSync(join(e.parentPath, e.name), "utf8"));
  return out;
}

function refused(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port), u.hostname);
    s.on("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.on("error", () => resolve(true));
  });
}

/** Runs a command to its end (stdin closed, its own process group killed at the deadline). */
function run(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs?: number }) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const CLI = ["--import", import.meta.resolve("tsx"), join(REPO_ROOT, "src", "cli", "main.ts")];

/** The environment of a launched client: a temp HOME, the clients first on PATH, nothing of the caller's keys. */
function clientEnv(home: string, bin: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(ANTHROPIC_|CLAUDE_|OPENAI_|CODEX_|CLAWBRIDGE_|npm_)/i.test(k)) env[k] = v;
  return {
    ...env,
    HOME: home,
    PATH: [bin, dirname(process.execPath), env.PATH].join(delimiter),
    DISABLE_TELEMETRY: "1",
    DISABLE_AUTOUPDATER: "1",
    DISABLE_ERROR_REPORTING: "1",
    NO_PROXY: "127.0.0.1,localhost",
    no_proxy: "127.0.0.1,localhost",
  };
}

/** The fake model of the Codex turns: asks for `echo hi-from-codex`, then says what it printed. */
function shellModel(req: RecordedRequest) {
  const messages = (req.body?.messages ?? []) as Array<{ role: string; content: string }>;
  const result = messages.findLast((m) => m.role === "tool");
  if (result)
    return { text: `The command printed: ${/hi-from-codex/.test(result.content) ? "hi-from-codex" : "?"}` };
  return { toolCalls: [{ name: "exec_command", arguments: { cmd: "echo hi-from-codex" } }] };
}

describe("clawbridge launch and Codex, real clients", () => {
  let fake: FakeServer;
  let dir: string;
  let bin: string;
  before(async () => {
    bin = clientBin();
    fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }], reply: shellModel });
    dir = mkdtempSync(join(tmpdir(), "clawbridge-e2e-launch-"));
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(bin, { recursive: true, force: true });
  });

  function config(name: string): string {
    const file = join(dir, name);
    writeFileSync(
      file,
      `backends:\n  b: { kind: ollama, url: "${fake.url}" }\nmodels:\n  local-model: { backend: b, model: "qwen2.5:7b", context_window: 32768 }\nserver: { port: 0 }\n`,
    );
    return file;
  }

  function home(): string {
    const h = mkdtempSync(join(dir, "home-"));
    mkdirSync(join(h, ".claude"));
    writeFileSync(join(h, ".claude", "settings.json"), '{"env":{"MINE":"1"}}\n');
    mkdirSync(join(h, ".codex"));
    writeFileSync(join(h, ".codex", "config.toml"), 'model = "gpt-5.5"\n');
    mkdirSync(join(h, "project"));
    return h;
  }

  test("launch claude -- -p: Claude Code answers through a gateway started for the session, which is gone after; HOME's files unchanged", async () => {
    fake.setReply({ text: "Hello from the fake." });
    try {
      const h = home();
      const before = snapshot(h);
      const r = await run(
        process.execPath,
        [
          ...CLI,
          "launch",
          "claude",
          "--config",
          config("claude.yaml"),
          "--",
          "-p",
          "Say hi",
          "--output-format",
          "json",
        ],
        { env: clientEnv(h, bin), cwd: join(h, "project") },
      );
      const context = `exit ${r.code} in ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
      assert.equal(r.code, 0, context);
      const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      assert.equal(result.is_error, false, context);
      assert.equal(result.result, "Hello from the fake.", context);
      const url = /started for this session at (http:\/\/\S+)/.exec(r.stderr)?.[1];
      assert.ok(url, context);
      assert.ok(await refused(url), "the session's gateway still listens");
      // what was there before is there unchanged (Claude Code adds its own state files: its business)
      const after = snapshot(h);
      for (const [f, text] of before) assert.equal(after.get(f), text, `${f} changed`);
      process.stderr.write(`e2e: launch claude -p took ${r.ms} ms\n`);
    } finally {
      fake.setReply(shellModel);
    }
  });

  test("codex exec (wire_api responses) runs the shell command the model asks for and answers with its output", async () => {
    const gw = await startGateway(oneBackend("ollama", fake.url, "qwen2.5:7b", "", "local-model"));
    // a loopback proxy in front of the gateway keeps what Codex posts
    const posted: Array<{ path: string; body: any }> = [];
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        try {
          posted.push({ path: req.url ?? "", body: JSON.parse(body.toString("utf8")) });
        } catch {
          posted.push({ path: req.url ?? "", body: body.toString("utf8") });
        }
        const up = http.request(
          `${gw.url}${req.url}`,
          { method: req.method, headers: { ...req.headers, host: new URL(gw.url).host } },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.end(body);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    try {
      const h = home();
      const r = await run(
        join(bin, "codex"),
        [
          ...codexOverrides({ baseUrl: proxyUrl, model: "local-model", contextWindow: 32768 }),
          "exec",
          "--skip-git-repo-check",
          "-s",
          "danger-full-access",
          "Run echo hi-from-codex and tell me what it printed",
        ],
        { env: { ...clientEnv(h, bin), CLAWBRIDGE_API_KEY: "x" }, cwd: join(h, "project") },
      );
      const context = `exit ${r.code} in ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n--- posted\n${JSON.stringify(posted).slice(0, 4000)}`;
      assert.equal(r.code, 0, context);
      assert.match(r.stdout, /The command printed: hi-from-codex/, context);
      assert.match(r.stderr, /echo hi-from-codex[\s\S]*succeeded/, context);
      const turns = posted.filter((p) => p.path.startsWith("/v1/responses"));
      assert.equal(turns.length, 2, context);
      const tools = (
        turns[0]!.body.tools as Array<{ type: string; name?: string; tools?: Array<{ name: string }> }>
      ).map((t) =>
        t.type === "namespace"
          ? `namespace ${t.name}(${t.tools?.map((i) => i.name).join(",")})`
          : `${t.type} ${t.name}`,
      );
      process.stderr.write(`e2e: codex exec took ${r.ms} ms; its tools: ${tools.join("; ")}\n`);
      assert.ok(tools.includes("function exec_command"), tools.join("; "));
      // the second request carries the call and Codex's output of it
      const input = turns[1]!.body.input as Array<{ type?: string; output?: string }>;
      const out = input.find((i) => i.type === "function_call_output");
      assert.match(String(out?.output), /hi-from-codex/);
      // the backend saw the namespaced tools flattened to functions, and no hosted tool
      const backendTools = (fake.requests.at(-1)!.body.tools as Array<{ function: { name: string } }>).map(
        (t) => t.function.name,
      );
      assert.ok(backendTools.includes("exec_command"));
      if (tools.some((t) => t.startsWith("namespace multi_agent_v1")))
        assert.ok(backendTools.includes("spawn_agent"));
    } finally {
      proxy.close();
      await gw.close();
    }
  });

  test("launch codex -- exec: the same turn through launch", async () => {
    const h = home();
    const before = snapshot(h);
    const r = await run(
      process.execPath,
      [
        ...CLI,
        "launch",
        "codex",
        "-c",
        config("codex.yaml"),
        "--",
        "exec",
        "--skip-git-repo-check",
        "-s",
        "danger-full-access",
        "Run echo hi-from-codex",
      ],
      { env: clientEnv(h, bin), cwd: join(h, "project") },
    );
    const context = `exit ${r.code} in ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
    assert.equal(r.code, 0, context);
    assert.match(r.stdout, /The command printed: hi-from-codex/, context);
    assert.match(r.stderr, /provider: clawbridge/, context);
    const url = /started for this session at (http:\/\/\S+)/.exec(r.stderr)?.[1];
    assert.ok(url && (await refused(url)), context);
    assert.equal(
      snapshot(h).get(join(h, ".codex", "config.toml")),
      before.get(join(h, ".codex", "config.toml")),
    );
    process.stderr.write(`e2e: launch codex exec took ${r.ms} ms\n`);
  });
});
