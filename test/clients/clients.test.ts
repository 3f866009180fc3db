import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { claudeCodeEnv, shellExports, writeClaudeSettings } from "../../src/clients/claude-code.js";
import { openclawConfigPath, writeOpenClawConfig } from "../../src/clients/openclaw.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { runCli as run } from "../helpers.js";

const OPTIONS = {
  baseUrl: "http://127.0.0.1:4000/v1",
  apiKey: "sk-local",
  models: [
    { id: "qwen2.5-14b", contextWindow: 32768, maxTokens: 4096 },
    { id: "llava", contextWindow: 16384, maxTokens: 2048, vision: true },
  ],
  fallbacks: ["anthropic/claude-sonnet-4-5"],
};

describe("clawbridge openclaw: the provider merged into OpenClaw's config", () => {
  test("where the config lives: OPENCLAW_CONFIG_PATH, then OPENCLAW_HOME", () => {
    assert.equal(openclawConfigPath({ OPENCLAW_CONFIG_PATH: "/x/c.json", OPENCLAW_HOME: "/h" }), "/x/c.json");
    assert.equal(openclawConfigPath({ OPENCLAW_HOME: "/h" }), "/h/.openclaw/openclaw.json");
  });

  test("merges into a JSON5 file, keeps the user's settings, backs up, and is idempotent", () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-openclaw-"));
    const path = join(dir, ".openclaw", "openclaw.json");
    mkdirSync(join(dir, ".openclaw"));
    writeFileSync(
      path,
      `// my settings
{
  gateway: { port: 18789 },
  models: { providers: { other: { baseUrl: "http://x", models: [] } } },
  agents: { defaults: { workspace: "~/work", model: { primary: "anthropic/claude-opus-4-5" } } },
}
`,
    );
    const dry = writeOpenClawConfig(OPTIONS, { path, dryRun: true });
    assert.equal(dry.written, false);
    assert.match(readFileSync(path, "utf8"), /^\/\/ my settings/, "a dry run leaves the file alone");
    assert.ok(dry.changes.some((c) => c.includes("anthropic/claude-opus-4-5 → clawbridge/qwen2.5-14b")));

    const plan = writeOpenClawConfig(OPTIONS, { path });
    assert.equal(plan.written, true);
    assert.ok(plan.backup && existsSync(plan.backup));
    assert.match(readFileSync(plan.backup, "utf8"), /\/\/ my settings/);
    const written = JSON.parse(readFileSync(path, "utf8"));
    assert.deepEqual(written.gateway, { port: 18789 });
    assert.equal(written.agents.defaults.workspace, "~/work");
    assert.equal(written.models.mode, "merge");
    assert.ok(written.models.providers.other);
    const p = written.models.providers.clawbridge;
    assert.equal(p.baseUrl, "http://127.0.0.1:4000", "no /v1 for anthropic-messages");
    assert.equal(p.api, "anthropic-messages");
    assert.equal(p.apiKey, "sk-local");
    assert.ok(p.timeoutSeconds >= 300, "a timeout that suits local loads");
    assert.deepEqual(
      p.models.map((m: any) => [m.id, m.contextWindow, m.maxTokens, m.input]),
      [
        ["qwen2.5-14b", 32768, 4096, ["text"]],
        ["llava", 16384, 2048, ["text", "image"]],
      ],
    );
    assert.equal(written.agents.defaults.model.primary, "clawbridge/qwen2.5-14b");
    assert.deepEqual(written.agents.defaults.model.fallbacks, ["anthropic/claude-sonnet-4-5"]);

    const again = writeOpenClawConfig(OPTIONS, { path });
    assert.deepEqual(again.changes, []);
    assert.equal(again.written, false, "nothing to do the second time");
    assert.equal(readdirSync(join(dir, ".openclaw")).filter((f) => f.includes(".bak-")).length, 1);
  });

  test("a broken file is reported, not overwritten", () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-openclaw-"));
    const path = join(dir, "openclaw.json");
    writeFileSync(path, "{ models: ");
    assert.throws(() => writeOpenClawConfig(OPTIONS, { path }), /is not valid JSON5/);
    assert.equal(readFileSync(path, "utf8"), "{ models: ");
  });
});

describe("clawbridge claude-code: the environment for Claude Code", () => {
  test("variables, shell exports and a merged settings file", () => {
    const env = claudeCodeEnv({
      baseUrl: "http://127.0.0.1:4000/",
      token: "it's",
      models: { main: "qwen2.5-14b", haiku: "qwen2.5-3b" },
    });
    assert.equal(env.ANTHROPIC_BASE_URL, "http://127.0.0.1:4000");
    assert.equal(env.ANTHROPIC_DEFAULT_HAIKU_MODEL, "qwen2.5-3b");
    assert.equal(env.ANTHROPIC_DEFAULT_SONNET_MODEL, "qwen2.5-14b");
    assert.ok(Number(env.API_TIMEOUT_MS) >= 300_000);
    // no window known: nothing that would make Claude Code assume a wrong one
    assert.equal(env.CLAUDE_CODE_MAX_CONTEXT_TOKENS, undefined);
    assert.equal(env.CLAUDE_CODE_MAX_OUTPUT_TOKENS, undefined);
    const sized = claudeCodeEnv({
      baseUrl: "http://127.0.0.1:4000",
      token: "t",
      models: { main: "qwen2.5-14b" },
      window: { contextWindow: 32768, maxOutputTokens: 4096 },
    });
    assert.equal(sized.CLAUDE_CODE_MAX_CONTEXT_TOKENS, "32768");
    assert.equal(sized.CLAUDE_CODE_MAX_OUTPUT_TOKENS, "4096");
    assert.match(shellExports(env), /^export ANTHROPIC_AUTH_TOKEN='it'\\''s'$/m);

    const dir = mkdtempSync(join(tmpdir(), "cb-claude-"));
    const path = join(dir, "settings.json");
    writeFileSync(path, JSON.stringify({ theme: "dark", env: { FOO: "1" } }));
    const out = writeClaudeSettings(env, { path });
    assert.equal(out.changed, true);
    const settings = JSON.parse(readFileSync(path, "utf8"));
    assert.equal(settings.theme, "dark");
    assert.equal(settings.env.FOO, "1");
    assert.equal(settings.env.ANTHROPIC_MODEL, "qwen2.5-14b");
    assert.equal(writeClaudeSettings(env, { path }).changed, false);
  });
});

describe("the openclaw and claude-code commands", () => {
  test("write OpenClaw's provider from the served models, and print Claude Code's environment", async () => {
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:14b" }, { name: "qwen2.5:3b" }] });
    const dir = mkdtempSync(join(tmpdir(), "cb-clients-"));
    const config = join(dir, "clawbridge.yaml");
    writeFileSync(
      config,
      `
server: { port: 4123, master_key: sk-test }
backends:
  ollama: { kind: ollama, url: "${fake.url}", discover: false }
models:
  claude-sonnet-4-5: { backend: ollama, model: "qwen2.5:14b", context_window: 32768, max_output_tokens: 4096 }
  claude-haiku-4-5: { backend: ollama, model: "qwen2.5:3b", context_window: 16384 }
`,
    );
    try {
      const file = join(dir, "openclaw.json");
      const r = await run([
        "openclaw",
        "--config",
        config,
        "--file",
        file,
        "--fallback",
        "anthropic/claude-sonnet-4-5",
      ]);
      assert.equal(r.code, 0, r.out);
      const written = JSON.parse(readFileSync(file, "utf8"));
      const p = written.models.providers.clawbridge;
      assert.equal(p.baseUrl, "http://127.0.0.1:4123");
      assert.equal(p.apiKey, "sk-test");
      assert.deepEqual(
        p.models.map((m: any) => [m.id, m.contextWindow, m.maxTokens]),
        [
          ["claude-sonnet-4-5", 32768, 4096],
          ["claude-haiku-4-5", 16384, 4096],
        ],
      );
      assert.equal(written.agents.defaults.model.primary, "clawbridge/claude-sonnet-4-5");
      const again = await run([
        "openclaw",
        "--config",
        config,
        "--file",
        file,
        "--fallback",
        "anthropic/claude-sonnet-4-5",
      ]);
      assert.match(again.out, /nothing to change/);

      const cc = await run(["claude-code", "--config", config]);
      assert.equal(cc.code, 0, cc.out);
      assert.match(cc.out, /^export ANTHROPIC_BASE_URL='http:\/\/127.0.0.1:4123'$/m);
      assert.match(cc.out, /^export ANTHROPIC_AUTH_TOKEN='sk-test'$/m);
      assert.match(cc.out, /^export ANTHROPIC_DEFAULT_HAIKU_MODEL='claude-haiku-4-5'$/m);
      assert.match(cc.out, /^export ANTHROPIC_MODEL='claude-sonnet-4-5'$/m);
      // the main model's served window and output limit (min of max_output_tokens and a quarter of the window)
      assert.match(cc.out, /^export CLAUDE_CODE_MAX_CONTEXT_TOKENS='32768'$/m);
      assert.match(cc.out, /^export CLAUDE_CODE_MAX_OUTPUT_TOKENS='4096'$/m);
      // a Claude name: Claude Code uses its own catalog's window for it, and the user is told
      assert.match(
        cc.out,
        /^warning: Claude Code takes its own window for the Claude model name claude-sonnet-4-5/m,
      );

      const haiku = await run(["claude-code", "--config", config, "--model", "claude-haiku-4-5"]);
      assert.equal(haiku.code, 0, haiku.out);
      assert.match(haiku.out, /^export ANTHROPIC_MODEL='claude-haiku-4-5'$/m);
      assert.match(haiku.out, /^export CLAUDE_CODE_MAX_CONTEXT_TOKENS='16384'$/m);
      assert.match(haiku.out, /^export CLAUDE_CODE_MAX_OUTPUT_TOKENS='4096'$/m);

      const unknown = await run(["claude-code", "--config", config, "--model", "some-other"]);
      assert.equal(unknown.code, 0, unknown.out);
      assert.doesNotMatch(unknown.out, /CLAUDE_CODE_MAX_CONTEXT_TOKENS/);
      assert.match(unknown.out, /^warning: some-other is not in the served list/m);
    } finally {
      await fake.close();
    }
  });
});
