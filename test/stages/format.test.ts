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
import type { RequestEntry } from "../../src/journal/entry.js";
import { judge } from "../../src/stages/format-check.js";
import { oneBackend, startGateway, until } from "../helpers.js";

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
  /**
   * Runs `body` against a TinyGrad gateway whose log lines are kept; `notes()` waits for the next request
   * to finish and gives its structured-output notes.
   */
  async function onTinygrad(
    body: (t: {
      fake: FakeServer;
      lines: Array<Record<string, any>>;
      openai: OpenAI;
      notes: () => Promise<string[]>;
    }) => Promise<void>,
  ) {
    const fake = await startOpenAICompatFake({ flavor: "tinygrad" });
    const lines: Array<Record<string, any>> = [];
    const log = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s)) });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "fake-model", "    flavor: tinygrad"),
      {
        log,
      },
    );
    const done: RequestEntry[] = [];
    gw.feed.on("done", (e: RequestEntry) => done.push(e));
    const notes = async () => {
      await until(() => done.length > 0, "the request's entry");
      return (done.shift()!.notes ?? []).filter((n) => n.subject === "response_format").map((n) => n.detail);
    };
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
    try {
      await body({ fake, lines, openai, notes });
    } finally {
      await gw.close();
      await fake.close();
    }
  }
  const weather = {
    model: "test-model",
    messages: [{ role: "user" as const, content: "Weather in Paris?" }],
    response_format: { type: "json_schema" as const, json_schema: { name: "weather", schema: SCHEMA } },
  };

  test("TinyGrad: the request is served unconstrained, the model is told the shape, and the log says it is not enforced", async () => {
    await onTinygrad(async (t) => {
      t.fake.setReply({ text: ANSWER });
      const r = await t.openai.chat.completions.create(weather);
      assert.equal(r.choices[0]!.message.content, ANSWER);
      const sent = t.fake.requests.at(-1)!.body;
      assert.equal(sent.response_format, undefined);
      // the model is told the shape, at the end of the system prompt
      const system = sent.messages.find((m: any) => m.role === "system");
      assert.match(
        system.content,
        /Answer with a single JSON value, and nothing else, matching this JSON schema:/,
      );
      assert.ok(system.content.endsWith(JSON.stringify(SCHEMA)));
      assert.ok(t.lines.some((l) => /structured output asked, but the server cannot constrain/.test(l.msg)));
      // a valid answer: no warning about its shape, and the note says only that it was not enforced
      assert.ok(!t.lines.some((l) => /not the asked shape/.test(l.msg)));
      assert.deepEqual(await t.notes(), [
        "not enforced (this model's server cannot constrain its answer to JSON): the model is told the shape, and the answer is checked",
      ]);
    });
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

  test("an answer wrapped in a ```json fence or a sentence: a client that does not stream gets the JSON alone, and the note says so", async () => {
    await onTinygrad(async (t) => {
      for (const wrapped of [
        `\`\`\`json\n${ANSWER}\n\`\`\``,
        `Sure! Here is the weather: ${ANSWER} Let me know if you need more.`,
      ]) {
        t.fake.setReply({ text: wrapped });
        const r = await t.openai.chat.completions.create(weather);
        assert.equal(r.choices[0]!.message.content, ANSWER);
        const notes = await t.notes();
        assert.ok(
          notes.some((d) => /held the asked JSON inside other text/.test(d)),
          notes.join(" | "),
        );
      }
    });
  });

  test("an answer that is not the asked shape reaches the client as written; the log and the request's notes say what is wrong", async () => {
    await onTinygrad(async (t) => {
      const wrong = '{"city":"Paris","temperature":"warm"}';
      t.fake.setReply({ text: wrong });
      const r = await t.openai.chat.completions.create(weather);
      assert.equal(r.choices[0]!.message.content, wrong);
      const notes = await t.notes();
      assert.ok(
        notes.some((d) => /not the asked shape: \/temperature: .*number/.test(d)),
        notes.join(" | "),
      );
      const warning = t.lines.find((l) => /structured output: the answer is not the asked shape/.test(l.msg));
      assert.ok(warning, "a warning in the log");
      assert.equal(warning.level, 40);
      assert.deepEqual(warning.model, "test-model");

      // prose with no JSON in it: said to be not JSON at all
      t.fake.setReply({ text: "It is sunny and 21 degrees in Paris." });
      const prose = await t.openai.chat.completions.create(weather);
      assert.equal(prose.choices[0]!.message.content, "It is sunny and 21 degrees in Paris.");
      assert.ok((await t.notes()).some((d) => /not the asked shape: not JSON/.test(d)));
    });
  });

  test("a streamed answer goes out as the model wrote it, and is checked at its end", async () => {
    await onTinygrad(async (t) => {
      const fenced = `\`\`\`json\n${ANSWER}\n\`\`\``;
      t.fake.setReply({ text: fenced });
      const stream = await t.openai.chat.completions.create({ ...weather, stream: true });
      let text = "";
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
      assert.equal(text, fenced);
      assert.ok((await t.notes()).some((d) => /not the asked shape: not JSON/.test(d)));
    });
  });

  test("an answer cut at its token limit is noted as cut, not judged", async () => {
    await onTinygrad(async (t) => {
      t.fake.setReply({ text: '{"city":"Par', finishReason: "length" });
      const r = await t.openai.chat.completions.create(weather);
      assert.equal(r.choices[0]!.finish_reason, "length");
      assert.equal(r.choices[0]!.message.content, '{"city":"Par');
      const notes = await t.notes();
      assert.ok(notes.some((d) => /cut at its token limit/.test(d)));
      assert.ok(!notes.some((d) => /not the asked shape/.test(d)));
    });
  });
});

describe("structured output on a turn that offers tools", () => {
  test("tools emulated for a model without them: the answer is not constrained (the call is text), the model is told the shape for its final answer", async () => {
    const fake = await startOllamaFake({ models: [{ name: "gemma3:4b", capabilities: ["completion"] }] });
    const gw = await startGateway(oneBackend("ollama", fake.url, "gemma3:4b"));
    try {
      fake.setReply({ text: '<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>' });
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      const r = await openai.chat.completions.create({
        model: "test-model",
        messages: [{ role: "user", content: "Weather in Paris as JSON" }],
        tools: [
          {
            type: "function",
            function: {
              name: "get_weather",
              parameters: { type: "object", properties: { city: { type: "string" } } },
            },
          },
        ],
        response_format: { type: "json_schema", json_schema: { name: "weather", schema: SCHEMA } },
      });
      const call = r.choices[0]!.message.tool_calls?.[0];
      assert.ok(call?.type === "function");
      assert.equal(call.function.name, "get_weather");
      const sent = fake.requests.filter((x) => x.path === "/api/chat").at(-1)!.body;
      assert.equal(sent.format, undefined, "no constraint: it would rule out the call");
      assert.equal(sent.tools, undefined, "the tools went as text");
      assert.match(
        sent.messages[0].content,
        /When you give your final answer \(not a tool call\), write it as a single JSON value/,
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("the format check's judgement", () => {
  test("valid, repaired from a fence or a sentence, wrong with where and what, or a schema it cannot read", () => {
    assert.deepEqual(judge(ANSWER, SCHEMA, true), { ok: true });
    assert.deepEqual(judge(`\`\`\`\n${ANSWER}\n\`\`\``, SCHEMA, true), { ok: true, repaired: ANSWER });
    // no repair asked (a stream): the same text is simply wrong
    const streamed = judge(`\`\`\`\n${ANSWER}\n\`\`\``, SCHEMA, false);
    assert.equal(streamed.ok, false);
    const missing = judge('{"city":"Paris"}', SCHEMA, true);
    assert.equal(missing.ok, false);
    assert.ok(!missing.ok && missing.problems.some((p) => /temperature/.test(p)), JSON.stringify(missing));
    const extra = judge('{"city":"Paris","temperature":21,"wind":3}', SCHEMA, true);
    assert.equal(extra.ok, false);
    // a fenced value of the wrong shape is not taken out as a repair
    assert.equal(judge('```json\n{"city":1}\n```', SCHEMA, true).ok, false);
    // json_object: any object
    assert.deepEqual(judge('{"a":1}', { type: "object" }, true), { ok: true });
    assert.equal(judge("[1,2]", { type: "object" }, true).ok, false);
    assert.equal(judge("{}", { $ref: "#/$defs/missing" }, true).ok !== true, true);
  });
});
