import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { OllamaLineDecoder } from "../../src/backends/ollama/decode.js";
import { ChatChunkDecoder } from "../../src/backends/openai-compat/decode.js";
import { collect } from "../../src/ir/collect.js";
import { GatewayError } from "../../src/ir/errors.js";
import { AnthropicStreamEncoder } from "../../src/surfaces/anthropic/encode.js";
import { OpenAIStreamEncoder } from "../../src/surfaces/openai/encode.js";
import type { Event } from "../../src/ir/types.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { oneBackend, startGateway } from "../helpers.js";

/** The events as one batch, as a backend whose whole answer came in one network read. */
async function* from(events: Event[]): AsyncGenerator<Event[]> {
  yield events;
}

function decodeChunks(chunks: unknown[]): Event[] {
  const d = new ChatChunkDecoder("t");
  const out: Event[] = [];
  for (const c of chunks) d.push(JSON.stringify(c), out);
  d.end(out);
  return out;
}

const chunk = (delta: unknown, finish: string | null = null) => ({
  id: "x",
  object: "chat.completion.chunk",
  model: "m",
  choices: [{ index: 0, delta, finish_reason: finish }],
});

describe("openai-compat stream decoding", () => {
  test("tool-call deltas are assembled by index, even with arguments before the name", async () => {
    const events = decodeChunks([
      chunk({ role: "assistant", content: null }),
      chunk({
        tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "read", arguments: "" } }],
      }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"pa' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: 'th":"a.txt"}' } }] }),
      chunk({ tool_calls: [{ index: 1, id: "call_b", function: { arguments: '{"path":' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { name: "read", arguments: '"b.txt"}' } }] }),
      chunk({}, "stop"), // several servers say "stop" after tool calls
    ]);
    const res = await collect(from(events));
    assert.equal(res.stopReason, "tool_use");
    assert.deepEqual(
      res.content.map((p) => (p.type === "toolCall" ? [p.id, p.name, p.input] : p.type)),
      [
        ["call_a", "read", { path: "a.txt" }],
        ["call_b", "read", { path: "b.txt" }],
      ],
    );
  });

  test("a whole non-streamed completion (a server that ignored stream: true) decodes too", async () => {
    const events = decodeChunks([
      {
        id: "c",
        object: "chat.completion",
        model: "m",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: "hi", reasoning_content: "think" },
            finish_reason: "length",
          },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 1 },
      },
    ]);
    const res = await collect(from(events));
    assert.deepEqual(res.content, [
      { type: "thinking", text: "think" },
      { type: "text", text: "hi" },
    ]);
    assert.equal(res.stopReason, "max_tokens");
    assert.deepEqual(res.usage, { inputTokens: 3, outputTokens: 1 });
  });

  test("llama.cpp timings stand in for usage", async () => {
    const res = await collect(
      from(
        decodeChunks([
          chunk({ content: "a" }),
          { ...chunk({}, "stop"), timings: { prompt_n: 12, predicted_n: 2 } },
        ]),
      ),
    );
    assert.deepEqual(res.usage, { inputTokens: 12, outputTokens: 2 });
  });

  test("malformed chunks, error chunks and streams without a finish are errors", () => {
    const d = new ChatChunkDecoder("llama");
    assert.throws(
      () => d.push("{not json", []),
      (e: unknown) => e instanceof GatewayError && /malformed/.test(e.message),
    );
    assert.throws(
      () => new ChatChunkDecoder("llama").push(JSON.stringify({ error: { message: "context full" } }), []),
      (e: unknown) => e instanceof GatewayError && /context full/.test(e.message),
    );
    const e = new ChatChunkDecoder("llama");
    e.push(JSON.stringify(chunk({ content: "half" })), []);
    assert.throws(
      () => e.end([]),
      (x: unknown) => x instanceof GatewayError && /without finishing/.test(x.message),
    );
  });
});

describe("ollama stream decoding", () => {
  test("thinking, text, tool calls with object arguments, counts and done_reason", async () => {
    const d = new OllamaLineDecoder("ollama");
    const out: Event[] = [];
    const lines = [
      { model: "q", message: { role: "assistant", content: "", thinking: "hmm" }, done: false },
      { model: "q", message: { role: "assistant", content: "ok" }, done: false },
      {
        model: "q",
        message: {
          role: "assistant",
          content: "",
          tool_calls: [{ function: { name: "ls", arguments: { dir: "/" } } }],
        },
        done: false,
      },
      {
        model: "q",
        message: { role: "assistant", content: "" },
        done: true,
        done_reason: "stop",
        prompt_eval_count: 9,
        eval_count: 4,
      },
    ];
    for (const l of lines) d.push(JSON.stringify(l), out);
    d.end(out);
    const res = await collect(from(out));
    assert.equal(res.stopReason, "tool_use");
    assert.deepEqual(res.usage, { inputTokens: 9, outputTokens: 4 });
    assert.deepEqual(
      res.content.map((p) => (p.type === "toolCall" ? [p.name, p.input] : p)),
      [{ type: "thinking", text: "hmm" }, { type: "text", text: "ok" }, ["ls", { dir: "/" }]],
    );
  });

  test("an error line is an error", () => {
    assert.throws(
      () => new OllamaLineDecoder("ollama").push('{"error":"model runner has unexpectedly stopped"}', []),
      (e: unknown) => e instanceof GatewayError && /unexpectedly stopped/.test(e.message),
    );
  });
});

describe("server flavors", () => {
  test("a text-only server (TinyGrad's llm.py) receives only what it takes", async () => {
    // The strict fake rejects tools, tool roles, tool_calls, null and non-string content with a 500.
    const fake = await startOpenAICompatFake({ flavor: "tinygrad", models: ["qwen2.5:14b"] });
    const gw = await startGateway(
      oneBackend("openai-compat", `${fake.url}/v1`, "qwen2.5:14b", "    flavor: tinygrad"),
    );
    try {
      fake.setReply({ text: "The file says PAPAYA-42." });
      const client = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const msg = await client.messages.create({
        model: "test-model",
        max_tokens: 100,
        system: [{ type: "text", text: "You are helpful.", cache_control: { type: "ephemeral" } }],
        tools: [{ name: "read", input_schema: { type: "object", properties: { path: { type: "string" } } } }],
        messages: [
          { role: "user", content: [{ type: "text", text: "Read hello.txt" }] },
          {
            role: "assistant",
            content: [{ type: "tool_use", id: "toolu_1", name: "read", input: { path: "hello.txt" } }],
          },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "PAPAYA-42" }] },
        ],
      });
      assert.deepEqual(msg.content, [{ type: "text", text: "The file says PAPAYA-42." }]);
      const sent = fake.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.body;
      assert.equal(sent.tools, undefined);
      assert.equal(sent.stream_options, undefined);
      for (const m of sent.messages) {
        assert.equal(typeof m.content, "string", JSON.stringify(m));
        assert.ok(["system", "user", "assistant"].includes(m.role));
        assert.equal(m.tool_calls, undefined);
      }
      assert.match(JSON.stringify(sent.messages), /PAPAYA-42/);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  for (const flavor of ["vllm", "lmstudio", "generic"] as const) {
    test(`${flavor}: streamed tool calls reach the OpenAI SDK`, async () => {
      const fake = await startOpenAICompatFake({ flavor });
      const gw = await startGateway(
        oneBackend("openai-compat", fake.url, "fake-model", `    flavor: ${flavor}`),
      );
      try {
        fake.setReply({
          text: "Checking.",
          toolCalls: [{ name: "ls", arguments: { dir: "/tmp", all: true } }],
          chunkSize: 3,
        });
        const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
        const final = await client.chat.completions
          .stream({
            model: "test-model",
            messages: [{ role: "user", content: "list /tmp" }],
            tools: [{ type: "function", function: { name: "ls", parameters: { type: "object" } } }],
          })
          .finalChatCompletion();
        const msg = final.choices[0]!.message;
        assert.equal(msg.content, "Checking.");
        const call = msg.tool_calls?.[0];
        assert.ok(call?.type === "function");
        assert.equal(call.function.name, "ls");
        assert.deepEqual(JSON.parse(call.function.arguments), { dir: "/tmp", all: true });
        assert.equal(final.choices[0]?.finish_reason, "tool_calls");
      } finally {
        await gw.close();
        await fake.close();
      }
    });
  }
});

describe("stream encoders", () => {
  // text deltas are written from a template (the most frequent event): it must be the same bytes
  // as the JSON of the object each dialect defines
  const texts = [
    "plain",
    'quote " and \\ backslash',
    "line\nbreak\ttab",
    "unicode é ✓ 😀",
    "\u0000\u001f",
    "",
  ];
  const meta = { id: "id_1", model: 'm"odel', inputTokensEstimate: 5 };

  test("Anthropic: a text delta is content_block_delta with a text_delta, byte for byte", () => {
    const enc = new AnthropicStreamEncoder(meta);
    enc.open();
    const start = enc.event({ type: "textDelta", text: "" });
    assert.match(start, /^event: content_block_start\n/);
    for (const text of texts) {
      const want = text
        ? `event: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } })}\n\n`
        : "";
      assert.equal(enc.event({ type: "textDelta", text }), want);
    }
  });

  test("OpenAI: a text delta is a chat.completion.chunk with content, byte for byte", () => {
    const enc = new OpenAIStreamEncoder(meta, false);
    const opening = enc.open();
    const head = JSON.parse(opening.slice("data: ".length)) as { created: number };
    for (const text of texts) {
      const want = text
        ? `data: ${JSON.stringify({
            id: "id_1",
            object: "chat.completion.chunk",
            created: head.created,
            model: 'm"odel',
            choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }],
          })}\n\n`
        : "";
      assert.equal(enc.event({ type: "textDelta", text }), want);
    }
  });
});
