import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Check, renderChecks, runDoctor } from "../../src/doctor/doctor.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";

const dir = mkdtempSync(join(tmpdir(), "cb-doctor-"));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const find = (checks: Check[], id: string) => {
  const c = checks.find((c) => c.id === id);
  assert.ok(c, `no check ${id} in:\n${renderChecks(checks)}`);
  return c;
};

describe("clawbridge doctor finds planted faults, with the fix", () => {
  let ollama: FakeServer;
  let llama: FakeServer;
  before(async () => {
    ollama = await startOllamaFake({
      models: [{ name: "qwen2.5:14b" }, { name: "gemma3", capabilities: ["completion"] }],
    });
    llama = await startOpenAICompatFake({ flavor: "llamacpp", models: ["qwen"] });
  });
  after(async () => {
    await ollama.close();
    await llama.close();
  });

  const GW_PORT = 4999;
  const config = (backends: string, models: string) =>
    file(
      `c${Math.random()}.yaml`,
      `server: { port: ${GW_PORT}, master_key: sk-right }\nbackends:\n${backends}\nmodels:\n${models}\n`,
    );

  test("a healthy set-up: everything ok", async () => {
    const oc = file(
      "ok.json",
      JSON.stringify({
        models: {
          providers: {
            clawbridge: {
              baseUrl: `http://127.0.0.1:${GW_PORT}`,
              apiKey: "sk-right",
              api: "anthropic-messages",
              models: [{ id: "main", contextWindow: 32768 }],
            },
          },
        },
        agents: { defaults: { model: { primary: "clawbridge/main" } } },
      }),
    );
    ollama.setReply((r) =>
      r.body.tools
        ? { toolCalls: [{ name: "get_time", arguments: {} }] }
        : { text: "1 2 3 4 5 6 7 8 9 10", usage: { prompt: 20, completion: 10 } },
    );
    const checks = await runDoctor({
      config: config(
        `  o: { kind: ollama, url: "${ollama.url}", discover: false }`,
        `  main: { backend: o, model: "qwen2.5:14b", context_window: 32768 }`,
      ),
      openclawConfig: oc,
      probe: true,
      probeTimeoutMs: 10_000,
    });
    assert.deepEqual(
      checks.filter((c) => c.status === "fail" || c.status === "warn"),
      [],
      renderChecks(checks),
    );
    assert.match(find(checks, "model:main:stream").detail!, /first token after/);
    assert.match(find(checks, "model:main:stream").detail!, /tokens\/s/);
    assert.equal(find(checks, "model:main:tool-probe").detail, "called the tool natively");
    assert.equal(find(checks, "openclaw:clawbridge:main:context").status, "ok");
  });

  test("wrong port, wrong kind, a missing model, a model without tools", async () => {
    const checks = await runDoctor({
      config: config(
        [
          `  down: { kind: ollama, url: "http://127.0.0.1:9" }`,
          `  mixed: { kind: ollama, url: "${llama.url}" }`,
          `  o: { kind: ollama, url: "${ollama.url}", discover: false }`,
        ].join("\n"),
        [
          `  a: { backend: down, model: x }`,
          `  gone: { backend: o, model: "llama3.3:70b" }`,
          `  notools: { backend: o, model: gemma3, context_window: 32768 }`,
        ].join("\n"),
      ),
      openclawConfig: join(dir, "none.json"),
    });
    const down = find(checks, "backend:down");
    assert.equal(down.status, "fail");
    assert.match(down.detail!, /connection refused/);
    assert.match(
      down.fix!,
      /nothing listens at http:\/\/127.0.0.1:9: start the server \(`ollama serve`\) or correct the port/,
    );
    const mixed = find(checks, "backend:mixed");
    assert.equal(mixed.status, "fail");
    assert.match(mixed.fix!, /this is llama\.cpp, not Ollama: set kind: openai-compat \(flavor: llamacpp\)/);
    const gone = find(checks, "model:gone:present");
    assert.equal(gone.status, "fail");
    assert.equal(gone.fix, "ollama pull llama3.3:70b");
    const tools = find(checks, "model:notools:tools");
    assert.equal(tools.status, "warn");
    assert.match(tools.detail!, /no native tool support: clawbridge emulates tools/);
    assert.equal(find(checks, "openclaw:config").status, "skip");
  });

  test("OpenClaw: /v1 missing, a window larger than served, pointing elsewhere, a wrong key", async () => {
    const cfg = config(
      `  o: { kind: ollama, url: "${ollama.url}" }`,
      `  small: { backend: o, model: "qwen2.5:14b", context_window: 8192 }`,
    );
    const v1 = file(
      "v1.json",
      JSON.stringify({
        models: {
          providers: {
            cb: {
              baseUrl: `http://localhost:${GW_PORT}`,
              apiKey: "sk-wrong",
              api: "openai-completions",
              models: [{ id: "small", contextWindow: 131072 }],
            },
          },
        },
      }),
    );
    const checks = await runDoctor({ config: cfg, openclawConfig: v1 });
    const url = find(checks, "openclaw:cb:url");
    assert.equal(url.status, "fail");
    assert.match(url.fix!, new RegExp(`baseUrl: "http://localhost:${GW_PORT}/v1"`));
    const ctx = find(checks, "openclaw:cb:small:context");
    assert.equal(ctx.status, "fail");
    assert.match(ctx.detail!, /OpenClaw believes 131072 tokens, the server serves 8192/);
    assert.equal(ctx.fix, "clawbridge openclaw (writes the real windows)");
    assert.equal(find(checks, "openclaw:cb:key").status, "fail");
    assert.equal(find(checks, "model:small:openclaw-minimum").status, "warn");

    const elsewhere = file(
      "elsewhere.json",
      `{ models: { providers: { clawbridge: { baseUrl: "http://127.0.0.1:11435/v1", api: "openai-completions", models: [] } } } }`,
    );
    const e = find(await runDoctor({ config: cfg, openclawConfig: elsewhere }), "openclaw:provider");
    assert.equal(e.status, "fail");
    assert.match(
      e.detail!,
      /points at http:\/\/127.0.0.1:11435\/v1, but clawbridge serves http:\/\/127.0.0.1:4999/,
    );
    assert.equal(e.fix, "clawbridge openclaw");
  });

  test("a port taken by another program", async () => {
    const { createServer } = await import("node:http");
    const squatter = createServer((_q, r) => r.end("not clawbridge"));
    await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
    const port = (squatter.address() as { port: number }).port;
    try {
      const cfg = file(
        "port.yaml",
        `server: { port: ${port} }\nbackends:\n  o: { kind: ollama, url: "${ollama.url}" }\n`,
      );
      const c = find(
        await runDoctor({ config: cfg, openclawConfig: join(dir, "none.json") }),
        "gateway:port",
      );
      assert.equal(c.status, "fail");
      assert.match(c.detail!, /another program listens/);
    } finally {
      squatter.close();
    }
  });
});
