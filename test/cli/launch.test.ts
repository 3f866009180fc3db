/**
 * `clawbridge launch`: the CLI run from the sources, with a stand-in client on PATH (a small Node script named
 * `claude` / `openclaw` / `codex` that reports what it was given and makes one request through the gateway it was
 * pointed at), a fake backend behind the gateway, and a temp HOME. The real clients run in test/e2e/launch.e2e.ts.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer } from "../fakes/script.js";
import { runCli, startGateway } from "../helpers.js";

/** A stand-in client: prints one JSON line of what it got, and exits with the code after `--exit`. */
const CLIENT = `#!${process.execPath}
const fs = require("node:fs");
(async () => {
  const e = process.env;
  const out = { argv: process.argv.slice(2), env: {} };
  for (const k of ["ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_MODEL", "CLAWBRIDGE_API_KEY", "OPENCLAW_CONFIG_PATH", "CLAUDE_CODE_MAX_CONTEXT_TOKENS"])
    if (e[k] !== undefined) out.env[k] = e[k];
  if (e.OPENCLAW_CONFIG_PATH) out.openclawConfig = JSON.parse(fs.readFileSync(e.OPENCLAW_CONFIG_PATH, "utf8"));
  if (e.ANTHROPIC_BASE_URL) {
    const res = await fetch(e.ANTHROPIC_BASE_URL + "/v1/messages", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + e.ANTHROPIC_AUTH_TOKEN, "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: e.ANTHROPIC_MODEL, max_tokens: 50, messages: [{ role: "user", content: "hi" }] }),
    });
    const body = await res.json();
    out.status = res.status;
    out.text = body.content?.[0]?.text ?? JSON.stringify(body);
  }
  console.log("CLIENT " + JSON.stringify(out));
  const i = process.argv.indexOf("--exit");
  process.exit(i > 0 ? Number(process.argv[i + 1]) : 0);
})();
`;

function binWith(...names: string[]): string {
  const bin = mkdtempSync(join(tmpdir(), "clawbridge-launch-bin-"));
  for (const n of names) {
    writeFileSync(join(bin, n), CLIENT);
    chmodSync(join(bin, n), 0o755);
  }
  return bin;
}

function clientReport(out: string): any {
  const line = out.split("\n").find((l) => l.startsWith("CLIENT "));
  assert.ok(line, `the client did not run:\n${out}`);
  return JSON.parse(line.slice(7));
}

/** Every file under `dir` with its contents. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out[join(e.parentPath, e.name)] = readFileSync(join(e.parentPath, e.name), "utf8");
  }
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

describe("clawbridge launch", () => {
  let fake: FakeServer;
  let dir: string;
  before(async () => {
    fake = await startOllamaFake({
      models: [{ name: "qwen2.5:7b" }, { name: "qwen2.5:14b" }],
      reply: { text: "Hello from the fake." },
    });
    dir = mkdtempSync(join(tmpdir(), "clawbridge-launch-"));
  });
  after(async () => {
    await fake.close();
  });

  function config(name: string, server = "server: { port: 0 }"): string {
    const file = join(dir, name);
    writeFileSync(
      file,
      `backends:\n  b: { kind: ollama, url: "${fake.url}" }\nmodels:\n  claude-sonnet-4-5: { backend: b, model: "qwen2.5:7b", context_window: 8192 }\n  qwen-big: { backend: b, model: "qwen2.5:14b", context_window: 40000 }\n${server}\n`,
    );
    return file;
  }

  function home(): string {
    const h = mkdtempSync(join(tmpdir(), "clawbridge-launch-home-"));
    mkdirSync(join(h, ".claude"));
    writeFileSync(join(h, ".claude", "settings.json"), '{"env":{"KEEP":"1"}}\n');
    return h;
  }

  test("claude: a gateway started for the session, the client pointed at it by its environment, its arguments and exit code passed through, nothing left behind", async () => {
    const h = home();
    const before = snapshot(h);
    const { code, out } = await runCli(
      [
        "launch",
        "claude",
        "--config",
        config("a.yaml"),
        "--",
        "-p",
        "say hi",
        "--output-format",
        "json",
        "--exit",
        "3",
      ],
      { env: { ...process.env, HOME: h, PATH: binWith("claude") } },
    );
    assert.equal(code, 3, out);
    const r = clientReport(out);
    assert.deepEqual(r.argv, ["-p", "say hi", "--output-format", "json", "--exit", "3"]);
    assert.equal(r.status, 200, out);
    assert.equal(r.text, "Hello from the fake.");
    assert.equal(r.env.ANTHROPIC_MODEL, "claude-sonnet-4-5");
    assert.match(
      out,
      /Claude Code on claude-sonnet-4-5, through a clawbridge started for this session at http:\/\/127\.0\.0\.1:\d+/,
    );
    // the served window (8192) is below what Claude Code needs: said, in words
    assert.match(out, /claude-sonnet-4-5 serves a 8192-token window, but Claude Code needs at least 32768/);
    assert.match(
      out,
      /Claude Code takes its own window for the Claude model name claude-sonnet-4-5 \(200k\)/,
    );
    assert.match(out, /the gateway's log is .*gateway\.log/);
    assert.ok(await refused(r.env.ANTHROPIC_BASE_URL), "the session's gateway still listens");
    assert.deepEqual(snapshot(h), before, "HOME changed");
  });

  test("a gateway already listening on the configured port is used and left running; --model picks a served model, an unknown one is refused with the list", async () => {
    const gw = await startGateway(readFileSync(config("b.yaml"), "utf8"));
    try {
      const port = new URL(gw.url).port;
      const file = config("c.yaml", `server: { port: ${port} }`);
      const env = { ...process.env, HOME: home(), PATH: binWith("claude") };
      const ok = await runCli(["launch", "claude", "-c", file, "--model", "qwen-big"], { env });
      assert.equal(ok.code, 0, ok.out);
      const r = clientReport(ok.out);
      assert.equal(r.env.ANTHROPIC_BASE_URL, gw.url);
      assert.equal(r.env.ANTHROPIC_MODEL, "qwen-big");
      assert.equal(r.env.CLAUDE_CODE_MAX_CONTEXT_TOKENS, "40000");
      assert.equal(r.text, "Hello from the fake.");
      assert.match(ok.out, /through the clawbridge already running at/);
      assert.doesNotMatch(ok.out, /window/, "40000 tokens is enough: no warning");
      assert.equal(await refused(gw.url), false, "the running gateway was stopped");

      const bad = await runCli(["launch", "claude", "-c", file, "--model", "gpt-9"], { env });
      assert.equal(bad.code, 2);
      assert.match(bad.out, /model gpt-9 is not served; served: claude-sonnet-4-5, qwen-big/);
      assert.doesNotMatch(bad.out, /CLIENT/);
    } finally {
      await gw.close();
    }
  });

  test("a client not on PATH: exit 127 and the npm package that installs it", async () => {
    const empty = mkdtempSync(join(tmpdir(), "clawbridge-launch-empty-"));
    // each client's file names its package; one of them is enough to show the path through
    for (const [client, pkg] of [["codex", "@openai/codex"]]) {
      const { code, out } = await runCli(["launch", client!, "-c", config("d.yaml")], {
        env: { ...process.env, HOME: home(), PATH: empty },
      });
      assert.equal(code, 127, out);
      assert.ok(out.includes(`is not on PATH. Install it with: npm install -g ${pkg}`), out);
      assert.doesNotMatch(out, /\n\s+at /, "no stack trace");
    }
    const unknown = await runCli(["launch", "cursor"], { env: { ...process.env, PATH: empty } });
    assert.equal(unknown.code, 2);
    assert.match(unknown.out, /launch knows claude, openclaw, codex; not 'cursor'/);
  });

  test("codex: a responses provider given by -c overrides and its key by environment", async () => {
    const { code, out } = await runCli(
      ["launch", "codex", "-c", config("e.yaml"), "-m", "qwen-big", "--", "exec", "hi"],
      { env: { ...process.env, HOME: home(), PATH: binWith("codex") } },
    );
    assert.equal(code, 0, out);
    const r = clientReport(out);
    const url = /through a clawbridge started for this session at (http:\/\/\S+)/.exec(out)?.[1];
    assert.ok(url, out);
    assert.deepEqual(r.argv, [
      "-c",
      'model_provider="clawbridge"',
      "-c",
      `model_providers.clawbridge={name="clawbridge",base_url="${url}/v1",wire_api="responses",env_key="CLAWBRIDGE_API_KEY",stream_idle_timeout_ms=600000}`,
      "-c",
      'model="qwen-big"',
      "-c",
      'web_search="disabled"',
      "-c",
      "model_context_window=40000",
      "exec",
      "hi",
    ]);
    assert.equal(r.env.CLAWBRIDGE_API_KEY, "clawbridge-local");
  });

  test("openclaw: a copy of the user's config with the provider merged in, the user's file unchanged", async () => {
    const h = home();
    mkdirSync(join(h, ".openclaw"));
    const own =
      '{\n  // mine\n  "gateway": { "port": 18789 },\n  "agents": { "defaults": { "workspace": "/w" } }\n}\n';
    writeFileSync(join(h, ".openclaw", "openclaw.json"), own);
    const before = snapshot(h);
    const { code, out } = await runCli(
      ["launch", "openclaw", "-c", config("f.yaml"), "--model", "qwen-big"],
      {
        env: { ...process.env, HOME: h, PATH: binWith("openclaw") },
      },
    );
    assert.equal(code, 0, out);
    const r = clientReport(out);
    assert.ok(!r.env.OPENCLAW_CONFIG_PATH.startsWith(h), "the config read is not the user's");
    const c = r.openclawConfig;
    assert.equal(c.gateway.port, 18789);
    assert.equal(c.agents.defaults.workspace, "/w");
    assert.equal(c.agents.defaults.model.primary, "clawbridge/qwen-big");
    const provider = c.models.providers.clawbridge;
    assert.equal(provider.api, "anthropic-messages");
    assert.deepEqual(provider.models.map((m: any) => [m.id, m.contextWindow]).slice(0, 2), [
      ["claude-sonnet-4-5", 8192],
      ["qwen-big", 40000],
    ]);
    assert.deepEqual(snapshot(h), before);
  });
});
