import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runDoctor } from "../../src/doctor/doctor.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";

/** A backend of one kind pointed at a server of another: the doctor says what answers there, and the kind to set. */
describe("doctor: the server at a backend's URL is named by what it answers", () => {
  const servers: Record<string, FakeServer> = {};
  before(async () => {
    servers.llamacpp = await startOpenAICompatFake({ flavor: "llamacpp", models: ["qwen"] });
    servers.vllm = await startOpenAICompatFake({ flavor: "vllm", models: ["Qwen/Qwen3-8B"] });
    servers.ollama = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }] });
  });
  after(async () => {
    for (const s of Object.values(servers)) await s.close();
  });

  const dir = mkdtempSync(join(tmpdir(), "cb-doctor-kind-"));
  async function fixFor(kind: string, url: string): Promise<string | undefined> {
    const file = join(dir, `${kind}-${Math.random()}.yaml`);
    writeFileSync(
      file,
      `server: { port: 4998 }\nbackends:\n  b: { kind: ${kind}, url: "${url}", discover: false }\nmodels:\n  m: { backend: b, model: x }\n`,
    );
    const checks = await runDoctor({ config: file, openclawConfig: join(dir, "none.json") });
    const c = checks.find((c) => c.id === "backend:b");
    assert.equal(c?.status, "fail");
    return c?.fix;
  }
  const root = (s: FakeServer) => new URL(s.url).origin;

  test("kind: ollama at llama.cpp: this is llama.cpp, set kind: openai-compat (flavor llamacpp)", async () => {
    assert.equal(
      await fixFor("ollama", root(servers.llamacpp!)),
      `this is llama.cpp, not Ollama: set kind: openai-compat (flavor: llamacpp) and url: ${root(servers.llamacpp!)}/v1`,
    );
  });

  test("kind: ollama at vLLM: flavor vllm", async () => {
    assert.equal(
      await fixFor("ollama", root(servers.vllm!)),
      `this is vLLM, not Ollama: set kind: openai-compat (flavor: vllm) and url: ${root(servers.vllm!)}/v1`,
    );
  });

  test("kind: openai-compat at Ollama's root under a wrong path: this is Ollama, set kind: ollama", async () => {
    assert.equal(
      await fixFor("openai-compat", `${root(servers.ollama!)}/v2`),
      `this is Ollama 0.12.6: set kind: ollama and url: ${root(servers.ollama!)}`,
    );
  });
});
