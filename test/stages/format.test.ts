/**
 * Structured output reaches the backend (issue 17): OpenAI response_format (json_schema, json_object) and
 * Anthropic output_config.format become Ollama's `format` and llama.cpp's `response_format`; a server that
 * cannot constrain gets the request unconstrained and the log says so.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import pino from "pino";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { oneBackend, startGateway } from "../helpers.js";

const SCHEMA = {
  type: "object",
  properties: { city: { type: "string" }, temperature: { type: "number" } },
  required: ["city", "temperature"],
  additionalProperties: false,
};
const ANSWER = '{"city":"Paris","temperature":21}';

const KINDS = [
  {
    kind: "ollama",
    start: () => startOllamaFake({ models: [{ name: "qwen2.5:7b" }] }),
    model: "qwen2.5:7b",
    extra: "",
    path: "/api/chat",
    constraint: (body: any) => body.format,
  },
  {
    kind: "openai-compat",
    start: () => startOpenAICompatFake({ flavor: "llamacpp" }),
    model: "fake-model",
    extra: "    flavor: llamacpp",
    path: "/v1/chat/completions",
    constraint: (body: any) => body.response_format?.json_schema?.schema,
  },
];

for (const k of KINDS) {
  describe(`structured output → ${k.kind}`, () => {
    const last = (fake: FakeServer) => fake.requests.filter((r) => r.path === k.path).at(-1)!.body;

    test("OpenAI json_schema and json_object, Anthropic output_config.format reach the server as a constraint", async () => {
      const fake = await k.start();
      const gw = await startGateway(oneBackend(k.kind, fake.url, k.model, k.extra));
      try {
        fake.setReply({ text: ANSWER });
        const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
        const r = await openai.chat.completions.create({
          model: "test-model",
          messages: [{ role: "user", content: "Weather in Paris as JSON" }],
          response_format: {
            type: "json_schema",
            json_schema: { name: "weather", schema: SCHEMA, strict: true },
          },
        });
        assert.deepEqual(JSON.parse(r.choices[0]!.message.content!), { city: "Paris", temperature: 21 });
        assert.deepEqual(k.constraint(last(fake)), SCHEMA);

        await openai.chat.completions.create({
          model: "test-model",
          messages: [{ role: "user", content: "Weather in Paris as JSON" }],
          response_format: { type: "json_object" },
        });
        assert.deepEqual(k.constraint(last(fake)), { type: "object" });

        // streamed, as the AI SDK does
        const stream = await openai.chat.completions.create({
          model: "test-model",
          stream: true,
          messages: [{ role: "user", content: "Weather in Paris as JSON" }],
          response_format: { type: "json_schema", json_schema: { name: "weather", schema: SCHEMA } },
        });
        let text = "";
        for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
        assert.equal(text, ANSWER);
        assert.deepEqual(k.constraint(last(fake)), SCHEMA);

        const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
        const msg = await anthropic.messages.create({
          model: "test-model",
          max_tokens: 200,
          messages: [{ role: "user", content: "Weather in Paris as JSON" }],
          output_config: { format: { type: "json_schema", schema: SCHEMA } },
        } as never);
        assert.deepEqual(msg.content, [{ type: "text", text: ANSWER }]);
        assert.deepEqual(k.constraint(last(fake)), SCHEMA);

        // a plain request stays unconstrained
        await openai.chat.completions.create({
          model: "test-model",
          messages: [{ role: "user", content: "hi" }],
        });
        assert.equal(k.constraint(last(fake)), undefined);
      } finally {
        await gw.close();
        await fake.close();
      }
    });
  });
}

describe("structured output where the server cannot constrain", () => {
  test("TinyGrad: the request is served unconstrained, and the log says the shape is not enforced", async () => {
    const fake = await startOpenAICompatFake({ flavor: "tinygrad" });
    const lines: Array<Record<string, any>> = [];
    const log = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s)) });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "fake-model", "    flavor: tinygrad"),
      {
        log,
      },
    );
    try {
      fake.setReply({ text: ANSWER });
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      const r = await openai.chat.completions.create({
        model: "test-model",
        messages: [{ role: "user", content: "Weather?" }],
        response_format: { type: "json_schema", json_schema: { name: "weather", schema: SCHEMA } },
      });
      assert.equal(r.choices[0]!.message.content, ANSWER);
      const sent = fake.requests.at(-1)!.body;
      assert.equal(sent.response_format, undefined);
      assert.ok(lines.some((l) => /structured output asked, but the server cannot constrain/.test(l.msg)));
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("a json_schema response_format without its json_schema is a 400 in OpenAI's words", async () => {
    const fake = await startOllamaFake();
    const gw = await startGateway(oneBackend("ollama", fake.url, "llama3.2"));
    try {
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      await assert.rejects(
        openai.chat.completions.create({
          model: "test-model",
          messages: [{ role: "user", content: "hi" }],
          response_format: { type: "json_schema" } as never,
        }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "response_format",
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
