import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { BACKENDS, PNG_1x1, toolResultIn } from "../../backends/cases.js";
import type { FakeServer } from "../../fakes/script.js";
import { oneBackend, type RunningGateway, startGateway } from "../../helpers.js";

const WEATHER_TOOL = {
  name: "get_weather",
  description: "Weather for a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] },
};

for (const backend of BACKENDS) {
  describe(`Anthropic SDK → clawbridge → ${backend.kind}`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    let client: Anthropic;
    before(async () => {
      fake = await backend.start();
      gw = await startGateway(oneBackend(backend.kind, fake.url, backend.model, backend.extra));
      client = new Anthropic({ baseURL: gw.url, apiKey: "unused", maxRetries: 0 });
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    test("messages.create and messages.stream give the same message", async () => {
      fake.setReply({ text: "Hello there, friend. How can I help?", usage: { prompt: 42, completion: 9 } });
      const params = {
        model: "test-model",
        max_tokens: 100,
        system: "Be brief.",
        messages: [{ role: "user" as const, content: "Say hello" }],
      };
      const created = await client.messages.create(params);
      assert.equal(created.type, "message");
      assert.equal(created.role, "assistant");
      assert.equal(created.model, "test-model");
      assert.deepEqual(created.content, [{ type: "text", text: "Hello there, friend. How can I help?" }]);
      assert.equal(created.stop_reason, "end_turn");
      assert.equal(created.usage.input_tokens, 42);
      assert.equal(created.usage.output_tokens, 9);

      const streamed = await client.messages.stream(params).finalMessage();
      const { id: _a, ...c } = created;
      // the stream helper adds `parsed_output` (structured outputs) of its own
      const { id: _b, parsed_output: _p, ...s } = streamed as typeof streamed & { parsed_output?: unknown };
      assert.deepEqual(s, c);
      assert.match(streamed.id, /^msg_/);

      // The backend got the system prompt, the user turn and the output limit in its own wire.
      const sent = backend.chats(fake).at(-1)!.body;
      const system = backend.kind === "anthropic" ? sent.system : sent.messages[0].content;
      assert.equal(system, "Be brief.");
      assert.equal(JSON.stringify(sent).includes("Say hello"), true);
      if (backend.kind === "ollama") assert.equal(sent.options.num_predict, 100);
      else assert.equal(sent.max_tokens, 100);
    });

    test("a tool round trip", async () => {
      fake.setReply({
        text: "Let me check.",
        toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }],
      });
      const first = await client.messages.create({
        model: "test-model",
        max_tokens: 200,
        tools: [WEATHER_TOOL],
        messages: [{ role: "user", content: "Weather in Paris?" }],
      });
      assert.equal(first.stop_reason, "tool_use");
      const use = first.content.find((b) => b.type === "tool_use");
      assert.ok(use && use.type === "tool_use");
      assert.equal(use.name, "get_weather");
      assert.deepEqual(use.input, { city: "Paris" });
      assert.equal(first.content[0]?.type, "text");

      // The same call, streamed, assembles the same blocks.
      const streamed = await client.messages
        .stream({
          model: "test-model",
          max_tokens: 200,
          tools: [WEATHER_TOOL],
          messages: [{ role: "user", content: "Weather in Paris?" }],
        })
        .finalMessage();
      assert.deepEqual(
        streamed.content.map((b) => (b.type === "tool_use" ? { ...b, id: "" } : b)),
        first.content.map((b) => (b.type === "tool_use" ? { ...b, id: "" } : b)),
      );
      assert.equal(streamed.stop_reason, "tool_use");

      fake.setReply({ text: "It is sunny in Paris." });
      const second = await client.messages.create({
        model: "test-model",
        max_tokens: 200,
        tools: [WEATHER_TOOL],
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: first.content },
          { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "sunny, 24°C" }] },
        ],
      });
      assert.deepEqual(second.content, [{ type: "text", text: "It is sunny in Paris." }]);
      const sent = backend.chats(fake).at(-1)!.body;
      const result = toolResultIn(backend.kind, sent);
      assert.ok(result, "the backend received the tool result");
      assert.equal(result.content, "sunny, 24°C");
      if (backend.kind !== "ollama") assert.equal(result.id, use.id);
      else assert.equal(sent.messages.find((m: any) => m.role === "tool").tool_name, "get_weather");
      // and the assistant's call, with its arguments as the backend's wire has them
      const wire = JSON.stringify(sent.messages);
      assert.ok(wire.includes("get_weather") && wire.includes("Paris"));
    });

    test("an image reaches the backend", async () => {
      fake.setReply({ text: "A single pixel." });
      const msg = await client.messages.create({
        model: "test-model",
        max_tokens: 50,
        messages: [
          {
            role: "user",
            content: [
              { type: "image", source: { type: "base64", media_type: "image/png", data: PNG_1x1 } },
              { type: "text", text: "What is this?" },
            ],
          },
        ],
      });
      assert.deepEqual(msg.content, [{ type: "text", text: "A single pixel." }]);
      const sent = backend.chats(fake).at(-1)!.body;
      const user = sent.messages.find((m: any) => m.role === "user");
      if (backend.kind === "ollama") assert.deepEqual(user.images, [PNG_1x1]);
      else if (backend.kind === "openai-compat")
        assert.equal(
          user.content.find((p: any) => p.type === "image_url").image_url.url,
          `data:image/png;base64,${PNG_1x1}`,
        );
      else assert.equal(user.content[0].source.data, PNG_1x1);
    });

    test("max_tokens ends with stop_reason max_tokens", async () => {
      fake.setReply({ text: "This answer is cut", finishReason: "length" });
      const msg = await client.messages.create({
        model: "test-model",
        max_tokens: 5,
        messages: [{ role: "user", content: "Talk" }],
      });
      assert.equal(msg.stop_reason, "max_tokens");
    });

    if (backend.kind !== "anthropic") {
      test("reasoning arrives as a thinking block", async () => {
        fake.setReply({ reasoning: "The user greets me.", text: "Hi!" });
        const msg = await client.messages
          .stream({
            model: "test-model",
            max_tokens: 50,
            messages: [{ role: "user", content: "Hello" }],
          })
          .finalMessage();
        assert.equal(msg.content[0]?.type, "thinking");
        assert.equal(msg.content[0]?.type === "thinking" && msg.content[0].thinking, "The user greets me.");
        assert.deepEqual(msg.content[1], { type: "text", text: "Hi!" });
      });
    }
  });
}
