/**
 * LangChain JS through clawbridge, with both chat models a user points at it (`ChatAnthropic` at
 * /v1/messages, `ChatOpenAI` at /v1/chat/completions), on an Ollama and a llama.cpp fake: invoke,
 * stream, a bindTools loop that runs the tool and feeds ToolMessages back, and
 * withStructuredOutput with its default method — what the user's code gets, and what the
 * backend was sent.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ChatAnthropic } from "@langchain/anthropic";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { type BaseMessage, HumanMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { ChatOpenAI } from "@langchain/openai";
import { z } from "zod";
import type { FakeServer } from "../fakes/script.js";
import { ALIAS, agentModel, FINAL_TEXT, HELLO, LOCAL_BACKENDS, WEATHER } from "../fixtures/agent-sdks.js";
import { oneBackend, type RunningGateway, startGateway } from "../helpers.js";

const MODELS: Array<{ name: string; make(url: string): BaseChatModel; structured: "tool" | "json_schema" }> =
  [
    {
      name: "ChatAnthropic",
      make: (url) =>
        new ChatAnthropic({ model: ALIAS, anthropicApiUrl: url, apiKey: "unused", maxRetries: 0 }),
      // its default method: a forced tool call
      structured: "tool",
    },
    {
      name: "ChatOpenAI",
      make: (url) =>
        new ChatOpenAI({
          model: ALIAS,
          apiKey: "unused",
          maxRetries: 0,
          configuration: { baseURL: `${url}/v1` },
        }),
      // its default method for a model that is not an old GPT: response_format json_schema
      structured: "json_schema",
    },
  ];

const WeatherSchema = z.object({ city: z.string(), temperature: z.number(), conditions: z.string() });

for (const backend of LOCAL_BACKENDS)
  for (const m of MODELS)
    describe(`LangChain ${m.name} → clawbridge → ${backend.name}`, () => {
      let fake: FakeServer;
      let gw: RunningGateway;
      let chat: BaseChatModel;
      before(async () => {
        fake = await backend.start();
        fake.setReply(agentModel);
        gw = await startGateway(oneBackend(backend.kind, fake.url, backend.model, backend.extra, ALIAS));
        chat = m.make(gw.url);
      });
      after(async () => {
        await gw.close();
        await fake.close();
      });
      const last = () => backend.chats(fake).at(-1)!.body;

      test("invoke and stream give the text", async () => {
        const r = await chat.invoke("Say hello");
        assert.equal(r.text, HELLO);
        assert.ok(JSON.stringify(last().messages).includes("Say hello"));

        let text = "";
        let pieces = 0;
        for await (const chunk of await chat.stream("Say hello")) {
          text += chunk.text;
          if (chunk.text) pieces++;
        }
        assert.equal(text, HELLO);
        assert.ok(pieces > 1, "streamed in pieces");
        assert.equal(last().stream, true);
      });

      test("a bindTools loop: the tool runs with the model's arguments, its ToolMessage goes back", async () => {
        const calls: unknown[] = [];
        const getWeather = tool(
          async (input) => {
            calls.push(input);
            return "21 degrees, sunny";
          },
          { name: "get_weather", description: "Weather for a city", schema: z.object({ city: z.string() }) },
        );
        const withTools = chat.bindTools!([getWeather]);
        const messages: BaseMessage[] = [new HumanMessage("What is the weather in Paris?")];
        let turns = 0;
        for (; turns < 4; turns++) {
          const ai = await withTools.invoke(messages);
          messages.push(ai);
          if (!ai.tool_calls?.length) break;
          for (const tc of ai.tool_calls) messages.push(await getWeather.invoke(tc));
        }
        assert.deepEqual(calls, [{ city: "Paris" }]);
        assert.equal(turns, 1);
        assert.equal(messages.at(-1)!.text, FINAL_TEXT);
        const result = last().messages.find((x: any) => x.role === "tool");
        assert.equal(result?.content, "21 degrees, sunny");
      });

      if (m.structured === "tool")
        test('withStructuredOutput { method: "jsonSchema" }: output_config.format constrains the backend', async () => {
          const r = await chat
            .withStructuredOutput(WeatherSchema, { method: "jsonSchema" })
            .invoke("Weather in Paris");
          assert.deepEqual(r, WEATHER);
          const schema = backend.constraint(last()) as any;
          assert.deepEqual(schema?.required?.sort(), ["city", "conditions", "temperature"]);
        });

      test("withStructuredOutput (default method) gives the typed object", async () => {
        const structured = chat.withStructuredOutput(WeatherSchema);
        const r = await structured.invoke("Weather in Paris");
        assert.deepEqual(r, WEATHER);
        const sent = last();
        if (m.structured === "json_schema") {
          const schema = backend.constraint(sent) as any;
          assert.ok(schema, "the backend got the schema as a constraint");
          assert.deepEqual(schema.required.sort(), ["city", "conditions", "temperature"]);
        } else {
          // a forced tool: the backend got the one tool, its parameters the schema
          assert.equal(sent.tools.length, 1);
          const params = sent.tools[0].function.parameters;
          assert.deepEqual(Object.keys(params.properties).sort(), ["city", "conditions", "temperature"]);
          // a server with tool_choice is told to call it (Ollama's API has no such field)
          if (backend.kind === "openai-compat")
            assert.deepEqual(sent.tool_choice, {
              type: "function",
              function: { name: sent.tools[0].function.name },
            });
        }
      });
    });
