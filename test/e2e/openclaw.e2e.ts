/**
 * End to end with the real OpenClaw: OpenClaw (provider api "anthropic-messages", base URL = clawbridge) →
 * clawbridge (in this process) → a fake backend. Needs `node scripts/e2e-setup.mjs` first (`npm run test:e2e` runs
 * it). Cases run one after another; each takes OpenClaw's own start-up (15–60 s) plus its model calls.
 *
 * The tool cases script the model the way local models misbehave: the tool call comes back as Hermes text in the
 * content (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`), not as a native tool call, and clawbridge
 * must turn it into a real tool_use for OpenClaw to run the tool. CLAWBRIDGE_E2E_TOOL_CALLS=native makes the fake
 * send a native tool call instead, to check the harness itself without the rescue stage.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pyJson } from "../fakes/core.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, RecordedRequest, ScriptedReply } from "../fakes/script.js";
import {
  assertOpenClawInstalled,
  type Clawbridge,
  createOpenClawHome,
  describeGatewayLog,
  describeRequests,
  describeTurn,
  killLeftovers,
  type OpenClawHome,
  openclawConfig,
  runOpenClawTurn,
  startClawbridge,
  type TurnResult,
  writeOpenClawConfig,
} from "./openclaw.js";

/** OpenClaw start-up is 15–60 s on 2 cores; a tool turn is two model calls more. */
const TURN_TIMEOUT_MS = 180_000;
const TEST_TIMEOUT_MS = TURN_TIMEOUT_MS + 60_000;
const ALIAS = "local-model";
const CONTEXT = 32768;
const NATIVE_TOOL_CALLS = process.env.CLAWBRIDGE_E2E_TOOL_CALLS === "native";

type BackendKind = "ollama" | "openai-compat";

interface Setup {
  kind: BackendKind;
  fake: FakeServer;
  gw: Clawbridge;
  home: OpenClawHome;
  /** The generation requests the fake received, in order. */
  chats(): RecordedRequest[];
  /** Everything to put in an assertion message. */
  explain(turn: TurnResult): string;
}

/** A fake backend of the kind asked, clawbridge in front of it, and an OpenClaw home pointed at clawbridge. */
async function setUp(kind: BackendKind, label: string): Promise<Setup> {
  let fake: FakeServer;
  let backend: string;
  let model: string;
  let chatPath: string;
  // A window OpenClaw can work in (its first prompt alone is ~12k tokens), the same in all three places: what the
  // server serves, clawbridge's context_window, and OpenClaw's contextWindow.
  if (kind === "ollama") {
    fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b", numCtx: CONTEXT }] });
    backend = "kind: ollama";
    model = "qwen2.5:7b";
    chatPath = "/api/chat";
  } else {
    fake = await startOpenAICompatFake({ flavor: "llamacpp", contextLength: CONTEXT });
    backend = "kind: openai-compat\n    flavor: llamacpp";
    model = "fake-model";
    chatPath = "/v1/chat/completions";
  }
  const yaml = `
backends:
  b:
    ${backend}
    url: "${fake.url}"
models:
  ${ALIAS}: { backend: b, model: "${model}", context_window: ${CONTEXT} }
`;
  const gw = await startClawbridge(yaml);
  const home = createOpenClawHome(label);
  // The user's own OpenClaw settings first; then `clawbridge openclaw` merges the provider in, as a user runs it.
  writeOpenClawConfig(home, {
    agents: { defaults: { workspace: home.workspace } },
    update: { checkOnStart: false, auto: { enabled: false } },
    telemetry: { enabled: false },
  });
  const cliConfig = join(home.root, "clawbridge.yaml");
  writeFileSync(cliConfig, `server: { port: ${new URL(gw.url).port}, master_key: ${gw.apiKey} }\n${yaml}`);
  const written = spawnSync(
    process.execPath,
    [
      "--import",
      import.meta.resolve("tsx"),
      "src/cli/main.ts",
      "openclaw",
      "--config",
      cliConfig,
      "--file",
      home.configPath,
      "--primary",
      ALIAS,
    ],
    { encoding: "utf8" },
  );
  assert.equal(written.status, 0, `clawbridge openclaw failed: ${written.stdout}${written.stderr}`);
  const provider = JSON.parse(readFileSync(home.configPath, "utf8")).models.providers.clawbridge;
  assert.equal(provider.baseUrl, gw.url);
  assert.equal(provider.models.find((m: { id: string }) => m.id === ALIAS)?.contextWindow, CONTEXT);
  const chats = () => fake.requests.filter((r) => r.method === "POST" && r.path.split("?")[0] === chatPath);
  return {
    kind,
    fake,
    gw,
    home,
    chats,
    explain: (turn) =>
      [describeTurn(turn), describeRequests(chats()), describeGatewayLog(gw), `home: ${home.root}`].join(
        "\n",
      ),
  };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  if (!s) return;
  killLeftovers();
  await s.gw.close();
  await s.fake.close();
  s.home.dispose();
}

/** The tool call and its result in a backend request (Ollama's /api/chat or OpenAI's chat/completions body). */
function toolExchange(
  body: any,
): { call?: { name: string; args: unknown }; result: { content: string; name?: string } } | undefined {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const at = messages.findIndex((m) => m?.role === "tool");
  if (at < 0) return undefined;
  const tool = messages[at];
  const result = { content: textOf(tool.content), name: tool.tool_name };
  const calls: any[] = messages
    .slice(0, at)
    .filter((m) => m?.role === "assistant" && Array.isArray(m.tool_calls))
    .flatMap((m) => m.tool_calls);
  const call =
    calls.find((c) => tool.tool_call_id !== undefined && c.id === tool.tool_call_id) ??
    calls.find((c) => tool.tool_name !== undefined && c.function?.name === tool.tool_name) ??
    calls.at(-1);
  if (!call) return { result };
  const raw = call.function?.arguments;
  let args: unknown = raw;
  if (typeof raw === "string") {
    try {
      args = JSON.parse(raw);
    } catch {
      args = raw;
    }
  }
  return { call: { name: call.function?.name, args }, result };
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content))
    return content.map((p: any) => (typeof p?.text === "string" ? p.text : "")).join("");
  return content === undefined || content === null ? "" : JSON.stringify(content);
}

/** What a local model prints when it calls a tool in Hermes format (Qwen 2.5, Hermes, many GGUFs). */
function hermesToolCall(name: string, args: Record<string, unknown>): string {
  return `<tool_call>\n${pyJson({ name, arguments: args })}\n</tool_call>`;
}

/**
 * The tool turn: OpenClaw asks; the model calls `read` on a file in the workspace (as Hermes text); OpenClaw runs
 * it and sends the result back; the model answers. Checks the result reached the backend and the answer OpenClaw.
 */
async function toolTurn(kind: BackendKind): Promise<void> {
  let s: Setup | undefined;
  try {
    s = await setUp(kind, `tool-${kind}`);
    const secret = `PAPAYA-${randomBytes(4).toString("hex")}`;
    const file = join(s.home.workspace, "secret.txt");
    writeFileSync(file, `The secret word is ${secret}.\n`);
    const finalText = "I read secret.txt: the secret word is in it.";
    s.fake.setReply((req): ScriptedReply => {
      if (toolExchange(req.body)) return { text: finalText };
      if (NATIVE_TOOL_CALLS) return { toolCalls: [{ name: "read", arguments: { path: file } }] };
      return { text: hermesToolCall("read", { path: file }) };
    });

    const turn = await runOpenClawTurn(s.home, "Read secret.txt and tell me the secret word.", {
      timeoutMs: TURN_TIMEOUT_MS,
    });
    const why = () => s!.explain(turn);
    assert.ok(!turn.timedOut, `OpenClaw did not finish\n${why()}`);

    const chats = s.chats();
    const withResult = chats.find((r) => toolExchange(r.body));
    assert.ok(
      withResult,
      `OpenClaw never sent a tool result back (${chats.length} request(s) reached the backend): ` +
        `the model's ${NATIVE_TOOL_CALLS ? "native" : "Hermes-text"} tool call did not become a tool_use OpenClaw ran\n${why()}`,
    );
    const ex = toolExchange(withResult.body)!;
    assert.equal(ex.call?.name, "read", `the tool call sent back is not the model's read call\n${why()}`);
    assert.deepEqual(ex.call?.args, { path: file }, `the read call's arguments changed on the way\n${why()}`);
    assert.ok(
      ex.result.content.includes(secret),
      `the tool result does not carry the file's content (${secret}): ${JSON.stringify(ex.result.content)}\n${why()}`,
    );
    assert.equal(turn.code, 0, `OpenClaw failed after the tool ran\n${why()}`);
    assert.equal(turn.text, finalText, `OpenClaw's reply is not the model's final answer\n${why()}`);
  } finally {
    await tearDown(s);
  }
}

/**
 * OpenClaw's built-in `anthropic` provider (not a provider clawbridge writes): its base URL overridden to
 * clawbridge, the model named as OpenClaw names Claude, served by an Ollama model in clawbridge's default set-up
 * (no context_window, no memory budget, a model trained for 262,144 tokens). The provider sends adaptive thinking,
 * max_tokens 32000 and its full tool set; its first request (~18k tokens) must fit the window clawbridge picks.
 */
async function builtInAnthropicTurn(): Promise<void> {
  const claude = "claude-sonnet-4-6";
  const fake = await startOllamaFake({ models: [{ name: "qwen2.5:14b", contextLength: 262_144 }] });
  const gw = await startClawbridge(`
backends:
  b: { kind: ollama, url: "${fake.url}" }
models:
  ${claude}: { backend: b, model: "qwen2.5:14b" }
`);
  const home = createOpenClawHome("builtin-anthropic");
  try {
    writeOpenClawConfig(home, {
      agents: { defaults: { workspace: home.workspace, model: { primary: `anthropic/${claude}` } } },
      models: { mode: "merge", providers: { anthropic: { baseUrl: gw.url, apiKey: gw.apiKey, models: [] } } },
      update: { checkOnStart: false, auto: { enabled: false } },
      telemetry: { enabled: false },
    });
    const said = "Hello from a local model, through OpenClaw's own Anthropic provider.";
    fake.setReply({ text: said });
    const turn = await runOpenClawTurn(home, "Say hello.", { timeoutMs: TURN_TIMEOUT_MS });
    const chats = fake.requests.filter((r) => r.method === "POST" && r.path === "/api/chat");
    const why = () =>
      [describeTurn(turn), describeRequests(chats), describeGatewayLog(gw), `home: ${home.root}`].join("\n");
    assert.ok(!turn.timedOut && turn.code === 0, `OpenClaw failed\n${why()}`);
    assert.equal(turn.text, said, `OpenClaw's reply differs from what the model said\n${why()}`);
    const first = chats[0]!;
    // its whole prompt reached the model, inside the window clawbridge chose, with every tool
    const prompt = first.prompt as { tokens: number; window: number } | undefined;
    assert.ok(prompt && prompt.window >= 32768, `num_ctx ${prompt?.window} is below 32768\n${why()}`);
    assert.ok(
      prompt.tokens > 12_000 && prompt.tokens <= prompt.window,
      `the first prompt (${prompt.tokens} tokens) does not fit num_ctx ${prompt.window}\n${why()}`,
    );
    assert.ok(first.body.tools.length >= 12, `only ${first.body.tools.length} tools arrived\n${why()}`);
    // adaptive thinking asked of a model that cannot think: not sent (Ollama would answer 400), and noted
    assert.ok(first.body.think === undefined || first.body.think === false, `think sent\n${why()}`);
    assert.ok(
      gw.logLines().some((l) => l.includes('"subject":"thinking"')),
      `no note that the provider's thinking was dropped: did it send any?\n${why()}`,
    );
    if (process.env.CLAWBRIDGE_E2E_VERBOSE)
      process.stderr.write(
        `built-in anthropic: first prompt ${prompt.tokens} tokens in num_ctx ${prompt.window}, ${first.body.tools.length} tools\n`,
      );
  } finally {
    killLeftovers();
    await gw.close();
    await fake.close();
    home.dispose();
  }
}

describe("OpenClaw (real, headless) through clawbridge", () => {
  before(() => {
    assertOpenClawInstalled();
  });
  after(() => {
    killLeftovers();
  });

  test("plain turn: OpenClaw prints the text the Ollama model said", {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    let s: Setup | undefined;
    try {
      s = await setUp("ollama", "plain");
      const said = "Hello from the fake Ollama, through clawbridge.";
      s.fake.setReply({ text: said });
      const turn = await runOpenClawTurn(s.home, "Say hello.", { timeoutMs: TURN_TIMEOUT_MS });
      const why = () => s!.explain(turn);
      assert.ok(!turn.timedOut && turn.code === 0, `OpenClaw failed\n${why()}`);
      assert.ok(s.chats().length >= 1, `no request reached the fake Ollama\n${why()}`);
      assert.equal(turn.text, said, `OpenClaw's reply differs from what the model said\n${why()}`);
    } finally {
      await tearDown(s);
    }
  });

  test("api openai-responses: OpenClaw's Responses provider style completes a turn through /v1/responses", {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    let s: Setup | undefined;
    try {
      s = await setUp("ollama", "responses");
      writeOpenClawConfig(
        s.home,
        openclawConfig({
          providers: [
            {
              api: "openai-responses",
              gatewayUrl: s.gw.url,
              apiKey: s.gw.apiKey,
              models: [{ id: ALIAS, contextWindow: CONTEXT }],
            },
          ],
          workspace: s.home.workspace,
        }),
      );
      const said = "Hello through the Responses surface.";
      s.fake.setReply({ text: said });
      const turn = await runOpenClawTurn(s.home, "Say hello.", { timeoutMs: TURN_TIMEOUT_MS });
      const why = () => s!.explain(turn);
      assert.ok(!turn.timedOut && turn.code === 0, `OpenClaw failed\n${why()}`);
      assert.equal(turn.text, said, `OpenClaw's reply differs from what the model said\n${why()}`);
      const metrics = await (
        await fetch(`${s.gw.url}/metrics`, { headers: { authorization: `Bearer ${s.gw.apiKey}` } })
      ).text();
      assert.match(
        metrics,
        /surface="responses",model="local-model",outcome="ok"\} [1-9]/,
        `${metrics}\n${why()}`,
      );
    } finally {
      await tearDown(s);
    }
  });

  test(
    "built-in anthropic provider, base URL overridden: a first turn on a default-config Ollama model",
    { timeout: TEST_TIMEOUT_MS },
    builtInAnthropicTurn,
  );

  test(
    "tool turn (Ollama): a Hermes-text tool call runs in OpenClaw and its result comes back",
    { timeout: TEST_TIMEOUT_MS },
    () => toolTurn("ollama"),
  );

  test(
    "tool turn (llama.cpp, OpenAI-compatible): a Hermes-text tool call runs in OpenClaw and its result comes back",
    { timeout: TEST_TIMEOUT_MS },
    () => toolTurn("openai-compat"),
  );
});
