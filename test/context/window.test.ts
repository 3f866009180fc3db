/**
 * A window that fits real agent prompts (issue 17): with no memory budget stated, an Ollama model gets
 * num_ctx 32,768 (capped at what it was trained for); one model gets one num_ctx whatever alias names it;
 * a first request that still does not fit is refused with the setting to raise.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer } from "../fakes/script.js";
import { startGateway } from "../helpers.js";

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/openclaw/${name}.json`, import.meta.url), "utf8"));

function chats(fake: FakeServer) {
  return fake.requests.filter((r) => r.path === "/api/chat");
}

describe("the default window on Ollama", () => {
  test("OpenClaw's first request (built-in anthropic provider: adaptive thinking, max_tokens 32000) succeeds on a default-config model trained for 262,144", async () => {
    // the seeds' recommended model: no thinking, trained for 256k; Ollama's own default would be 4096
    const fake = await startOllamaFake({
      models: [{ name: "qwen3-coder:30b", contextLength: 262144, capabilities: ["completion", "tools"] }],
      reply: { text: "Hi! What shall we work on?" },
    });
    const gw = await startGateway(`
backends:
  ollama: { kind: ollama, url: "${fake.url}" }
models:
  qwen: { backend: ollama, model: "qwen3-coder:30b" }
`);
    try {
      // The captured custom-provider request (~13.6k tokens as clawbridge counts it), with the workspace
      // bootstrap files the built-in provider's agent puts in its system prompt, to the ~17.8k the issue measured.
      const captured = fixture("anthropic-messages.custom.turn1");
      const bootstrap = Array.from(
        { length: 160 },
        (_, i) =>
          `- Rule ${i + 1}: keep changes small, run the tests in the workspace before you answer, and say what you ran.`,
      ).join("\n");
      const body = {
        ...captured,
        system: [...captured.system, { type: "text", text: `# AGENTS.md (workspace)\n${bootstrap}` }],
        model: "qwen",
        max_tokens: 32000,
      };
      const counted = (await (
        await fetch(`${gw.url}/v1/messages/count_tokens`, {
          method: "POST",
          headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
          body: JSON.stringify({
            model: "qwen",
            system: body.system,
            messages: body.messages,
            tools: body.tools,
          }),
        })
      ).json()) as { input_tokens: number };
      assert.ok(
        counted.input_tokens > 16384 - 1024 && counted.input_tokens < 20000,
        `an agent-sized prompt (${counted.input_tokens} tokens) that the old 16k default did not fit`,
      );
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      const msg = await client.messages
        .stream({ ...body, thinking: { type: "adaptive" } } as never)
        .finalMessage();
      assert.deepEqual(msg.content, [{ type: "text", text: "Hi! What shall we work on?" }]);
      const sent = chats(fake).at(-1)!;
      assert.equal(sent.body.options.num_ctx, 32768);
      assert.equal(sent.body.think, undefined, "the model cannot think: not asked to");
      assert.ok((sent.prompt?.tokens ?? 0) <= 32768, "the fake saw the whole prompt inside num_ctx");
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("a model trained for less gets its trained context", async () => {
    const fake = await startOllamaFake({ models: [{ name: "llama3.2", contextLength: 8192 }] });
    const gw = await startGateway(`
backends:
  ollama: { kind: ollama, url: "${fake.url}" }
models:
  small: { backend: ollama, model: "llama3.2" }
`);
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      await client.chat.completions.create({ model: "small", messages: [{ role: "user", content: "hi" }] });
      assert.equal(chats(fake).at(-1)!.body.options.num_ctx, 8192);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("one model, one num_ctx: every alias and its own name send the one configured", async () => {
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:14b", contextLength: 131072 }] });
    const gw = await startGateway(`
backends:
  ollama: { kind: ollama, url: "${fake.url}", discover: true }
models:
  claude-sonnet-4-5: { backend: ollama, model: "qwen2.5:14b", num_ctx: 49152 }
  claude-haiku-4-5: { backend: ollama, model: "qwen2.5:14b" }
  plain: { backend: ollama, model: "qwen2.5:14b", context_window: 40960 }
`);
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      for (const model of ["claude-sonnet-4-5", "claude-haiku-4-5", "plain", "qwen2.5:14b"]) {
        await client.messages.create({ model, max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
        assert.equal(chats(fake).at(-1)!.body.options.num_ctx, 49152, model);
      }
      const listed = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      assert.ok(listed.data.some((m) => m.id === "claude-haiku-4-5"));
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("a first request that does not fit names the setting to raise, in both dialects", async () => {
    const fake = await startOllamaFake({ models: [{ name: "llama3.2", contextLength: 131072 }] });
    const gw = await startGateway(`
backends:
  ollama: { kind: ollama, url: "${fake.url}" }
models:
  tiny: { backend: ollama, model: "llama3.2", num_ctx: 4096 }
`);
    try {
      const body = fixture("anthropic-messages.custom.turn1");
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      const before = chats(fake).length;
      await assert.rejects(
        anthropic.messages.create({ ...body, model: "tiny", max_tokens: 1000, stream: false }),
        (e: unknown) => {
          assert.ok(e instanceof Anthropic.BadRequestError);
          assert.match(
            e.message,
            /prompt is too long: \d+ tokens > \d+ maximum\. 'tiny' is served with a 4096-token window \(from clawbridge's config\): raise num_ctx on the model/,
          );
          return true;
        },
      );
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      const oc = fixture("openai-completions.turn1");
      await assert.rejects(
        openai.chat.completions.create({ ...oc, model: "tiny", stream: false }),
        (e: unknown) => {
          assert.ok(e instanceof OpenAI.BadRequestError);
          assert.equal(e.code, "context_length_exceeded");
          assert.match(
            e.message,
            /This model's maximum context length is \d+ tokens\..*raise num_ctx on the model/,
          );
          return true;
        },
      );
      assert.equal(chats(fake).length, before, "refused before the server saw it");
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
