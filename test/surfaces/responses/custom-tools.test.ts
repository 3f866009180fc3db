/**
 * Custom (free-form) tools on /v1/responses, as Codex sends them for catalog models (`apply_patch` with a Lark
 * grammar): a local model gets a function with one string argument, `input`, the grammar in its description; its
 * call goes back as a `custom_tool_call` whose `input` is that text, streamed and not; the client's
 * `custom_tool_call` / `custom_tool_call_output` items come back to the model as a call and its result.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { startOllamaFake } from "../../fakes/ollama.js";
import type { FakeServer } from "../../fakes/script.js";
import { oneBackend, type RunningGateway, startGateway } from "../../helpers.js";

const PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n";
const APPLY_PATCH = {
  type: "custom" as const,
  name: "apply_patch",
  description: "Use the `apply_patch` tool to edit files.",
  format: {
    type: "grammar" as const,
    syntax: "lark" as const,
    definition: 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF',
  },
};

describe("custom tools on the Responses surface", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  let client: OpenAI;
  before(async () => {
    fake = await startOllamaFake({
      models: [{ name: "qwen2.5:7b" }],
      reply: { toolCalls: [{ name: "apply_patch", arguments: { input: PATCH } }] },
    });
    gw = await startGateway(oneBackend("ollama", fake.url, "qwen2.5:7b", "", "local-model"));
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  test("the model sees a function with one text argument and the grammar; its call is a custom_tool_call with the text as input", async () => {
    const params = {
      model: "local-model",
      input: "Add hello.txt",
      tools: [APPLY_PATCH],
      store: false,
    };
    const whole = await client.responses.create(params);
    const call = whole.output.find((o) => o.type === "custom_tool_call");
    assert.ok(call, JSON.stringify(whole.output));
    assert.equal(call.name, "apply_patch");
    assert.equal(call.input, PATCH);

    const sent = fake.requests.at(-1)!.body.tools as Array<{ function: any }>;
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.function.name, "apply_patch");
    assert.deepEqual(sent[0]!.function.parameters.required, ["input"]);
    assert.match(sent[0]!.function.description, /Lark grammar|lark grammar/);
    assert.match(sent[0]!.function.description, /start: begin_patch hunk\+ end_patch/);

    // streamed: the SDK's helper assembles the same item, and only event types it knows came
    const stream = client.responses.stream(params);
    const types = new Set<string>();
    for await (const e of stream) types.add(e.type);
    const final = await stream.finalResponse();
    const streamed = final.output.find((o) => o.type === "custom_tool_call");
    assert.equal(streamed?.input, PATCH);
    assert.ok(types.has("response.custom_tool_call_input.done"), [...types].join(", "));
    assert.ok(!types.has("response.function_call_arguments.delta"));
  });

  test("custom_tool_call and custom_tool_call_output items in the input reach the model as a call and its result", async () => {
    fake.setReply({ text: "Patched." });
    const r = await client.responses.create({
      model: "local-model",
      tools: [APPLY_PATCH],
      tool_choice: { type: "custom", name: "apply_patch" },
      store: false,
      input: [
        { role: "user", content: "Add hello.txt" },
        { type: "custom_tool_call", call_id: "call_c1", name: "apply_patch", input: PATCH },
        {
          type: "custom_tool_call_output",
          call_id: "call_c1",
          output: "Success. Updated the following files:\nA hello.txt\n",
        },
      ],
    });
    assert.equal(r.output_text, "Patched.");
    const messages = fake.requests.at(-1)!.body.messages as Array<any>;
    const assistant = messages.find((m) => m.role === "assistant");
    assert.deepEqual(assistant.tool_calls[0].function, { name: "apply_patch", arguments: { input: PATCH } });
    const result = messages.find((m) => m.role === "tool");
    assert.match(result.content, /Success\. Updated the following files/);
  });
});
