/**
 * End to end with the real Claude Code CLI: `claude -p … --output-format json` (base URL = clawbridge, the
 * environment `clawbridge claude-code` prints) → clawbridge (in this process) → a fake backend. Needs
 * `node scripts/e2e-setup.mjs` first (`npm run test:e2e` runs it). Each run takes a few seconds.
 *
 * Three backends: an Ollama model without thinking (Claude Code always asks for thinking: the fake refuses `think`
 * for it with Ollama's real 400, so clawbridge must not send it), an Ollama model with thinking, and an
 * OpenAI-compatible (llama.cpp) model. On each: a plain answer, and a tool round trip through Claude Code's own
 * Read tool. Every request that reached clawbridge is recorded: a path it does not serve fails the test.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, RecordedRequest, ScriptedReply } from "../fakes/script.js";
import {
  assertClaudeCodeInstalled,
  type ClaudeHome,
  type ClaudeRun,
  createClaudeHome,
  describeRun,
  killClaudeLeftovers,
  runClaude,
} from "./claude-code.js";
import { type Clawbridge, describeGatewayLog, describeRequests, startClawbridge } from "./openclaw.js";

const RUN_TIMEOUT_MS = 90_000;
const TEST_TIMEOUT_MS = RUN_TIMEOUT_MS + 30_000;
const ALIAS = "local-model";
const CONTEXT = 32768;

type Backend = "ollama" | "ollama-thinking" | "llamacpp";

interface Setup {
  fake: FakeServer;
  gw: Clawbridge;
  home: ClaudeHome;
  /** What `clawbridge claude-code` printed, as variables. */
  vars: Record<string, string>;
  /** Every request that reached clawbridge: method, path, status. */
  seen: Array<{ method: string; path: string; status: number }>;
  chats(): RecordedRequest[];
  explain(run: ClaudeRun): string;
}

/** `export NAME='value'` lines (what `clawbridge claude-code` prints) as an object. */
function parseExports(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const m of text.matchAll(/^export ([A-Z0-9_]+)='((?:[^']|'\\'')*)'$/gm))
    vars[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  return vars;
}

async function setUp(backend: Backend, label: string): Promise<Setup> {
  let fake: FakeServer;
  let kind: string;
  let model: string;
  let chatPath: string;
  if (backend === "llamacpp") {
    fake = await startOpenAICompatFake({ flavor: "llamacpp", contextLength: CONTEXT });
    kind = "kind: openai-compat\n    flavor: llamacpp";
    model = "fake-model";
    chatPath = "/v1/chat/completions";
  } else {
    const thinks = backend === "ollama-thinking";
    model = thinks ? "qwen3:8b" : "qwen2.5-coder:7b";
    fake = await startOllamaFake({
      models: [
        {
          name: model,
          numCtx: CONTEXT,
          ...(thinks ? { capabilities: ["completion", "tools", "thinking"] } : {}),
        },
      ],
    });
    kind = "kind: ollama";
    chatPath = "/api/chat";
  }
  const yaml = `
backends:
  b:
    ${kind}
    url: "${fake.url}"
models:
  ${ALIAS}: { backend: b, model: "${model}", context_window: ${CONTEXT} }
`;
  const gw = await startClawbridge(yaml);
  const seen: Setup["seen"] = [];
  gw.server.prependListener("request", (req, res) => {
    res.once("finish", () =>
      seen.push({ method: req.method ?? "?", path: req.url ?? "?", status: res.statusCode }),
    );
  });
  const home = createClaudeHome(label);
  // The environment as a user gets it: `clawbridge claude-code` against the same config.
  const cliConfig = join(home.root, "clawbridge.yaml");
  writeFileSync(cliConfig, `server: { port: ${new URL(gw.url).port}, master_key: ${gw.apiKey} }\n${yaml}`);
  const printed = spawnSync(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), "src/cli/main.ts", "claude-code", "--config", cliConfig],
    { encoding: "utf8" },
  );
  assert.equal(printed.status, 0, `clawbridge claude-code failed: ${printed.stdout}${printed.stderr}`);
  const vars = parseExports(printed.stdout);
  assert.equal(vars.ANTHROPIC_BASE_URL, gw.url, printed.stdout);
  assert.equal(vars.ANTHROPIC_MODEL, ALIAS, printed.stdout);
  const chats = () => fake.requests.filter((r) => r.method === "POST" && r.path.split("?")[0] === chatPath);
  return {
    fake,
    gw,
    home,
    vars,
    seen,
    chats,
    explain: (run) =>
      [
        describeRun(run),
        `--- requests to clawbridge ---\n${seen.map((s) => `${s.method} ${s.path} → ${s.status}`).join("\n")}`,
        describeRequests(chats()),
        describeGatewayLog(gw),
        `home: ${home.root}`,
      ].join("\n"),
  };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  if (!s) return;
  killClaudeLeftovers();
  await s.gw.close();
  await s.fake.close();
  s.home.dispose();
}

/** The tool message's text in a backend request (Ollama /api/chat or OpenAI chat/completions), if any. */
function toolResultText(body: any): string | undefined {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const tool = messages.find((m) => m?.role === "tool");
  if (!tool) return undefined;
  if (typeof tool.content === "string") return tool.content;
  if (Array.isArray(tool.content)) return tool.content.map((p: any) => p?.text ?? "").join("");
  return JSON.stringify(tool.content);
}

/** Whether a backend request carries the agent's tools (the main loop, not a side request). */
function hasTools(body: any): boolean {
  return Array.isArray(body?.tools) && body.tools.length > 0;
}

/** Every request reached a route clawbridge serves and none failed. */
function assertAllServed(s: Setup, run: ClaudeRun): void {
  const bad = s.seen.filter((r) => r.status >= 400);
  assert.deepEqual(bad, [], `requests clawbridge did not answer with success\n${s.explain(run)}`);
  assert.ok(
    s.seen.some((r) => r.method === "POST" && r.path.startsWith("/v1/messages")),
    `Claude Code never posted to /v1/messages\n${s.explain(run)}`,
  );
}

/** What the thinking request to the backend looked like for this backend. */
function assertThinkingAsTheModelCan(s: Setup, backend: Backend, run: ClaudeRun): void {
  if (backend === "llamacpp") return;
  const thinks = s.chats().map((r) => r.body?.think);
  if (backend === "ollama")
    assert.ok(
      thinks.every((t) => t === undefined || t === false),
      `think was sent to a model without thinking: ${JSON.stringify(thinks)}\n${s.explain(run)}`,
    );
  else
    assert.ok(
      thinks.some((t) => t !== undefined && t !== false),
      `Claude Code asked for thinking but the thinking model was not asked to think: ${JSON.stringify(thinks)}\n${s.explain(run)}`,
    );
}

/** Forgets what earlier cases sent: each case asserts on its own requests. */
function fresh(s: Setup): void {
  s.fake.requests.length = 0;
  s.seen.length = 0;
}

/** With $CLAWBRIDGE_E2E_VERBOSE: every request that reached clawbridge in the case. */
function logSeen(s: Setup): void {
  if (!process.env.CLAWBRIDGE_E2E_VERBOSE) return;
  const lines = s.seen.map((r) => `  ${r.method} ${r.path} → ${r.status}`);
  process.stderr.write(`requests to clawbridge:\n${lines.join("\n")}\n`);
}

async function plainAnswer(s: Setup, backend: Backend): Promise<void> {
  fresh(s);
  const said = `Hello from the fake ${backend}, through clawbridge.`;
  s.fake.setReply({
    text: said,
    ...(backend === "ollama-thinking" ? { reasoning: "The user wants a greeting." } : {}),
  });
  const run = await runClaude(s.home, "Say hello.", s.vars, { timeoutMs: RUN_TIMEOUT_MS });
  assert.ok(!run.timedOut, `Claude Code did not finish\n${s.explain(run)}`);
  assert.equal(run.code, 0, `Claude Code failed\n${s.explain(run)}`);
  assert.equal(run.json?.is_error, false, `Claude Code reported an error\n${s.explain(run)}`);
  assert.equal(run.json?.result, said, `Claude Code's result is not what the model said\n${s.explain(run)}`);
  // What `clawbridge claude-code` set made Claude Code take the served window, not the 200k/1M it assumes.
  const usage = run.json?.modelUsage?.[ALIAS];
  assert.equal(usage?.contextWindow, CONTEXT, `the window Claude Code works in\n${s.explain(run)}`);
  // ... and asked for no more output than the served model's limit (its own default is 32k, or 128k).
  const asked = s.chats().map((r) => r.body?.options?.num_predict ?? r.body?.max_tokens);
  assert.deepEqual(
    asked,
    [Number(s.vars.CLAUDE_CODE_MAX_OUTPUT_TOKENS)],
    `the output limit Claude Code asked for\n${s.explain(run)}`,
  );
  assertThinkingAsTheModelCan(s, backend, run);
  assertAllServed(s, run);
  logSeen(s);
}

async function toolRoundTrip(s: Setup, backend: Backend): Promise<void> {
  fresh(s);
  const secret = `PAPAYA-${randomBytes(4).toString("hex")}`;
  const file = join(s.home.project, "secret.txt");
  writeFileSync(file, `The secret word is ${secret}.\n`);
  const reasoning = backend === "ollama-thinking" ? { reasoning: "I should read the file." } : {};
  s.fake.setReply((req): ScriptedReply => {
    const result = toolResultText(req.body);
    if (result !== undefined) {
      const word = /PAPAYA-[0-9a-f]{8}/.exec(result)?.[0] ?? "nothing";
      return { text: `The file says: ${word}`, ...reasoning };
    }
    if (!hasTools(req.body)) return { text: "ok" };
    return { toolCalls: [{ name: "Read", arguments: { file_path: file } }], ...reasoning };
  });
  const run = await runClaude(s.home, "Read secret.txt and tell me the secret word.", s.vars, {
    timeoutMs: RUN_TIMEOUT_MS,
    args: ["--allowedTools", "Read", "--permission-mode", "default"],
  });
  assert.ok(!run.timedOut, `Claude Code did not finish\n${s.explain(run)}`);
  const withResult = s.chats().find((r) => toolResultText(r.body) !== undefined);
  assert.ok(withResult, `Claude Code never sent a tool result back\n${s.explain(run)}`);
  assert.ok(
    toolResultText(withResult.body)!.includes(secret),
    `the tool result does not carry the file's content (${secret}): ${toolResultText(withResult.body)}\n${s.explain(run)}`,
  );
  assert.equal(run.code, 0, `Claude Code failed after the tool ran\n${s.explain(run)}`);
  assert.equal(run.json?.result, `The file says: ${secret}`, `Claude Code's result\n${s.explain(run)}`);
  assertThinkingAsTheModelCan(s, backend, run);
  assertAllServed(s, run);
  logSeen(s);
}

describe("Claude Code CLI (real, headless) through clawbridge", () => {
  before(() => {
    assertClaudeCodeInstalled();
  });
  after(() => {
    killClaudeLeftovers();
  });

  // One backend, clawbridge and home per backend, shared by its two cases (each forgets the other's requests).
  for (const backend of ["ollama", "ollama-thinking", "llamacpp"] as const) {
    describe(backend, () => {
      let s: Setup | undefined;
      before(async () => {
        s = await setUp(backend, `cc-${backend}`);
      });
      after(() => tearDown(s));
      test("plain answer", { timeout: TEST_TIMEOUT_MS }, () => plainAnswer(s!, backend));
      test("tool round trip through its Read tool", { timeout: TEST_TIMEOUT_MS }, () =>
        toolRoundTrip(s!, backend),
      );
    });
  }
});
