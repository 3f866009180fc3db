import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { startOllamaFake } from "../fakes/ollama.js";
import { oneBackend, startGateway } from "../helpers.js";

describe("Ollama keep_alive", () => {
  for (const [said, extra, expected] of [
    ["not configured: 30m, so a human pause does not unload the model and its cache", "", "30m"],
    ["configured per model: as configured (0 included)", "", 0],
  ] as const) {
    test(said, async () => {
      const fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b", capabilities: ["completion"] }] });
      const yaml =
        expected === 0
          ? `
backends:
  b: { kind: ollama, url: "${fake.url}" }
models:
  test-model: { backend: b, model: "qwen2.5:7b", keep_alive: 0 }
`
          : oneBackend("ollama", fake.url, "qwen2.5:7b", extra);
      const gw = await startGateway(yaml);
      try {
        const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
        await client.messages.create({
          model: "test-model",
          max_tokens: 5,
          messages: [{ role: "user", content: "hi" }],
        });
        const chat = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!;
        assert.equal(chat.body.keep_alive, expected);
      } finally {
        await gw.close();
        await fake.close();
      }
    });
  }
});
