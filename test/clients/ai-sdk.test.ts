/**
 * The Vercel AI SDK through clawbridge, with both of its providers a user points at it
 * (`@ai-sdk/anthropic` at /v1/messages, `@ai-sdk/openai-compatible` at /v1/chat/completions), on
 * an Ollama and a llama.cpp fake: text, streaming, a multi-step tool loop whose tool executes,
 * and structured output — what the user's code gets, and what the backend was sent.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateObject, generateText, type LanguageModel, Output, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import type { FakeServer } from "../fakes/script.js";
import { ALIAS, agentModel, FINAL_TEXT, HELLO, LOCAL_BACKENDS, WEATHER } from "../fixtures/agent-sdks.js";
import { oneBackend, type RunningGateway, startGateway } from "../helpers.js";

const PROVIDERS: Array<{ name: string; model(url: string): LanguageModel }> = [
  {
    name: "@ai-sdk/anthropic",
    model: (url) => createAnthropic({ baseURL: `${url}/v1`, apiKey: "unused" })(ALIAS),
  },
  {
    name: "@ai-sdk/openai-compatible",
    model: (url) =>
      createOpenAICompatible({
        name: "clawbridge",
        baseURL: `${url}/v1`,
        apiKey: "unused",
        supportsStructuredOutputs: true,
      }).chatModel(ALIAS),
  },
];

const WeatherSchema = z.object({ city: z.string(), temperature: z.number(), conditions: z.string() });

for (const backend of LOCAL_BACKENDS)
  for (const provider of PROVIDERS)
    describe(`AI SDK ${provider.name} → clawbridge → ${backend.name}`, () => {
      let fake: FakeServer;
      let gw: RunningGateway;
      let model: LanguageModel;
      before(async () => {
        fake = await backend.start();
        fake.setReply(agentModel);
        gw = await startGateway(oneBackend(backend.kind, fake.url, backend.model, backend.extra, ALIAS));
        model = provider.model(gw.url);
      });
      after(async () => {
        await gw.close();
        await fake.close();
      });
      const last = () => backend.chats(fake).at(-1)!.body;

      test("generateText and streamText give the text", async () => {
        const r = await generateText({ model, prompt: "Say hello", maxRetries: 0 });
        assert.equal(r.text, HELLO);
        assert.equal(r.finishReason, "stop");
        assert.ok(JSON.stringify(last().messages).includes("Say hello"));

        const s = streamText({ model, prompt: "Say hello", maxRetries: 0 });
        let pieces = 0;
        let text = "";
        for await (const t of s.textStream) {
          pieces++;
          text += t;
        }
        assert.equal(text, HELLO);
        assert.ok(pieces > 1, "streamed in pieces");
        assert.equal(await s.finishReason, "stop");
        assert.equal(last().stream, true);
      });

      test("a multi-step tool loop: the tool executes with the model's arguments, the answer follows", async () => {
        const calls: unknown[] = [];
        const tools = {
          get_weather: tool({
            description: "Weather for a city",
            inputSchema: z.object({ city: z.string() }),
            execute: async (input) => {
              calls.push(input);
              return { temperature: 21, conditions: "sunny" };
            },
          }),
        };
        const before = backend.chats(fake).length;
        const r = await generateText({
          model,
          tools,
          stopWhen: stepCountIs(4),
          prompt: "What is the weather in Paris?",
          maxRetries: 0,
        });
        assert.deepEqual(calls, [{ city: "Paris" }]);
        assert.equal(r.steps.length, 2);
        assert.equal(r.steps[0]!.finishReason, "tool-calls");
        assert.equal(r.text, FINAL_TEXT);
        // the second request carried the tool's result back to the model
        const sent = backend.chats(fake).slice(before);
        assert.equal(sent.length, 2);
        const tool_ = sent[1]!.body.messages.find((m: any) => m.role === "tool");
        assert.ok(tool_, "a tool message");
        assert.match(tool_.content, /sunny/);

        // the same loop streamed
        calls.length = 0;
        const s = streamText({
          model,
          tools,
          stopWhen: stepCountIs(4),
          prompt: "What is the weather in Paris?",
          maxRetries: 0,
        });
        assert.equal(await s.text, FINAL_TEXT);
        assert.deepEqual(calls, [{ city: "Paris" }]);
      });

      test("structured output: Output.object and generateObject give the typed object; the backend was constrained", async () => {
        const r = await generateText({
          model,
          output: Output.object({ schema: WeatherSchema }),
          prompt: "Weather in Paris as JSON",
          maxRetries: 0,
        });
        assert.deepEqual(r.output, WEATHER);
        const schema = backend.constraint(last()) as any;
        assert.ok(schema, "the backend got the schema as a constraint");
        assert.deepEqual(Object.keys(schema.properties).sort(), ["city", "conditions", "temperature"]);

        const o = await generateObject({
          model,
          schema: WeatherSchema,
          prompt: "Weather in Paris",
          maxRetries: 0,
        });
        assert.deepEqual(o.object, WEATHER);
        assert.deepEqual((backend.constraint(last()) as any).required.sort(), [
          "city",
          "conditions",
          "temperature",
        ]);
      });
    });
