/**
 * The embedded backend: GGUF models run in-process by node-llama-cpp. The model is the tiny one the
 * tests generate (test/fixtures/tiny-gguf.ts: random weights, ChatML, byte tokens), so these drive
 * the real loading, tokenizing, generating, grammar and abort code. Its answers are noise: the
 * assertions are on structure, never on text.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { EmbeddedBackend } from "../../../src/backends/embedded/index.js";
import { useEngineModule } from "../../../src/backends/embedded/engine.js";
import { findModels } from "../../../src/backends/embedded/find.js";
import { parseConfig } from "../../../src/config/load.js";
import { inspectGguf } from "../../../src/backends/embedded/gguf.js";
import { schemaProblem } from "../../../src/backends/embedded/schema.js";
import { ensureTinyModel, makeTinyGguf, REPO_ROOT } from "../../fixtures/tiny-gguf.js";
import {
  listenUrl,
  checkAnthropicStream,
  checkOpenAIStream,
  parseSse,
  type RunningGateway,
  startGateway,
} from "../../helpers.js";

const MODEL = ensureTinyModel();
/** The engine is an optional dependency: without it, only what needs none runs. */
const NO_ENGINE = (await import("node-llama-cpp").then(
  () => false,
  () => true,
))
  ? "node-llama-cpp (an optional dependency) is not installed"
  : false;
const MODELS_DIR = dirname(MODEL);

function config(extra = "", backend = `models_dir: "${MODELS_DIR}"\n    ollama_models: false`): string {
  return `
backends:
  local:
    kind: embedded
    ${backend}
    threads: 1
    context_size: 2048
    parallel: 2
models:
  tiny: { backend: local, model: clawbridge-tiny${extra} }
`;
}

const READ_TOOL = {
  name: "read",
  description: "Read a file",
  input_schema: {
    type: "object" as const,
    properties: {
      path: { type: "string", description: "the file" },
      mode: { type: "string", enum: ["text", "lines", "bytes"] },
      offset: { type: "integer" },
      ratio: { type: "number" },
      follow: { type: "boolean" },
      tags: { type: "array", items: { type: "string" } },
    },
    required: ["path", "mode"],
  },
};

/**
 * An answer the tiny model generated: random weights and a fresh seed, so it may sample its end
 * before the limit — between 1 and `max` tokens, stopped by the limit or by its end.
 */
function assertGenerated(
  m: { usage: { output_tokens: number }; stop_reason: string | null },
  max: number,
): void {
  const n = m.usage.output_tokens;
  assert.ok(n >= 1 && n <= max, `${n} tokens, asked at most ${max}`);
  const stops = n < max ? ["end_turn"] : ["max_tokens", "end_turn"];
  assert.ok(stops.includes(String(m.stop_reason)), `stopped by ${m.stop_reason} after ${n} of ${max} tokens`);
}

describe("embedded backend: the tiny GGUF through clawbridge", { skip: NO_ENGINE }, () => {
  let gw: RunningGateway;
  let anthropic: Anthropic;
  let openai: OpenAI;
  let backend: EmbeddedBackend;
  before(async () => {
    gw = await startGateway(config());
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
    backend = gw.router.backends.get("local") as EmbeddedBackend;
  });
  after(async () => {
    await backend?.close();
    await gw?.close();
  });

  test("discovery: the models folder's GGUF, its window, and the configured alias", async () => {
    const models = gw.router.models();
    const tiny = models.find((m) => m.id === "tiny");
    assert.equal(tiny?.contextWindow, 2048);
    assert.ok(models.some((m) => m.id === "clawbridge-tiny"));
    const info = await inspectGguf(MODEL);
    assert.equal(info.architecture, "llama");
    assert.equal(info.vocabSize, 512);
    assert.match(info.chatTemplate ?? "", /<\|im_start\|>/);
  });

  test("Anthropic SDK: create and stream give well-formed messages", async () => {
    const params = {
      model: "tiny",
      max_tokens: 24,
      system: "Be brief.",
      messages: [{ role: "user" as const, content: "Say hello" }],
    };
    const created = await anthropic.messages.create(params);
    assert.equal(created.type, "message");
    assert.equal(created.model, "tiny");
    assert.ok(created.content.every((b) => b.type === "text"));
    assert.ok(["end_turn", "max_tokens"].includes(created.stop_reason ?? ""));
    assert.ok(created.usage.input_tokens + (created.usage.cache_read_input_tokens ?? 0) > 5);
    assert.ok(created.usage.output_tokens > 0 && created.usage.output_tokens <= 24);

    const streamed = await anthropic.messages.stream(params).finalMessage();
    assert.ok(["end_turn", "max_tokens"].includes(streamed.stop_reason ?? ""));
    // the same prompt again: the sequence's cache holds it, the total is the same
    const total = (u: Anthropic.Usage) => u.input_tokens + (u.cache_read_input_tokens ?? 0);
    assert.equal(total(streamed.usage), total(created.usage));

    // the raw stream's grammar, event by event
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ ...params, stream: true }),
    });
    assert.equal(res.status, 200);
    const stop = checkAnthropicStream(parseSse(await res.text()));
    assert.ok(["end_turn", "max_tokens"].includes(stop));
  });

  test("OpenAI SDK: create and stream; the same seed gives the same answer; stop sequences", async () => {
    const params = {
      model: "tiny",
      max_tokens: 40,
      seed: 7,
      temperature: 1,
      messages: [{ role: "user" as const, content: "Say hello" }],
    };
    const a = await openai.chat.completions.create(params);
    const b = await openai.chat.completions.create(params);
    assert.equal(a.object, "chat.completion");
    assert.equal(a.choices.length, 1);
    assert.equal(a.choices[0]!.finish_reason, "length");
    assert.equal(a.usage?.completion_tokens, 40);
    assert.equal(b.choices[0]!.message.content, a.choices[0]!.message.content);

    const stream = await openai.chat.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, a.choices[0]!.message.content, "streamed and non-streamed answers differ");
    assert.equal(finish, "length");
    assert.equal(usage?.prompt_tokens, a.usage?.prompt_tokens);

    // the raw chunk stream's grammar
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...params, stream: true }),
    });
    assert.equal(checkOpenAIStream(parseSse(await res.text())), "length");

    // a stop sequence taken from the middle of the seeded answer cuts it there
    const full = a.choices[0]!.message.content ?? "";
    const at = [...full].findIndex((ch, i) => i >= 8 && /[A-Za-z]/.test(ch));
    assert.ok(at > 0, `no letter in the answer to stop at: ${JSON.stringify(full)}`);
    const stopAt = full.slice(at, at + 2);
    const cut = await openai.chat.completions.create({ ...params, stop: [stopAt] });
    assert.equal(cut.choices[0]!.finish_reason, "stop");
    assert.equal(cut.choices[0]!.message.content, full.slice(0, full.indexOf(stopAt)));
  });

  test("a forced tool call has schema-valid arguments, seed after seed", { timeout: 120_000 }, async () => {
    const N = 30;
    let valid = 0;
    const problems: string[] = [];
    const started = performance.now();
    for (let seed = 0; seed < N; seed++) {
      const r = await openai.chat.completions.create({
        model: "tiny",
        max_tokens: 1500,
        seed,
        temperature: 1,
        tools: [
          {
            type: "function",
            function: {
              name: READ_TOOL.name,
              description: READ_TOOL.description,
              parameters: READ_TOOL.input_schema,
            },
          },
        ],
        tool_choice: { type: "function", function: { name: "read" } },
        messages: [{ role: "user", content: `Read the file (try ${seed}).` }],
      });
      const call = r.choices[0]!.message.tool_calls?.[0];
      assert.equal(r.choices[0]!.finish_reason, "tool_calls");
      assert.ok(call && call.type === "function" && call.function.name === "read");
      const args = JSON.parse(call.function.arguments);
      const problem = schemaProblem(args, READ_TOOL.input_schema);
      if (problem === undefined) valid++;
      else problems.push(`seed ${seed}: ${problem}: ${call.function.arguments.slice(0, 200)}`);
    }
    process.stdout.write(
      `# forced tool call: ${valid}/${N} schema-valid (${Math.round((performance.now() - started) / N)} ms a call)\n`,
    );
    assert.equal(valid, N, problems.join("\n"));

    // tool_choice any over two tools, through the Anthropic SDK: a call to one of them, valid
    const write = {
      name: "write",
      description: "Write a file",
      input_schema: {
        type: "object" as const,
        properties: { path: { type: "string" }, content: { type: "string" } },
        required: ["path", "content"],
      },
    };
    for (let i = 0; i < 3; i++) {
      const m = await anthropic.messages.create({
        model: "tiny",
        max_tokens: 1024,
        tools: [READ_TOOL, write],
        tool_choice: { type: "any" },
        messages: [{ role: "user", content: "Do something with a file." }],
      });
      assert.equal(m.stop_reason, "tool_use");
      const use = m.content.find((b) => b.type === "tool_use");
      assert.ok(use && use.type === "tool_use");
      const tool = [READ_TOOL, write].find((t) => t.name === use.name);
      assert.ok(tool, `called an unknown tool ${use.name}`);
      assert.equal(schemaProblem(use.input, tool.input_schema), undefined);
    }
  });

  test("a tool round trip: the call and its result go back to the model's template", async () => {
    const r = await anthropic.messages.create({
      model: "tiny",
      max_tokens: 16,
      tools: [READ_TOOL],
      messages: [
        { role: "user", content: "Read a.txt" },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "call_1", name: "read", input: { path: "a.txt", mode: "text" } }],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "call1", content: "the content" }] },
      ],
    });
    assert.ok(["end_turn", "max_tokens", "tool_use"].includes(r.stop_reason ?? ""));
    const counted = await anthropic.messages.countTokens({
      model: "tiny",
      tools: [READ_TOOL],
      messages: [
        { role: "user", content: "Read a.txt" },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "call_1", name: "read", input: { path: "a.txt", mode: "text" } }],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "call1", content: "the content" }] },
      ],
    });
    assert.equal(
      counted.input_tokens,
      r.usage.input_tokens + (r.usage.cache_read_input_tokens ?? 0),
      "count_tokens differs from what generation took",
    );
  });

  test("count_tokens is the engine's own count of the prompt it evaluates", async () => {
    // the engine driven directly: its chat over the same turns, one token generated; what the
    // sequence then holds is the prompt it evaluated
    const { getLlama, LlamaChat } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: false, maxThreads: 1, build: "never" });
    const model = await llama.loadModel({ modelPath: MODEL });
    const context = await model.createContext({ contextSize: 2048, threads: 1 });
    try {
      for (const [system, user] of [
        ["", "Hi"],
        ["You are terse.", "Read the file README.md and tell me what it says, in one line."],
        ["Système: réponds en français.", 'Ça va ? 你好 — emoji 🦀 and "quotes"\nnew line'],
      ] as const) {
        const counted = await anthropic.messages.countTokens({
          model: "tiny",
          ...(system ? { system } : {}),
          messages: [{ role: "user", content: user }],
        });
        const sequence = context.getSequence();
        const chat = new LlamaChat({ contextSequence: sequence });
        await chat.generateResponse(
          [
            ...(system ? [{ type: "system" as const, text: system }] : []),
            { type: "user", text: user },
            { type: "model", response: [] },
          ],
          { maxTokens: 1 },
        );
        const engine = sequence.contextTokens.length;
        chat.dispose();
        await sequence.dispose();
        assert.equal(counted.input_tokens, engine, `count_tokens for ${JSON.stringify(user)}`);
        const m = await anthropic.messages.create({
          model: "tiny",
          max_tokens: 2,
          ...(system ? { system } : {}),
          messages: [{ role: "user", content: user }],
        });
        assert.equal(
          m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0),
          engine,
          "usage differs from the engine's count",
        );
      }
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });

  test("a client that goes away stops the generation at once", async () => {
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = backend.activity.stoppedAt.length;
      const gone = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${gw.url}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json" },
        });
        req.on("response", (res) => {
          res.on("data", (d: Buffer) => {
            if (!d.toString().includes("text_delta")) return;
            const at = performance.now();
            req.destroy();
            resolve(at);
          });
        });
        req.on("error", () => undefined);
        setTimeout(() => reject(new Error("no text within 10 s")), 10_000).unref();
        req.end(
          JSON.stringify({
            model: "tiny",
            max_tokens: 1800,
            stream: true,
            messages: [{ role: "user", content: `Go on for long (${i}).` }],
          }),
        );
      });
      const deadline = performance.now() + 5000;
      while (backend.activity.stoppedAt.length === before && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 1));
      const stopped = backend.activity.stoppedAt.at(-1);
      assert.ok(
        stopped !== undefined && backend.activity.stoppedAt.length > before,
        "the generation went on",
      );
      latencies.push(stopped - gone);
    }
    latencies.sort((a, b) => a - b);
    process.stdout.write(
      `# client gone → generation stopped: median ${latencies[2]!.toFixed(1)} ms, max ${latencies[4]!.toFixed(1)} ms (1800 tokens asked, ~1 ms a token)\n`,
    );
    assert.ok(latencies[4]! < 250, `generation stopped ${latencies[4]} ms after the client left`);
    assert.equal(backend.activity.running, 0);
  });

  test("parallel requests run side by side on the context's sequences", async () => {
    const peak = backend.activity.peak;
    backend.activity.peak = 0;
    const ask = (i: number) =>
      anthropic.messages.create({
        model: "tiny",
        max_tokens: 300,
        messages: [{ role: "user", content: `Parallel ${i}` }],
      });
    const all = await Promise.all([ask(1), ask(2), ask(3)]);
    assert.ok(all.every((m) => m.usage.output_tokens > 0));
    assert.equal(backend.activity.peak, 2, "two sequences, two at once (the third waits in the queue)");
    backend.activity.peak = Math.max(peak, 2);
  });

  test("two interleaved conversations on two sequences: after their first turn each reads only its new tokens", async () => {
    // distinct long openings, so neither shares a useful prefix with the other
    const history = [1, 2].map((c) => [
      {
        role: "user" as const,
        content: `Conversation ${c}: ${Array.from({ length: 40 }, (_, i) => `fact ${c}.${i} is ${i * c}`).join("; ")}`,
      },
    ]);
    const seen: Array<{ input: number; cached: number | null }> = [];
    for (let turn = 0; turn < 3; turn++)
      for (const c of [0, 1]) {
        const msgs: Anthropic.MessageParam[] = history[c]!;
        const m = await anthropic.messages.create({ model: "tiny", max_tokens: 4, messages: msgs });
        const text = m.content.map((b) => (b.type === "text" ? b.text : "")).join("") || "ok";
        msgs.push(
          { role: "assistant", content: text },
          { role: "user", content: `Turn ${turn} of ${c}: go on.` },
        );
        seen.push({ input: m.usage.input_tokens, cached: m.usage.cache_read_input_tokens });
      }
    // turn 0 reads each whole prompt; every later turn reuses its own sequence's cache
    for (const [i, u] of seen.entries()) {
      if (i < 2) {
        assert.ok(u.input > 300, `the first turn reads the whole prompt (${u.input})`);
        continue;
      }
      assert.ok(u.cached !== null && u.cached > 300, `request ${i}: cached ${u.cached}`);
      assert.ok(u.input < 80, `request ${i}: only the new tokens are read (${u.input})`);
    }
  });
});

describe("embedded backend: the config", () => {
  test("an embedded backend needs no url; its settings and force_tool are read; other kinds still need a url", () => {
    const c = parseConfig(
      `
backends:
  local:
    kind: embedded
    models_dir: /m
    paths: [/a.gguf, /b]
    ollama_models: false
    threads: 3
    context_size: 8192
    parallel: 2
    gpu: "off"
models:
  m: { backend: local, model: a, force_tool: read }
`,
      "c.yaml",
      {},
    );
    assert.deepEqual(c.backends[0]!.settings, {
      modelsDir: "/m",
      paths: ["/a.gguf", "/b"],
      ollamaDir: false,
      threads: 3,
      contextSize: 8192,
      parallel: 2,
      gpu: "off",
    });
    assert.equal(c.models[0]!.targets[0]!.forceTool, "read");
    assert.throws(
      () => parseConfig("backends:\n  a: { kind: ollama }\n", "c.yaml", {}),
      /^ConfigError: c\.yaml:2: backends\.a\.url: required: where the server answers \(e\.g\. url: http:\/\/127\.0\.0\.1:11434\)$/,
    );
    assert.throws(
      () => parseConfig("backends:\n  a: { kind: embedded, gpu: cuda }\n", "c.yaml", {}),
      /c\.yaml:2: backends\.a\.gpu: /,
    );
  });
});

describe("embedded backend: finding models", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("Ollama's manifests and blobs, laid out as Ollama does, are found and served", {
    skip: NO_ENGINE,
  }, async () => {
    const root = mkdtempSync(join(tmpdir(), "clawbridge-ollama-"));
    dirs.push(root);
    const blobBytes = makeTinyGguf({ seed: 3 });
    const hex = createHash("sha256").update(blobBytes).digest("hex");
    mkdirSync(join(root, "blobs"), { recursive: true });
    writeFileSync(join(root, "blobs", `sha256-${hex}`), blobBytes);
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
      config: {
        mediaType: "application/vnd.docker.container.image.v1+json",
        digest: `sha256:${"0".repeat(64)}`,
        size: 2,
      },
      layers: [
        { mediaType: "application/vnd.ollama.image.model", digest: `sha256:${hex}`, size: blobBytes.length },
        { mediaType: "application/vnd.ollama.image.template", digest: `sha256:${"1".repeat(64)}`, size: 10 },
      ],
    };
    for (const [ns, name, tag] of [
      ["library", "tinyllm", "latest"],
      ["someone", "tool-model", "q4"],
    ]) {
      const dir = join(root, "manifests", "registry.ollama.ai", ns!, name!);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, tag!), JSON.stringify(manifest));
    }
    // a manifest whose blob is missing is not listed
    mkdirSync(join(root, "manifests", "registry.ollama.ai", "library", "gone"), { recursive: true });
    writeFileSync(
      join(root, "manifests", "registry.ollama.ai", "library", "gone", "latest"),
      JSON.stringify({
        layers: [{ mediaType: "application/vnd.ollama.image.model", digest: `sha256:${"2".repeat(64)}` }],
      }),
    );
    const empty = mkdtempSync(join(tmpdir(), "clawbridge-models-"));
    dirs.push(empty);
    assert.deepEqual(
      findModels({ modelsDir: empty }, { OLLAMA_MODELS: root }).map((m) => [m.name, m.from]),
      [
        ["tinyllm:latest", "ollama"],
        ["someone/tool-model:q4", "ollama"],
      ],
    );

    const gw = await startGateway(`
backends:
  local:
    kind: embedded
    models_dir: "${empty}"
    ollama_models: "${root}"
    threads: 1
    context_size: 1024
`);
    const backend = gw.router.backends.get("local") as EmbeddedBackend;
    try {
      assert.deepEqual(
        gw.router.models().map((m) => [m.id, m.contextWindow]),
        [
          ["tinyllm:latest", 1024],
          ["someone/tool-model:q4", 1024],
        ],
      );
      const client = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const m = await client.messages.create({
        model: "tinyllm:latest",
        max_tokens: 8,
        messages: [{ role: "user", content: "hello" }],
      });
      assert.equal(m.model, "tinyllm:latest");
      assertGenerated(m, 8);
    } finally {
      await backend.close();
      await gw.close();
    }
  });

  test("a GGUF missing what the engine needs is refused with a clear error, and the process lives on", {
    skip: NO_ENGINE,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "clawbridge-bad-"));
    dirs.push(dir);
    const broken = join(dir, "broken.gguf");
    writeFileSync(
      broken,
      makeTinyGguf({ omit: ["llama.feed_forward_length", "llama.attention.head_count"] }),
    );
    const junk = join(dir, "junk.gguf");
    writeFileSync(junk, Buffer.from("this is not a model at all"));
    copyFileSync(MODEL, join(dir, "good.gguf"));
    const gw = await startGateway(`
backends:
  local:
    kind: embedded
    models_dir: "${dir}"
    ollama_models: false
    threads: 1
    context_size: 1024
models:
  broken: { backend: local, model: "${broken}" }
  junk: { backend: local, model: "${junk}" }
`);
    const backend = gw.router.backends.get("local") as EmbeddedBackend;
    try {
      // discovery lists the good one only
      assert.ok(gw.router.models().some((m) => m.id === "good"));
      assert.ok(!gw.router.models().some((m) => m.id === "junk" && m.source === "discovered"));
      const client = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const ask = (model: string) =>
        client.messages.create({ model, max_tokens: 4, messages: [{ role: "user", content: "hi" }] });
      await assert.rejects(ask("broken"), (e: InstanceType<typeof Anthropic.APIError>) => {
        assert.equal(e.status, 500);
        assert.match(
          e.message,
          /lacks llama\.feed_forward_length, llama\.attention\.head_count \(the engine would abort on it\)/,
        );
        return true;
      });
      await assert.rejects(ask("junk"), /not a GGUF file/);
      const ok = await ask("good");
      assertGenerated(ok, 4);
    } finally {
      await backend.close();
      await gw.close();
    }
  });

  test("`clawbridge serve` with no config and no local server serves the GGUF models on disk", {
    skip: NO_ENGINE,
  }, async () => {
    const home = mkdtempSync(join(tmpdir(), "clawbridge-home-"));
    dirs.push(home);
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--port", "0"], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        HOME: home,
        CLAWBRIDGE_MODELS: MODELS_DIR,
        OLLAMA_MODELS: join(home, "no-ollama"),
        CLAWBRIDGE_CONFIG: "",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const { url, out } = await listenUrl(child);
      assert.match(
        out,
        /No config file and no local server: serving the 1 GGUF model found on disk in-process/,
      );
      assert.match(out, /backend local \(embedded\) in-process — 1 model/);
      const client = new Anthropic({ baseURL: url, apiKey: "x", maxRetries: 0 });
      const m = await client.messages.create({
        model: "clawbridge-tiny",
        max_tokens: 5,
        messages: [{ role: "user", content: "hi" }],
      });
      assertGenerated(m, 5);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });

  test("without the engine installed: a clear message, and the rest of the gateway works", async () => {
    useEngineModule("node-llama-cpp-not-installed-here");
    const gw = await startGateway(config());
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      await assert.rejects(
        client.chat.completions.create({ model: "tiny", messages: [{ role: "user", content: "hi" }] }),
        /the embedded engine is not installed: node-llama-cpp is missing .*npm install node-llama-cpp@3\.21\.1/,
      );
      const health = await fetch(`${gw.url}/health`);
      assert.equal(health.status, 200);
      const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      assert.ok(models.data.some((m) => m.id === "tiny"));
    } finally {
      useEngineModule();
      await gw.close();
    }
  });
});
