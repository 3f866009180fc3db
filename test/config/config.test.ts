import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer } from "../fakes/script.js";
import { redirectingDispatcher, type RunningGateway, startGateway } from "../helpers.js";

const SEED = readFileSync(new URL("../fixtures/litellm-seed.yaml", import.meta.url), "utf8");

describe("the seed's LiteLLM config.yaml, unchanged", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  before(async () => {
    fake = await startOllamaFake({ models: [{ name: "llama3.1:8b" }, { name: "llama3.1:70b" }] });
    // The config points at 100.121.61.16:11434 (a machine on the seed author's network). The
    // test sends every connection to the loopback fake instead, so the file stays as it is.
    gw = await startGateway(parseConfig(SEED, "config.yaml", {}), {
      dispatcher: redirectingDispatcher(fake.port),
    });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  test("is read as three aliases on one Ollama backend with the master key", () => {
    const c = parseConfig(SEED, "config.yaml", {});
    assert.equal(c.server.masterKey, "sk-litellm-local");
    assert.deepEqual(
      c.backends.map((b) => [b.kind, b.url]),
      [["ollama", "http://100.121.61.16:11434"]],
    );
    assert.deepEqual(
      c.models.map((m) => [m.alias, m.targets.map((t) => [t.model, t.dropParams, t.supportsTools])]),
      [
        ["claude-haiku-4-5", [["llama3.1:8b", true, true]]],
        ["claude-sonnet-4-5", [["llama3.1:70b", true, true]]],
        ["claude-opus-4-5", [["llama3.1:70b", true, true]]],
      ],
    );
  });

  test("serves claude-haiku-4-5 from llama3.1:8b to the Anthropic SDK with the seed's key", async () => {
    fake.setReply({ text: "Hello from llama." });
    const client = new Anthropic({ baseURL: gw.url, apiKey: "sk-litellm-local", maxRetries: 0 });
    const msg = await client.messages.create({
      model: "claude-haiku-4-5",
      max_tokens: 100,
      messages: [{ role: "user", content: "Say hello" }],
    });
    assert.deepEqual(msg.content, [{ type: "text", text: "Hello from llama." }]);
    const sent = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!;
    assert.equal(sent.body.model, "llama3.1:8b");
    assert.equal(sent.headers.host, "100.121.61.16:11434");
  });

  test("and the seed's curl tests: OpenAI format, /v1/models, tool calling", async () => {
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "sk-litellm-local", maxRetries: 0 });
    const models = await openai.models.list();
    const ids = models.data.map((m) => m.id);
    for (const id of ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"])
      assert.ok(ids.includes(id));

    fake.setReply({ text: "hello" });
    const chat = await openai.chat.completions.create({
      model: "claude-haiku-4-5",
      messages: [{ role: "user", content: "Say hello" }],
    });
    assert.equal(chat.choices[0]?.message.content, "hello");

    fake.setReply({ toolCalls: [{ name: "get_weather", arguments: { location: "Tokyo" } }] });
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "sk-litellm-local", maxRetries: 0 });
    const msg = await anthropic.messages.create({
      model: "claude-haiku-4-5",
      max_tokens: 500,
      tools: [
        {
          name: "get_weather",
          description: "Get weather for a location",
          input_schema: {
            type: "object",
            properties: { location: { type: "string" } },
            required: ["location"],
          },
        },
      ],
      messages: [{ role: "user", content: "What is the weather in Tokyo?" }],
    });
    assert.equal(msg.stop_reason, "tool_use");
    assert.deepEqual(
      msg.content.map((b) => (b.type === "tool_use" ? [b.name, b.input] : b.type)),
      [["get_weather", { location: "Tokyo" }]],
    );
  });

  test("a wrong key is refused", async () => {
    const client = new Anthropic({ baseURL: gw.url, apiKey: "sk-wrong", maxRetries: 0 });
    await assert.rejects(
      client.messages.create({
        model: "claude-haiku-4-5",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      }),
      (e: unknown) => e instanceof Anthropic.AuthenticationError && e.status === 401,
    );
  });
});

describe("LiteLLM import", () => {
  test("several entries under one model_name are replicas; fallbacks and env keys are read", () => {
    const c = parseConfig(
      `
model_list:
  - model_name: qwen
    litellm_params: { model: ollama_chat/qwen2.5:14b, api_base: "http://box1:11434" }
  - model_name: qwen
    litellm_params: { model: ollama_chat/qwen2.5:14b, api_base: "http://box2:11434" }
  - model_name: cloud
    litellm_params: { model: anthropic/claude-sonnet-4-5, api_key: os.environ/ANTHROPIC_API_KEY }
    model_info: { max_input_tokens: 200000 }
  - model_name: vllm
    litellm_params: { model: openai/Qwen/Qwen3-8B, api_base: "http://127.0.0.1:8000/v1", rpm: 10 }
router_settings:
  fallbacks: [{ qwen: [cloud] }]
`,
      "litellm.yaml",
      { ANTHROPIC_API_KEY: "sk-ant-test" },
    );
    assert.deepEqual(
      c.models.find((m) => m.alias === "qwen")?.targets.map((t) => t.backend),
      ["ollama@box1:11434", "ollama@box2:11434"],
    );
    assert.equal(c.backends.find((b) => b.kind === "anthropic")?.apiKey, "sk-ant-test");
    assert.equal(c.models.find((m) => m.alias === "cloud")?.targets[0]?.contextWindow, 200000);
    assert.equal(c.models.find((m) => m.alias === "vllm")?.targets[0]?.model, "Qwen/Qwen3-8B");
    assert.deepEqual(c.fallbacks, { qwen: ["cloud"] });
    assert.match(c.warnings.join("\n"), /litellm\.yaml:\d+: litellm_params\.rpm is not used/);
  });

  test("a file with no entry clawbridge serves names the file, the line and the providers served", () => {
    assert.throws(
      () =>
        parseConfig(
          "model_list:\n  - model_name: x\n    litellm_params:\n      model: bedrock/claude\n",
          "c.yaml",
          {},
        ),
      (e: unknown) =>
        e instanceof ConfigError &&
        /^c\.yaml:2: model_list: no entry is one clawbridge serves \(skipped: x\); it serves the providers .*ollama\//.test(
          e.message,
        ),
    );
  });
});

describe("clawbridge's own config", () => {
  const parse = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(text, "clawbridge.yaml", env);

  test("a full config is read", () => {
    const c = parse(
      `
server: { host: 127.0.0.1, port: 4100, master_key: "\${KEY}", body_limit_mb: 8 }
backends:
  local: { kind: ollama, url: "http://127.0.0.1:11434" }
  tiny: { kind: openai-compat, url: "http://127.0.0.1:8080/v1", flavor: tinygrad, discover: false }
models:
  claude-sonnet-4-5: { backend: local, model: "qwen2.5:14b", context_window: 32768, temperature: 0.2 }
  qwen:
    - { backend: local, model: "qwen2.5:14b" }
    - { backend: tiny, model: "qwen2.5:14b" }
fallbacks:
  claude-sonnet-4-5: [qwen]
`,
      { KEY: "sk-local" },
    );
    assert.equal(c.server.masterKey, "sk-local");
    assert.equal(c.server.port, 4100);
    assert.equal(c.server.bodyLimitBytes, 8 * 1024 * 1024);
    assert.equal(c.backends.find((b) => b.name === "tiny")?.settings?.flavor, "tinygrad");
    assert.equal(c.backends.find((b) => b.name === "tiny")?.discover, false);
    assert.equal(c.models.find((m) => m.alias === "qwen")?.targets.length, 2);
    assert.equal(c.models[0]?.targets[0]?.contextWindow, 32768);
  });

  const bad: Array<[string, string, RegExp]> = [
    ["not YAML", "backends: [unclosed", /^clawbridge\.yaml:1:\d+: not valid YAML/],
    [
      "unknown key",
      "server:\n  prot: 4000\n",
      /^clawbridge\.yaml:2: server\.prot: unknown setting \(did you mean port\?\)/,
    ],
    [
      "bad kind",
      "backends:\n  a:\n    kind: llama\n    url: http://x\n",
      /^clawbridge\.yaml:3: backends\.a\.kind: /,
    ],
    [
      "bad url",
      "backends:\n  a: { kind: ollama, url: 'not a url' }\n",
      /^clawbridge\.yaml:2: backends\.a\.url: /,
    ],
    ["port type", "server:\n  port: four\n", /^clawbridge\.yaml:2: server\.port: .*number/],
    [
      "missing backend",
      "backends:\n  a: { kind: ollama, url: 'http://x' }\nmodels:\n  m: { backend: b, model: x }\n",
      /^clawbridge\.yaml:4: backend 'b' is not defined \(defined: a\)/,
    ],
    [
      "fallback to nothing",
      "backends:\n  a: { kind: ollama, url: 'http://x' }\nmodels:\n  m: { backend: a, model: x }\nfallbacks:\n  m: [n]\n",
      /^clawbridge\.yaml:6: model 'n' is not defined/,
    ],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${VAR} syntax
    ["unset env", "server:\n  master_key: ${NOPE}\n", /environment variable NOPE is not set/],
  ];
  for (const [name, text, re] of bad) {
    test(`error: ${name}`, () => {
      assert.throws(
        () => parse(text),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
      );
    });
  }
});
