import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startOllamaFake } from "../../fakes/ollama.js";
import { startOpenAICompatFake } from "../../fakes/openai-compat.js";
import type { FakeServer, RecordedRequest } from "../../fakes/script.js";
import { emptyRequest, oneBackend, startGateway } from "../../helpers.js";

const WEATHER = {
  name: "get_weather",
  description: "Weather for a city",
  input_schema: {
    type: "object" as const,
    properties: { city: { type: "string" }, days: { type: "integer" } },
    required: ["city"],
  },
};

const chats = (fake: FakeServer): RecordedRequest[] =>
  fake.requests.filter((r) => r.method === "POST" && /chat/.test(r.path));

/** What a text-only server must never see: tools, tool roles, tool calls, content that is not a string. */
function assertTextOnly(body: any): void {
  assert.equal(body.tools, undefined, "no tools");
  assert.equal(body.tool_choice, undefined, "no tool_choice");
  for (const m of body.messages) {
    assert.ok(["system", "user", "assistant"].includes(m.role), `role ${m.role}`);
    assert.equal(typeof m.content, "string", `string content in ${JSON.stringify(m)}`);
    assert.equal(m.tool_calls, undefined, "no tool_calls");
  }
}

describe("emulate: a text-only server (TinyGrad, strict) serves a full tool round trip", () => {
  test("Anthropic SDK: the call arrives as tool_use, the result goes back as text, the answer comes", async () => {
    const fake = await startOpenAICompatFake({ flavor: "tinygrad", models: ["qwen2.5:14b"] });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "qwen2.5:14b", "    flavor: tinygrad"),
    );
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      fake.setReply({
        text: 'I will look it up.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": "2"}}\n</tool_call>',
        chunkSize: 7,
      });
      const first = await client.messages
        .stream({
          model: "test-model",
          max_tokens: 300,
          system: "You are helpful.",
          tools: [WEATHER],
          messages: [{ role: "user", content: "Weather in Paris for two days?" }],
        })
        .finalMessage();
      const sent1 = chats(fake).at(-1)!.body;
      assertTextOnly(sent1);
      assert.match(sent1.messages[0].content, /^You are helpful\.\n\n# Tools/);
      assert.ok(
        sent1.messages[0].content.includes('"name":"get_weather"'),
        "the tool is described in the prompt",
      );

      assert.equal(first.stop_reason, "tool_use");
      assert.equal(first.content[0]?.type, "text");
      const use = first.content.find((b) => b.type === "tool_use");
      assert.ok(use && use.type === "tool_use", JSON.stringify(first.content));
      assert.equal(use.name, "get_weather");
      // "2" was a string where the schema says integer: repaired
      assert.deepEqual(use.input, { city: "Paris", days: 2 });

      fake.setReply({ text: "Sunny both days." });
      const second = await client.messages.create({
        model: "test-model",
        max_tokens: 300,
        tools: [WEATHER],
        messages: [
          { role: "user", content: "Weather in Paris for two days?" },
          { role: "assistant", content: first.content },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: use.id, content: "sunny, 24°C" },
              { type: "text", text: "Thanks!" },
            ],
          },
        ],
      });
      assert.deepEqual(second.content, [{ type: "text", text: "Sunny both days." }]);
      assert.equal(second.stop_reason, "end_turn");
      const sent2 = chats(fake).at(-1)!.body;
      assertTextOnly(sent2);
      const history = sent2.messages.map((m: any) => `${m.role}: ${m.content}`).join("\n");
      assert.match(
        history,
        /assistant: I will look it up\.\n<tool_call>\n\{"name":"get_weather","arguments":\{"city":"Paris","days":2\}\}\n<\/tool_call>/,
      );
      assert.match(history, /user: <tool_response>\nsunny, 24°C\n<\/tool_response>/);
      assert.ok(
        history.indexOf("<tool_response>") < history.indexOf("Thanks!"),
        "the result precedes the text after it",
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("OpenAI SDK, streaming and not: tool_calls arrive; a tool message goes back as text", async () => {
    const fake = await startOpenAICompatFake({ flavor: "tinygrad", models: ["m"] });
    const gw = await startGateway(oneBackend("openai-compat", fake.url, "m", "    flavor: tinygrad"));
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      const tools = [
        {
          type: "function" as const,
          function: {
            name: WEATHER.name,
            description: WEATHER.description,
            parameters: WEATHER.input_schema,
          },
        },
      ];
      fake.setReply({
        text: '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>',
        chunkSize: 3,
      });
      const made = await client.chat.completions.create({
        model: "test-model",
        tools,
        messages: [{ role: "user", content: "Rome?" }],
      });
      const call = made.choices[0]!.message.tool_calls?.[0];
      assert.ok(call && call.type === "function", JSON.stringify(made.choices[0]));
      assert.equal(call.function.name, "get_weather");
      assert.deepEqual(JSON.parse(call.function.arguments), { city: "Rome" });
      assert.equal(made.choices[0]!.finish_reason, "tool_calls");

      const stream = client.chat.completions.stream({
        model: "test-model",
        tools,
        messages: [{ role: "user", content: "Rome?" }],
      });
      const streamed = await stream.finalChatCompletion();
      assert.equal(streamed.choices[0]!.finish_reason, "tool_calls");
      assert.deepEqual(
        streamed.choices[0]!.message.tool_calls?.map(
          (c) => c.type === "function" && [c.function.name, JSON.parse(c.function.arguments)],
        ),
        [["get_weather", { city: "Rome" }]],
      );

      fake.setReply({ text: "Rome is warm." });
      const next = await client.chat.completions.create({
        model: "test-model",
        tools,
        messages: [
          { role: "user", content: "Rome?" },
          { role: "assistant", content: null, tool_calls: [call] },
          { role: "tool", tool_call_id: call.id, content: "warm, 28°C" },
        ],
      });
      assert.equal(next.choices[0]!.message.content, "Rome is warm.");
      const sent = chats(fake).at(-1)!.body;
      assertTextOnly(sent);
      assert.ok(
        sent.messages.some(
          (m: any) => m.role === "user" && m.content.includes("<tool_response>\nwarm, 28°C"),
        ),
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("learning from refusals", () => {
  test("Ollama's 'does not support tools' switches the model to emulation, never reaches the client, and is remembered", async () => {
    const fake = await startOllamaFake({ models: [{ name: "gemma3", capabilities: ["completion"] }] });
    // discovery off: the gateway does not know beforehand that the model has no tools
    const gw = await startGateway(oneBackend("ollama", fake.url, "gemma3"), { discover: false });
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      fake.setReply({ text: "No tools needed: it is 4." });
      const msg = await client.messages.create({
        model: "test-model",
        max_tokens: 100,
        tools: [WEATHER],
        messages: [{ role: "user", content: "2+2?" }],
      });
      assert.deepEqual(msg.content, [{ type: "text", text: "No tools needed: it is 4." }]);
      const sent = chats(fake);
      assert.equal(sent.length, 2, "refused once, then retried");
      assert.ok(Array.isArray(sent[0]!.body.tools), "first try offered tools natively");
      assert.equal(sent[1]!.body.tools, undefined, "the retry has no native tools");
      assert.match(sent[1]!.body.messages[0].content, /<tools>/);

      // remembered: the next request goes emulated at once
      await client.messages.create({
        model: "test-model",
        max_tokens: 100,
        tools: [WEATHER],
        messages: [{ role: "user", content: "3+3?" }],
      });
      assert.equal(chats(fake).length, 3);
      assert.equal(chats(fake)[2]!.body.tools, undefined);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      assert.match(metrics, /clawbridge_tool_calls_total\{what="learned_emulate"\} 1/);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("discovery that reports no tool capability emulates from the first request", async () => {
    const fake = await startOllamaFake({ models: [{ name: "gemma3", capabilities: ["completion"] }] });
    const gw = await startGateway(oneBackend("ollama", fake.url, "gemma3"));
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      fake.setReply({ text: "ok" });
      await client.chat.completions.create({
        model: "test-model",
        tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
        messages: [{ role: "user", content: "hi" }],
      });
      assert.equal(chats(fake).length, 1);
      assert.equal(chats(fake)[0]!.body.tools, undefined);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("constrained decoding for forced calls", () => {
  test("Ollama: a forced tool is sent as `format` with the call's JSON schema, and the JSON answer is a call", async () => {
    const fake = await startOllamaFake({ models: [{ name: "gemma3", capabilities: ["completion"] }] });
    const gw = await startGateway(oneBackend("ollama", fake.url, "gemma3"));
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      fake.setReply({ text: '{"name": "get_weather", "arguments": {"city": "Oslo"}}' });
      const msg = await client.messages.create({
        model: "test-model",
        max_tokens: 100,
        tools: [WEATHER],
        tool_choice: { type: "tool", name: "get_weather" },
        messages: [{ role: "user", content: "Oslo" }],
      });
      const format = chats(fake).at(-1)!.body.format;
      assert.deepEqual(format.properties.name, { type: "string", enum: ["get_weather"] });
      assert.deepEqual(format.properties.arguments, WEATHER.input_schema);
      assert.match(
        chats(fake).at(-1)!.body.messages.at(-1).content,
        /You must call the function get_weather/,
      );
      assert.equal(msg.stop_reason, "tool_use");
      assert.deepEqual(
        msg.content.map((b) => b.type === "tool_use" && [b.name, b.input]),
        [["get_weather", { city: "Oslo" }]],
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("llama.cpp with tools refused: tool_choice any becomes response_format json_schema over every tool", async () => {
    const fake = await startOpenAICompatFake({ flavor: "llamacpp", models: ["m"] });
    const gw = await startGateway(
      `
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: llamacpp }
models:
  test-model: { backend: b, model: m, supports_tools: false, tool_format: json }
`,
    );
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      fake.setReply({ text: '{"name": "b", "arguments": {}}' });
      const made = await client.chat.completions.create({
        model: "test-model",
        tool_choice: "required",
        tools: [
          {
            type: "function",
            function: { name: "a", parameters: { type: "object", properties: { x: { type: "number" } } } },
          },
          { type: "function", function: { name: "b", parameters: { type: "object" } } },
        ],
        messages: [{ role: "user", content: "go" }],
      });
      const body = chats(fake).at(-1)!.body;
      assert.equal(body.tools, undefined);
      assert.equal(body.response_format.type, "json_schema");
      assert.deepEqual(
        body.response_format.json_schema.schema.anyOf.map((v: any) => v.properties.name.enum[0]),
        ["a", "b"],
      );
      assert.match(body.messages[0].content, /```json/);
      assert.equal(
        made.choices[0]!.message.tool_calls?.[0]?.type === "function" &&
          made.choices[0]!.message.tool_calls[0].function.name,
        "b",
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("strip mode", () => {
  test("tools and tool history are dropped, the chat goes on, and the log is told", async () => {
    const fake = await startOpenAICompatFake({ flavor: "generic", models: ["m"] });
    const gw = await startGateway(
      `
backends:
  b: { kind: openai-compat, url: "${fake.url}" }
models:
  test-model: { backend: b, model: m, tool_mode: strip }
`,
    );
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      fake.setReply({ text: "Hello." });
      const msg = await client.messages.create({
        model: "test-model",
        max_tokens: 100,
        tools: [WEATHER],
        messages: [
          { role: "user", content: "Weather?" },
          {
            role: "assistant",
            content: [{ type: "tool_use", id: "t1", name: "get_weather", input: { city: "X" } }],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "t1", content: "rain" },
              { type: "text", text: "hi" },
            ],
          },
        ],
      });
      assert.deepEqual(msg.content, [{ type: "text", text: "Hello." }]);
      const body = chats(fake).at(-1)!.body;
      assert.equal(body.tools, undefined);
      assert.deepEqual(
        body.messages.map((m: any) => [m.role, m.content]),
        [
          ["user", "Weather?"],
          ["user", "hi"],
        ],
      );
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      assert.match(metrics, /clawbridge_reshaped_total\{what="tools"\} 1/);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("LiteLLM model_info", () => {
  test("supports_function_calling: false means emulated tools", async () => {
    const fake = await startOpenAICompatFake({ flavor: "vllm", models: ["m"] });
    const gw = await startGateway(
      `
model_list:
  - model_name: test-model
    litellm_params: { model: openai/m, api_base: "${fake.url}/v1" }
    model_info: { supports_function_calling: false }
`,
    );
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      fake.setReply({ text: "fine" });
      await client.chat.completions.create({
        model: "test-model",
        tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }],
        messages: [{ role: "user", content: "hi" }],
      });
      const body = chats(fake).at(-1)!.body;
      assert.equal(body.tools, undefined);
      assert.match(body.messages[0].content, /<tools>\n\{"type":"function","function":\{"name":"lookup"/);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("every emulation format is read back by rescue", () => {
  test("calls rendered in hermes, llama3, mistral and json come back as the same calls", async () => {
    const { emulateTools } = await import("../../../src/stages/tools/emulate.js");
    const { ToolCallScanner } = await import("../../../src/stages/tools/scanner.js");
    const tools = [
      { name: "get_weather", inputSchema: WEATHER.input_schema },
      { name: "read", inputSchema: { type: "object", properties: { path: { type: "string" } } } },
    ];
    const calls = [
      { type: "toolCall" as const, id: "a", name: "get_weather", input: { city: "Paris", days: 3 } },
      { type: "toolCall" as const, id: "b", name: "read", input: { path: "/etc/hosts" } },
    ];
    for (const format of ["hermes", "llama3", "mistral", "json"] as const) {
      const out = emulateTools(
        {
          ...emptyRequest("m"),
          messages: [
            { role: "user", parts: [{ type: "text", text: "go" }] },
            { role: "assistant", parts: calls },
          ],
          tools,
        },
        format,
      );
      assert.ok(out.system.includes("get_weather"), `${format}: tools in the prompt`);
      const text = out.messages[1]!.parts.map((p) => (p.type === "text" ? p.text : "")).join("");
      const scanner = new ToolCallScanner(tools);
      const found = [...scanner.push(text), ...scanner.end()].filter((o) => o.type === "call");
      assert.deepEqual(
        found.map((c) => c.type === "call" && [c.name, c.input]),
        calls.map((c) => [c.name, c.input]),
        `${format}: ${text}`,
      );
    }
  });
});
