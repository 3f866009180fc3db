/**
 * The Vercel AI SDK's default OpenAI provider, `openai(id)` from `@ai-sdk/openai`, talks to `/v1/responses`: a
 * multi-step tool loop (generateText and streamText, tools executed by the SDK), and a follow-up turn built from
 * the first turn's messages, which the SDK sends with `item_reference`s to the gateway's stored output items.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { startOllamaFake } from "../../fakes/ollama.js";
import type { FakeServer, RecordedRequest } from "../../fakes/script.js";
import { oneBackend, type RunningGateway, startGateway } from "../../helpers.js";

/** The fake model: asks for the weather of each city it has no answer for yet, then sums up what the tools said. */
function weatherModel(req: RecordedRequest) {
  const messages = (req.body?.messages ?? []) as Array<{ role: string; content: string }>;
  const results = messages.filter((m) => m.role === "tool").map((m) => m.content);
  const last = messages.at(-1);
  if (last?.role === "user" && /tomorrow/.test(last.content)) return { text: "Tomorrow: rain." };
  if (results.length === 0) return { toolCalls: [{ name: "weather", arguments: { city: "Paris" } }] };
  if (results.length === 1) return { toolCalls: [{ name: "weather", arguments: { city: "Lyon" } }] };
  return { text: `Summary: ${results.join(" | ")}` };
}

const weather = tool({
  description: "Get the weather of a city",
  inputSchema: jsonSchema<{ city: string }>({
    type: "object",
    properties: { city: { type: "string" } },
    required: ["city"],
    additionalProperties: false,
  }),
  execute: async ({ city }) => ({ city, sky: city === "Paris" ? "sunny" : "cloudy" }),
});

describe("AI SDK openai(id) through /v1/responses", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  let openai: ReturnType<typeof createOpenAI>;
  /** The bodies the SDK posted. */
  const sent: any[] = [];
  before(async () => {
    fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }], reply: weatherModel });
    gw = await startGateway(oneBackend("ollama", fake.url, "qwen2.5:7b", "", "local-model"));
    openai = createOpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "x",
      fetch: (url, init) => {
        sent.push({ url: String(url), body: JSON.parse(String(init?.body)) });
        return fetch(url, init);
      },
    });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  test("generateText: a three-step tool loop, then a follow-up turn that refers to the first turn's items", async () => {
    const first = await generateText({
      model: openai("local-model"),
      system: "Be brief.",
      prompt: "Weather in Paris and Lyon?",
      tools: { weather },
      stopWhen: stepCountIs(5),
    });
    assert.equal(first.steps.length, 3);
    assert.deepEqual(
      first.steps.flatMap((s) => s.toolCalls.map((c) => [c.toolName, c.input])),
      [
        ["weather", { city: "Paris" }],
        ["weather", { city: "Lyon" }],
      ],
    );
    assert.equal(first.text, 'Summary: {"city":"Paris","sky":"sunny"} | {"city":"Lyon","sky":"cloudy"}');
    assert.equal(first.finishReason, "stop");
    assert.ok(first.usage.inputTokens && first.usage.inputTokens > 0);

    const seen = fake.requests.length;
    const second = await generateText({
      model: openai("local-model"),
      system: "Be brief.",
      messages: [...first.response.messages, { role: "user", content: "And tomorrow?" }],
    });
    assert.equal(second.text, "Tomorrow: rain.");
    assert.match(sent.at(-1).url, /\/v1\/responses$/);
    const refs = sent.at(-1).body.input.filter((i: any) => i.type === "item_reference");
    assert.equal(refs.length, 1, JSON.stringify(sent.at(-1).body.input));
    // the final answer of the first turn came back as an item_reference and was resolved from the store
    const history = fake.requests.slice(seen).at(-1)!.body.messages as Array<{
      role: string;
      content: string;
    }>;
    assert.ok(
      history.some((m) => m.role === "assistant" && m.content.startsWith("Summary:")),
      JSON.stringify(history),
    );
  });

  test("streamText: the same loop streamed, the text arriving in pieces", async () => {
    const result = streamText({
      model: openai("local-model"),
      prompt: "Weather in Paris and Lyon?",
      tools: { weather },
      stopWhen: stepCountIs(5),
    });
    const pieces: string[] = [];
    for await (const t of result.textStream) pieces.push(t);
    assert.ok(pieces.length > 1, "streamed in more than one piece");
    assert.equal(pieces.join(""), 'Summary: {"city":"Paris","sky":"sunny"} | {"city":"Lyon","sky":"cloudy"}');
    assert.equal((await result.steps).length, 3);
  });
});
