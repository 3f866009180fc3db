import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { BACKENDS, PNG_1x1, toolResultIn } from "../../backends/cases.js";
import type { FakeServer } from "../../fakes/script.js";
import { oneBackend, type RunningGateway, startGateway } from "../../helpers.js";

const WEATHER_TOOL = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

/** A completion without the fields that differ between two calls (id, created). */
function stable(c: OpenAI.Chat.Completions.ChatCompletion) {
  const { id: _i, created: _c, ...rest } = c;
  return {
    ...rest,
    choices: rest.choices.map((ch) => ({
      ...ch,
      message: {
        ...ch.message,
        parsed: undefined, // added by the SDK's stream helper
        tool_calls: ch.message.tool_calls?.map((t) => ({ ...t, id: "" })),
      },
    })),
  };
}

for (const backend of BACKENDS) {
  describe(`OpenAI SDK → clawbridge → ${backend.kind}`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    let client: OpenAI;
    before(async () => {
      fake = await backend.start();
      gw = await startGateway(oneBackend(backend.kind, fake.url, backend.model, backend.extra));
      client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    test("create, streamed chunks and the stream helper agree", async () => {
      fake.setReply({ text: "Hello there, friend.", usage: { prompt: 30, completion: 6 } });
      const params = {
        model: "test-model",
        messages: [
          { role: "system" as const, content: "Be brief." },
          { role: "user" as const, content: "Say hello" },
        ],
        max_completion_tokens: 64,
      };
      const created = await client.chat.completions.create(params);
      assert.equal(created.object, "chat.completion");
      assert.equal(created.model, "test-model");
      assert.equal(created.choices[0]?.message.content, "Hello there, friend.");
      assert.equal(created.choices[0]?.finish_reason, "stop");
      // llama.cpp and Anthropic report their cache (nothing cached: the script gave the counts); Ollama says nothing of it
      const { prompt_tokens_details: details, ...counts } = created.usage!;
      assert.deepEqual(counts, { prompt_tokens: 30, completion_tokens: 6, total_tokens: 36 });
      assert.deepEqual(details, backend.kind === "ollama" ? undefined : { cached_tokens: 0 });

      let text = "";
      let finish: string | null | undefined;
      let usage: OpenAI.CompletionUsage | undefined | null;
      const stream = await client.chat.completions.create({
        ...params,
        stream: true,
        stream_options: { include_usage: true },
      });
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const ch = chunk.choices[0];
        if (!ch) continue;
        text += ch.delta.content ?? "";
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      assert.equal(text, "Hello there, friend.");
      assert.equal(finish, "stop");
      assert.deepEqual(usage, created.usage);

      const final = await client.chat.completions
        .stream({ ...params, stream_options: { include_usage: true } })
        .finalChatCompletion();
      assert.deepEqual(stable(final), stable(created));

      const sent = backend.chats(fake).at(-1)!.body;
      if (backend.kind === "ollama") assert.equal(sent.options.num_predict, 64);
      else assert.equal(sent.max_tokens, 64);
    });

    test("tool calls, streaming and not, and the round trip", async () => {
      fake.setReply({
        toolCalls: [
          { name: "get_weather", arguments: { city: "Paris" } },
          { name: "get_weather", arguments: { city: "Oslo" } },
        ],
      });
      const params = {
        model: "test-model",
        tools: [WEATHER_TOOL],
        messages: [{ role: "user" as const, content: "Weather in Paris and Oslo?" }],
      };
      const created = await client.chat.completions.create(params);
      const msg = created.choices[0]!.message;
      assert.equal(created.choices[0]?.finish_reason, "tool_calls");
      assert.equal(msg.content, null);
      assert.equal(msg.tool_calls?.length, 2);
      const calls = msg.tool_calls!.map((t) => (t.type === "function" ? t.function : undefined));
      assert.deepEqual(
        calls.map((f) => [f?.name, JSON.parse(f?.arguments ?? "")]),
        [
          ["get_weather", { city: "Paris" }],
          ["get_weather", { city: "Oslo" }],
        ],
      );

      const final = await client.chat.completions.stream(params).finalChatCompletion();
      assert.deepEqual(stable(final).choices, stable(created).choices);

      fake.setReply({ text: "Sunny in Paris, snowing in Oslo." });
      const [c1, c2] = msg.tool_calls!;
      const second = await client.chat.completions.create({
        model: "test-model",
        tools: [WEATHER_TOOL],
        messages: [
          ...params.messages,
          msg,
          { role: "tool", tool_call_id: c1!.id, content: "sunny" },
          { role: "tool", tool_call_id: c2!.id, content: "snow" },
        ],
      });
      assert.equal(second.choices[0]?.message.content, "Sunny in Paris, snowing in Oslo.");
      const sent = backend.chats(fake).at(-1)!.body;
      const result = toolResultIn(backend.kind, sent);
      assert.equal(result?.content, "sunny");
      if (backend.kind === "openai-compat") {
        const tools = sent.messages.filter((m: any) => m.role === "tool");
        assert.deepEqual(
          tools.map((m: any) => [m.tool_call_id, m.content]),
          [
            [c1!.id, "sunny"],
            [c2!.id, "snow"],
          ],
        );
      }
    });

    test("an image_url part reaches the backend", async () => {
      fake.setReply({ text: "A pixel." });
      const res = await client.chat.completions.create({
        model: "test-model",
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "What is this?" },
              { type: "image_url", image_url: { url: `data:image/png;base64,${PNG_1x1}` } },
            ],
          },
        ],
      });
      assert.equal(res.choices[0]?.message.content, "A pixel.");
      const sent = backend.chats(fake).at(-1)!.body;
      assert.ok(JSON.stringify(sent).includes(PNG_1x1));
    });
  });
}
