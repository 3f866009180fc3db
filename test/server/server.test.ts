import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { request } from "undici";
import { createDispatcher } from "../../src/backends/http/client.js";
import { detectLocalServers } from "../../src/config/detect.js";
import { Counter, Histogram } from "../../src/server/metrics.js";
import { normalize } from "../../src/stages/normalize.js";
import type { Note } from "../../src/stages/types.js";
import type { Request } from "../../src/ir/types.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { emptyRequest, listenUrl, oneBackend, parseSse, stageContext, startGateway } from "../helpers.js";

describe("HTTP surface", () => {
  test("a slow first token opens the stream at once and keeps it alive with pings", async () => {
    const fake = await startOllamaFake({ models: [{ name: "q:latest" }] });
    const gw = await startGateway(oneBackend("ollama", fake.url, "q"), {
      keepAliveAfterMs: 50,
      pingIntervalMs: 60,
    });
    try {
      fake.setReply({ text: "finally", fault: { kind: "delayFirstByte", ms: 400 } });
      const t0 = performance.now();
      const res = await request(`${gw.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "test-model",
          max_tokens: 10,
          stream: true,
          messages: [{ role: "user", content: "hi" }],
        }),
      });
      const headersAt = performance.now() - t0;
      const text = await res.body.text();
      assert.equal(res.statusCode, 200);
      assert.ok(headersAt < 300, `headers came after ${headersAt} ms`);
      const events = parseSse(text);
      assert.equal(events[0]?.event, "message_start");
      assert.ok(events.filter((e) => e.event === "ping").length >= 2, "pings while waiting");
      const said = events.map((e) => e.data?.delta?.text ?? "").join("");
      assert.equal(said, "finally");
      assert.equal(events.at(-1)?.event, "message_stop");
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("count_tokens counts system and tools; /v1/models and /health list what is served", async () => {
    const fake = await startOpenAICompatFake({ models: ["m1"] });
    const gw = await startGateway(oneBackend("openai-compat", fake.url, "m1"));
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const base = { model: "test-model", messages: [{ role: "user" as const, content: "Hello there" }] };
      const plain = await client.messages.countTokens(base);
      const withSystem = await client.messages.countTokens({ ...base, system: "x".repeat(4000) });
      const withTools = await client.messages.countTokens({
        ...base,
        tools: [{ name: "read", description: "d".repeat(400), input_schema: { type: "object" } }],
      });
      assert.ok(plain.input_tokens > 0);
      assert.ok(withSystem.input_tokens >= plain.input_tokens + 1000, "system prompt counted");
      assert.ok(withTools.input_tokens >= plain.input_tokens + 100, "tools counted");

      const models = (await (await request(`${gw.url}/v1/models`)).body.json()) as any;
      const ids = models.data.map((m: any) => m.id);
      assert.ok(ids.includes("test-model") && ids.includes("m1"), JSON.stringify(ids));
      const anthropicModels = (await (
        await request(`${gw.url}/v1/models`, { headers: { "anthropic-version": "2023-06-01" } })
      ).body.json()) as any;
      assert.equal(anthropicModels.data[0].type, "model");

      const res = await request(`${gw.url}/health`);
      assert.equal(res.statusCode, 200);
      const health = (await res.body.json()) as any;
      assert.equal(health.status, "ok");
      assert.equal(health.backends[0].state, "up");
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("Claude Code's side requests: its HEAD /api/hello probe (no key) and count_tokens?beta=true (with it)", async () => {
    const fake = await startOpenAICompatFake({ models: ["m1"] });
    const gw = await startGateway(
      `${oneBackend("openai-compat", fake.url, "m1")}\nserver: { master_key: sk-cc }\n`,
    );
    try {
      const head = await request(`${gw.url}/api/hello`, { method: "HEAD" });
      await head.body.text();
      assert.equal(head.statusCode, 200, "the probe, sent without a key, is answered");
      const get = await request(`${gw.url}/api/hello`);
      assert.deepEqual(await get.body.json(), { status: "ok" });
      // nothing else opens without the key
      const refused = await request(`${gw.url}/v1/messages/count_tokens?beta=true`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "test-model", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(refused.statusCode, 401);
      assert.equal(((await refused.body.json()) as any).error.type, "authentication_error");
      const counted = await request(`${gw.url}/v1/messages/count_tokens?beta=true`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: "Bearer sk-cc",
          "anthropic-beta": "token-counting-2024-11-01",
        },
        body: JSON.stringify({ model: "test-model", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(counted.statusCode, 200);
      assert.ok(((await counted.body.json()) as any).input_tokens > 0);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("a backend that is down is named in /health and in the error", async () => {
    const gw = await startGateway(oneBackend("ollama", "http://127.0.0.1:9", "q"));
    try {
      const res = await request(`${gw.url}/health`);
      assert.equal(res.statusCode, 503, "no backend can serve");
      const health = (await res.body.json()) as any;
      assert.equal(health.status, "down");
      assert.equal(health.backends[0].state, "down");
      assert.match(health.backends[0].reason, /connection refused/);
      const client = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      await assert.rejects(
        client.messages.create({
          model: "test-model",
          max_tokens: 5,
          messages: [{ role: "user", content: "x" }],
        }),
        (e: unknown) =>
          e instanceof Anthropic.InternalServerError && /backend b .*connection refused/.test(e.message),
      );
    } finally {
      await gw.close();
    }
  });

  test("a failing target falls back to the next one before anything reached the client", async () => {
    const good = await startOpenAICompatFake({ models: ["m"] });
    const gw = await startGateway(`
backends:
  down: { kind: openai-compat, url: "http://127.0.0.1:9/v1" }
  up: { kind: openai-compat, url: "${good.url}/v1" }
models:
  primary: { backend: down, model: m }
  backup: { backend: up, model: m }
fallbacks:
  primary: [backup]
`);
    try {
      good.setReply({ text: "from the backup" });
      const client = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const msg = await client.messages.create({
        model: "primary",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
      });
      assert.deepEqual(msg.content, [{ type: "text", text: "from the backup" }]);
      const metrics = await (await request(`${gw.url}/metrics`)).body.text();
      assert.match(metrics, /clawbridge_target_switches_total\{from_backend="down",kind="unavailable"\} 1/);
    } finally {
      await gw.close();
      await good.close();
    }
  });
});

describe("metrics", () => {
  test("each label set counts on its own, in any order of calls; values are escaped", () => {
    const c = new Counter<"model" | "outcome">("t_total", "t");
    const calls: Array<[string, string]> = [
      ["a", "ok"],
      ["a", "ok"],
      ["b", "ok"],
      ["a", "ok"],
      ["a", "error"],
      ['q"x\\y', "ok"],
      ["a", "error"],
    ];
    for (const [model, outcome] of calls) c.inc({ model, outcome });
    c.inc({ model: "a", outcome: "ok" }, 5);
    assert.equal(c.get({ model: "a", outcome: "ok" }), 8);
    assert.equal(c.get({ model: "b", outcome: "ok" }), 1);
    assert.equal(c.get({ model: "a", outcome: "error" }), 2);
    assert.equal(c.get({ model: "b", outcome: "error" }), 0);
    assert.match(c.render(), /^t_total\{model="q\\"x\\\\y",outcome="ok"\} 1$/m);
    const h = new Histogram<"surface">("h_seconds", "h", [1]);
    for (const [surface, v] of [
      ["x", 0.5],
      ["y", 2],
      ["x", 3],
    ] as const)
      h.observe({ surface }, v);
    const text = h.render();
    assert.match(text, /^h_seconds_count\{surface="x"\} 2$/m);
    assert.match(text, /^h_seconds_bucket\{surface="x",le="1"\} 1$/m);
    assert.match(text, /^h_seconds_count\{surface="y"\} 1$/m);
  });
});

describe("normalize stage", () => {
  test("folds system messages, drops what the wire cannot take, and notes each change", async () => {
    const fake = await startOpenAICompatFake({ flavor: "tinygrad" });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "fake-model", "    flavor: tinygrad"),
    );
    try {
      const profile = gw.router.resolve("test-model")[0]!.profile;
      const req: Request = {
        model: "test-model",
        system: "base",
        messages: [
          { role: "user", parts: [{ type: "text", text: "a" }] },
          { role: "system", parts: [{ type: "text", text: "late instruction" }] },
          {
            role: "assistant",
            parts: [
              { type: "thinking", text: "t" },
              { type: "text", text: "b" },
            ],
          },
        ],
        tools: [{ name: "t", inputSchema: {} }],
        toolChoice: { type: "auto" },
        limits: { maxOutputTokens: 10 },
        sampling: { topK: 5, temperature: 0.5 },
        thinking: {},
        stream: false,
        metadata: {},
        ignored: ["cache_control"],
      };
      const notes: Note[] = [];
      const out = normalize(req, stageContext(profile, req, notes));
      // a late system message stays where it is: TinyGrad's wire takes none there, so a user turn
      assert.equal(out.system, "base");
      assert.deepEqual(
        out.messages.map((m) => m.role),
        ["user", "user", "assistant"],
      );
      assert.deepEqual(out.messages[1]?.parts, [
        { type: "text", text: "[System message]\nlate instruction" },
      ]);
      assert.deepEqual(out.messages[2]?.parts, [{ type: "text", text: "b" }]);
      assert.deepEqual(out.tools, []);
      assert.deepEqual(out.sampling, { temperature: 0.5 });
      const said = notes.map((n) => `${n.subject}: ${n.detail}`);
      for (const what of ["cache_control", "system: messages.1", "thinking", "tools", "topK"]) {
        assert.ok(
          said.some((n) => n.startsWith(what)),
          `noted ${what}: ${said.join(" | ")}`,
        );
      }
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("normalize stage: reasoning going back to Anthropic", () => {
  test("only signed (or redacted) thinking is sent back; unsigned local reasoning is dropped and noted", async () => {
    const gw = await startGateway(oneBackend("anthropic", "http://127.0.0.1:9", "claude", "", "cloud"), {
      discover: false,
    });
    try {
      const profile = gw.router.resolve("cloud")[0]!.profile;
      const notes: Note[] = [];
      const out = normalize(
        {
          ...emptyRequest("cloud"),
          messages: [
            { role: "user", parts: [{ type: "text", text: "q" }] },
            {
              role: "assistant",
              parts: [
                { type: "thinking", text: "local, unsigned" },
                { type: "thinking", text: "signed", signature: "sig" },
                { type: "thinking", text: "", redacted: "opaque" },
                { type: "text", text: "a" },
              ],
            },
          ],
        },
        { ...stageContext(profile, emptyRequest("cloud")), notes },
      );
      assert.deepEqual(
        out.messages[1]?.parts.map((p) => (p.type === "thinking" ? p.text || p.redacted : p.type)),
        ["signed", "opaque", "text"],
      );
      assert.ok(notes.some((n) => n.subject === "thinking" && n.detail.startsWith("1 ")));
    } finally {
      await gw.close();
    }
  });
});

describe("clawbridge serve", () => {
  test("finds local servers on their ports when there is no config", async () => {
    const ollama = await startOllamaFake({ models: [{ name: "llama3.1:8b" }] });
    const llama = await startOpenAICompatFake({ flavor: "llamacpp" });
    const dispatcher = createDispatcher();
    try {
      const found = await detectLocalServers(dispatcher, [
        { name: "ollama", kind: "ollama", url: ollama.url, probe: "/api/tags" },
        {
          name: "llamacpp",
          kind: "openai-compat",
          url: `${llama.url}/v1`,
          settings: { flavor: "llamacpp" },
          probe: "/models",
        },
        {
          name: "vllm",
          kind: "openai-compat",
          url: "http://127.0.0.1:9/v1",
          settings: { flavor: "vllm" },
          probe: "/models",
        },
      ]);
      assert.deepEqual(
        found.map((f) => [f.backend.name, f.models]),
        [
          ["ollama", 1],
          ["llamacpp", 1],
        ],
      );
    } finally {
      await dispatcher.close();
      await ollama.close();
      await llama.close();
    }
  });

  test("the CLI serves a config file and stops on SIGTERM", async () => {
    const fake = await startOllamaFake({ models: [{ name: "q:latest" }] });
    const dir = mkdtempSync(join(tmpdir(), "clawbridge-"));
    const file = join(dir, "clawbridge.yaml");
    writeFileSync(file, oneBackend("ollama", fake.url, "q"));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "serve", "--config", file, "--port", "0"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      const { url, out } = await listenUrl(child);
      assert.match(out, /backend b \(ollama\) .* 1 model/);
      assert.match(out, /models: test-model, q:latest/);
      fake.setReply({ text: "pong" });
      const client = new Anthropic({ baseURL: url, apiKey: "x", maxRetries: 0 });
      const msg = await client.messages.create({
        model: "test-model",
        max_tokens: 5,
        messages: [{ role: "user", content: "ping" }],
      });
      assert.deepEqual(msg.content, [{ type: "text", text: "pong" }]);
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      assert.equal(code, 0);
    } finally {
      child.kill("SIGKILL");
      await fake.close();
    }
  });

  test("a config error is one clear line and exit code 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "clawbridge-"));
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "server:\n  prot: 1\n");
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--config", file], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d;
    });
    const [code] = await once(child, "exit");
    assert.equal(code, 2);
    assert.equal(err.trim(), `clawbridge: ${file}:2: server.prot: unknown setting (did you mean port?)`);
  });
});
