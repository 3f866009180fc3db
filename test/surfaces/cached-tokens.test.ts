import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { oneBackend, startGateway } from "../helpers.js";

// Cached prompt tokens, as each server reports them, reach the client in its own dialect:
// Anthropic's usage.cache_read_input_tokens (input_tokens then counts only what was read afresh),
// OpenAI's usage.prompt_tokens_details.cached_tokens (prompt_tokens counts the whole prompt).

const TASK = `Read the repository and list every exported function. ${"Context line. ".repeat(120)}`;

async function twoTurnsAnthropic(url: string, stream: boolean) {
  const client = new Anthropic({ baseURL: url, apiKey: "k", maxRetries: 0 });
  const ask = async (messages: Anthropic.MessageParam[]) =>
    stream
      ? (await client.messages.stream({ model: "test-model", max_tokens: 20, messages }).finalMessage()).usage
      : (await client.messages.create({ model: "test-model", max_tokens: 20, messages })).usage;
  const first = await ask([{ role: "user", content: TASK }]);
  const second = await ask([
    { role: "user", content: TASK },
    { role: "assistant", content: "Hello from the fake backend." },
    { role: "user", content: "And the classes?" },
  ]);
  return [first, second] as const;
}

async function twoTurnsOpenAI(url: string, stream: boolean) {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });
  const ask = async (messages: OpenAI.ChatCompletionMessageParam[]) => {
    if (!stream) return (await client.chat.completions.create({ model: "test-model", messages })).usage!;
    const s = await client.chat.completions.create({
      model: "test-model",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of s) if (chunk.usage) usage = chunk.usage;
    return usage!;
  };
  const first = await ask([{ role: "user", content: TASK }]);
  const second = await ask([
    { role: "user", content: TASK },
    { role: "assistant", content: "Hello from the fake backend." },
    { role: "user", content: "And the classes?" },
  ]);
  return [first, second] as const;
}

describe("cached prompt tokens in the client's usage", () => {
  for (const stream of [false, true]) {
    test(`llama.cpp (timings.cache_n, prompt_tokens_details), ${stream ? "streaming" : "not streaming"}: both SDKs see the cached part`, async () => {
      const fake = await startOpenAICompatFake({ flavor: "llamacpp", contextLength: 32768 });
      const gw = await startGateway(
        oneBackend("openai-compat", fake.url, "fake-model", "    flavor: llamacpp"),
      );
      try {
        const [a1, a2] = await twoTurnsAnthropic(gw.url, stream);
        const sent = fake.requests.filter((r) => r.path === "/v1/chat/completions");
        const cached = sent[1]!.cache!.cached;
        assert.ok(cached > 100, `the fake's slot held the first turn (${cached})`);
        assert.equal(a1.cache_read_input_tokens, 0);
        assert.equal(a1.input_tokens, sent[0]!.prompt!.tokens);
        assert.equal(a2.cache_read_input_tokens, cached);
        assert.equal(
          a2.input_tokens,
          sent[1]!.prompt!.tokens - cached,
          "input_tokens: only what was read afresh",
        );

        const [o1, o2] = await twoTurnsOpenAI(gw.url, stream);
        const again = fake.requests.filter((r) => r.path === "/v1/chat/completions").slice(2);
        // the slot still holds the Anthropic conversation's second turn: the first OpenAI turn shares the task
        assert.equal(o1.prompt_tokens_details?.cached_tokens, again[0]!.cache!.cached);
        assert.equal(o2.prompt_tokens, again[1]!.prompt!.tokens, "prompt_tokens: the whole prompt");
        assert.equal(o2.prompt_tokens_details?.cached_tokens, again[1]!.cache!.cached);
        assert.ok(o2.prompt_tokens_details!.cached_tokens! > 100);

        const metrics = await (await fetch(`${gw.url}/metrics`)).text();
        const fromCache = /clawbridge_prompt_tokens_total\{model="test-model",from="cache"\} (\d+)/.exec(
          metrics,
        );
        const total = sent
          .concat(again)
          .map((r) => r.cache!.cached)
          .reduce((x, y) => x + y, 0);
        assert.equal(Number(fromCache?.[1]), total, "the metric counts every cached token");
      } finally {
        await gw.close();
        await fake.close();
      }
    });
  }

  test("vLLM with --enable-prompt-tokens-details: cached_tokens in whole blocks; without it, not reported", async () => {
    for (const details of [true, false]) {
      const fake: FakeServer = await startOpenAICompatFake({ flavor: "vllm", promptTokensDetails: details });
      const gw = await startGateway(oneBackend("openai-compat", fake.url, "fake-model", "    flavor: vllm"));
      try {
        const [, o2] = await twoTurnsOpenAI(gw.url, true);
        const [, a2] = await twoTurnsAnthropic(gw.url, false);
        if (details) {
          assert.ok(o2.prompt_tokens_details!.cached_tokens! >= 16);
          assert.equal(o2.prompt_tokens_details!.cached_tokens! % 16, 0);
          assert.ok(a2.cache_read_input_tokens! >= 16);
        } else {
          assert.equal(o2.prompt_tokens_details, undefined, "no figure made up");
          assert.equal(a2.cache_read_input_tokens, null, "no figure made up");
        }
      } finally {
        await gw.close();
        await fake.close();
      }
    }
  });

  test("Ollama says nothing of its cache (prompt_eval_count is the whole prompt): the field is left empty", async () => {
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b", capabilities: ["completion"] }] });
    const gw = await startGateway(oneBackend("ollama", fake.url, "qwen2.5:7b"));
    try {
      const [, a2] = await twoTurnsAnthropic(gw.url, true);
      const [, o2] = await twoTurnsOpenAI(gw.url, false);
      assert.equal(a2.cache_read_input_tokens, null);
      assert.ok(a2.input_tokens > 100, "the whole prompt");
      assert.equal(o2.prompt_tokens_details, undefined);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
