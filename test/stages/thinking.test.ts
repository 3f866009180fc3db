/**
 * Thinking, as the model can: Claude Code always sends `thinking`, the OpenAI SDK `reasoning_effort`;
 * an Ollama model without the capability must answer, not 400 (issue 17). Through both official SDKs, against
 * the Ollama fake that refuses `think` as real Ollama does, and the Anthropic fake that verifies signatures.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startAnthropicFake } from "../fakes/anthropic.js";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer } from "../fakes/script.js";
import { type RunningGateway, startGateway } from "../helpers.js";

const CONFIG = (url: string) => `
backends:
  ol: { kind: ollama, url: "${url}" }
models:
  plain: { backend: ol, model: "qwen2.5-coder:7b" }
  thinker: { backend: ol, model: "qwen3:8b" }
`;

const MODELS = [
  { name: "qwen2.5-coder:7b", capabilities: ["completion", "tools"] },
  { name: "qwen3:8b", capabilities: ["completion", "tools", "thinking"] },
];

function chats(fake: FakeServer) {
  return fake.requests.filter((r) => r.path === "/api/chat");
}

for (const discover of [true, false]) {
  describe(`thinking on Ollama (discovery ${discover ? "on: capabilities known" : "off: learned from the refusal"})`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    let anthropic: Anthropic;
    let openai: OpenAI;
    before(async () => {
      fake = await startOllamaFake({ models: MODELS });
      gw = await startGateway(CONFIG(fake.url), { discover });
      anthropic = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    test("Claude Code's thinking (enabled, budget 31999) on a model that cannot think: an answer, no think sent", async () => {
      fake.setReply({ text: "Four." });
      const before = chats(fake).length;
      // streamed, as Claude Code does (the SDK will not send max_tokens 32000 without a stream)
      const msg = await anthropic.messages
        .stream({
          model: "plain",
          max_tokens: 32000,
          thinking: { type: "enabled", budget_tokens: 31999 },
          messages: [{ role: "user", content: "2+2?" }],
        })
        .finalMessage();
      assert.deepEqual(
        msg.content.map((b) => b.type),
        ["text"],
      );
      const sent = chats(fake).slice(before);
      if (discover) assert.equal(sent.length, 1, "known from /api/show: never sent");
      else {
        assert.equal(sent.length, 2, "refused once, then retried without thinking");
        assert.equal(sent[0]!.body.think, "high");
      }
      assert.equal(sent.at(-1)!.body.think, undefined);

      // adaptive, and remembered: one request, no think
      const n = chats(fake).length;
      const streamed = await anthropic.messages
        .stream({
          model: "plain",
          max_tokens: 1000,
          thinking: { type: "adaptive" } as never,
          messages: [{ role: "user", content: "2+2?" }],
        })
        .finalMessage();
      assert.deepEqual(streamed.content, [{ type: "text", text: "Four." }]);
      assert.equal(chats(fake).length, n + 1);
      assert.equal(chats(fake).at(-1)!.body.think, undefined);
    });

    test("OpenAI reasoning_effort on a model that cannot think: an answer, no think sent", async () => {
      fake.setReply({ text: "Five." });
      const r = await openai.chat.completions.create({
        model: "plain",
        reasoning_effort: "high",
        messages: [{ role: "user", content: "2+3?" }],
      });
      assert.equal(r.choices[0]!.message.content, "Five.");
      assert.equal(chats(fake).at(-1)!.body.think, undefined);
    });

    test("a thinking model gets think with the effort mapped, and its reasoning comes back", async () => {
      fake.setReply({ reasoning: "Two and two make four.", text: "Four." });
      const msg = await anthropic.messages
        .stream({
          model: "thinker",
          max_tokens: 32000,
          thinking: { type: "enabled", budget_tokens: 31999 },
          messages: [{ role: "user", content: "2+2?" }],
        })
        .finalMessage();
      assert.equal(chats(fake).at(-1)!.body.think, "high", "budget 31999 is a high effort");
      assert.deepEqual(
        msg.content.map((b) => b.type),
        ["thinking", "text"],
      );
      assert.equal((msg.content[0] as Anthropic.ThinkingBlock).thinking, "Two and two make four.");

      await anthropic.messages.create({
        model: "thinker",
        max_tokens: 1000,
        thinking: { type: "enabled", budget_tokens: 2000 },
        messages: [{ role: "user", content: "2+2?" }],
      });
      assert.equal(chats(fake).at(-1)!.body.think, "low");

      await anthropic.messages.create({
        model: "thinker",
        max_tokens: 1000,
        thinking: { type: "adaptive" } as never,
        output_config: { effort: "medium" },
        messages: [{ role: "user", content: "2+2?" }],
      } as never);
      assert.equal(chats(fake).at(-1)!.body.think, "medium", "output_config.effort is the effort");

      const r = await openai.chat.completions.create({
        model: "thinker",
        reasoning_effort: "minimal",
        messages: [{ role: "user", content: "2+2?" }],
      });
      assert.equal(chats(fake).at(-1)!.body.think, "low", "minimal is Ollama's low");
      assert.equal(r.choices[0]!.message.content, "Four.");

      await openai.chat.completions.create({
        model: "thinker",
        reasoning_effort: "none",
        messages: [{ role: "user", content: "2+2?" }],
      });
      assert.equal(chats(fake).at(-1)!.body.think, false);
    });
  });
}

describe("thinking on fallback to Anthropic", () => {
  test("a local model's unsigned thinking is not sent to Anthropic; the request is served there", async () => {
    const local = await startOllamaFake({ models: [MODELS[1]!] });
    const cloud = await startAnthropicFake();
    const gw = await startGateway(`
backends:
  ol: { kind: ollama, url: "${local.url}" }
  cloud: { kind: anthropic, url: "${cloud.url}", api_key: "sk-test" }
models:
  local: { backend: ol, model: "qwen3:8b" }
  cloud: { backend: cloud, model: "claude-sonnet-4-5" }
fallbacks:
  local: [cloud]
`);
    try {
      local.setReply({ text: "x", fault: { kind: "status", status: 500 } });
      cloud.setReply({ reasoning: "Checking.", text: "Done on the cloud." });
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      const msg = await client.messages.create({
        model: "local",
        max_tokens: 4000,
        thinking: { type: "enabled", budget_tokens: 2000 },
        messages: [
          { role: "user", content: "Read a.txt" },
          {
            role: "assistant",
            content: [
              // what clawbridge gave the client for the local model's reasoning: no signature
              { type: "thinking", thinking: "I should read it.", signature: "" },
              { type: "tool_use", id: "toolu_1", name: "Read", input: { path: "a.txt" } },
            ],
          },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "hello" }] },
        ],
        tools: [{ name: "Read", input_schema: { type: "object", properties: { path: { type: "string" } } } }],
      });
      assert.equal(msg.content.at(-1)!.type, "text");
      assert.equal((msg.content.at(-1) as Anthropic.TextBlock).text, "Done on the cloud.");
      const sent = cloud.requests.filter((r) => r.path === "/v1/messages").at(-1)!.body;
      assert.equal(JSON.stringify(sent.messages).includes("I should read it."), false);
      assert.equal(sent.messages[1].content[0].type, "tool_use");
    } finally {
      await gw.close();
      await local.close();
      await cloud.close();
    }
  });
});
