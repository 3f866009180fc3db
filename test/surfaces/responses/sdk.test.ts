import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import type { ResponseCreateParamsBase } from "openai/resources/responses/responses";

/** A request the same for `create` (not streamed) and `stream`. */
type Params = Omit<ResponseCreateParamsBase, "stream">;
import { BACKENDS } from "../../backends/cases.js";
import type { FakeServer } from "../../fakes/script.js";
import { oneBackend, parseSse, type RunningGateway, startGateway } from "../../helpers.js";

const WEATHER = {
  type: "function" as const,
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false,
};

/**
 * A response without what differs between two calls (ids, timestamps) and what the SDK's helpers
 * add on their side (`output_parsed`, a text part's `parsed`, a call's `parsed_arguments`).
 */
function stable(r: OpenAI.Responses.Response) {
  const {
    id: _i,
    created_at: _c,
    completed_at: _d,
    output_parsed: _p,
    ...rest
  } = r as OpenAI.Responses.Response & {
    completed_at?: number;
    output_parsed?: unknown;
  };
  return {
    ...rest,
    // the same prompt sent again is read from the server's prompt cache (llama.cpp reports it):
    // the whole input is the same, not the part cached
    usage: rest.usage && { ...rest.usage, input_tokens_details: { cached_tokens: -1 } },
    output: rest.output.map((o) =>
      o.type === "message"
        ? { ...o, id: "", content: o.content.map((c) => ({ ...c, parsed: undefined })) }
        : { ...o, id: "", parsed_arguments: undefined },
    ),
  };
}

/** The event types of a stream, and a check of its order as the SDK's accumulator needs it. */
async function events(stream: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>) {
  const all: OpenAI.Responses.ResponseStreamEvent[] = [];
  for await (const e of stream) all.push(e);
  assert.deepEqual(
    all.map((e) => e.sequence_number),
    all.map((_, i) => i),
    "sequence numbers count from 0",
  );
  assert.equal(all[0]?.type, "response.created");
  assert.equal(all[1]?.type, "response.in_progress");
  return all;
}

for (const backend of BACKENDS.filter((b) => b.kind !== "anthropic")) {
  describe(`OpenAI SDK responses → clawbridge → ${backend.kind}`, () => {
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
    const sent = () => backend.chats(fake).at(-1)!.body;

    test("text: create, the raw stream and the stream helper agree", async () => {
      fake.setReply({ text: "Hello there, friend.", usage: { prompt: 30, completion: 6 } });
      const params: Params = {
        model: "test-model",
        instructions: "Be brief.",
        input: "Say hello",
        max_output_tokens: 64,
      };
      const created = await client.responses.create(params);
      assert.equal(created.object, "response");
      assert.equal(created.status, "completed");
      assert.equal(created.model, "test-model");
      assert.match(created.id, /^resp_/);
      assert.equal(created.output_text, "Hello there, friend.");
      assert.equal(created.output.length, 1);
      assert.equal(created.output[0]?.type, "message");
      assert.deepEqual(created.usage, {
        input_tokens: 30,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 6,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 36,
      });
      const body = sent();
      if (backend.kind === "ollama") {
        assert.equal(body.options.num_predict, 64);
        assert.deepEqual(body.messages[0], { role: "system", content: "Be brief." });
      } else {
        assert.equal(body.max_tokens, 64);
        assert.equal(body.messages[0].content, "Be brief.");
      }

      const all = await events(await client.responses.create({ ...params, stream: true }));
      assert.deepEqual(
        // keep-alives come while a server reports reading the prompt (llama.cpp's progress): as many as it reports
        [...new Set(all.map((e) => e.type).filter((t) => t !== ("keepalive" as never)))],
        [
          "response.created",
          "response.in_progress",
          "response.output_item.added",
          "response.content_part.added",
          "response.output_text.delta",
          "response.output_text.done",
          "response.content_part.done",
          "response.output_item.done",
          "response.completed",
        ],
      );
      const text = all.map((e) => (e.type === "response.output_text.delta" ? e.delta : "")).join("");
      assert.equal(text, "Hello there, friend.");

      const final = await client.responses.stream(params).finalResponse();
      assert.deepEqual(stable(final), stable(created));
    });

    test("a function call round trip with function_call_output, streaming and not", async () => {
      fake.setReply({ toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] });
      const params: Params = {
        model: "test-model",
        tools: [WEATHER],
        input: [{ role: "user", content: "Weather in Paris?" }],
      };
      const created = await client.responses.create(params);
      const call = created.output[0];
      assert.equal(call?.type, "function_call");
      if (call?.type !== "function_call") return;
      assert.equal(call.name, "get_weather");
      assert.deepEqual(JSON.parse(call.arguments), { city: "Paris" });
      assert.equal(call.status, "completed");

      const stream = client.responses.stream(params);
      const types: string[] = [];
      stream.on("event", (e) => types.push(e.type));
      const final = await stream.finalResponse();
      assert.ok(types.includes("response.function_call_arguments.delta"));
      assert.ok(types.includes("response.function_call_arguments.done"));
      assert.ok(!types.includes("response.content_part.added"), "no content parts for a call");
      assert.deepEqual(
        stable(final).output.map((o) => ({ ...o, call_id: "" })),
        stable(created).output.map((o) => ({ ...o, call_id: "" })),
      );

      fake.setReply({ text: "Sunny in Paris." });
      const second = await client.responses.create({
        model: "test-model",
        tools: [WEATHER],
        input: [
          ...(params.input as OpenAI.Responses.ResponseInput),
          call,
          { type: "function_call_output", call_id: call.call_id, output: "sunny, 24°C" },
        ],
        store: false,
      });
      assert.equal(second.output_text, "Sunny in Paris.");
      const body = sent();
      const tool = body.messages.find((m: any) => m.role === "tool");
      assert.equal(tool.content, "sunny, 24°C");
      const asked = body.messages.find((m: any) => m.role === "assistant");
      assert.equal(asked.tool_calls[0].function.name, "get_weather");
      if (backend.kind === "openai-compat") assert.equal(tool.tool_call_id, call.call_id);
    });

    test("previous_response_id continues a stored response; item_reference names its items", async () => {
      fake.setReply({ text: "Paris is the capital." });
      const first = await client.responses.create({ model: "test-model", input: "Capital of France?" });
      fake.setReply({ text: "About 2.1 million." });
      const second = await client.responses.create({
        model: "test-model",
        previous_response_id: first.id,
        input: "And its population?",
      });
      assert.equal(second.previous_response_id, first.id);
      assert.equal(second.output_text, "About 2.1 million.");
      const history = (body: any) =>
        body.messages.map((m: any) => [m.role, typeof m.content === "string" ? m.content : ""]);
      assert.deepEqual(history(sent()), [
        ["user", "Capital of France?"],
        ["assistant", "Paris is the capital."],
        ["user", "And its population?"],
      ]);

      // the chain goes on, streamed
      fake.setReply({ text: "Yes." });
      const third = await client.responses
        .stream({ model: "test-model", previous_response_id: second.id, input: "Sure?" })
        .finalResponse();
      assert.equal(third.output_text, "Yes.");
      assert.equal(sent().messages.length, 5);

      // the AI SDK's way: an earlier answer by reference
      await client.responses.create({
        model: "test-model",
        input: [
          { role: "user", content: "Capital of France?" },
          { type: "item_reference", id: first.output[0]!.id! },
          { role: "user", content: "Again?" },
        ],
      });
      assert.deepEqual(history(sent()), [
        ["user", "Capital of France?"],
        ["assistant", "Paris is the capital."],
        ["user", "Again?"],
      ]);
    });

    test("store:false is not kept; an unknown id is a 400 in the dialect", async () => {
      fake.setReply({ text: "ok" });
      const gone = await client.responses.create({ model: "test-model", input: "hi", store: false });
      assert.equal((gone as unknown as { store: boolean }).store, false);
      for (const id of [gone.id, "resp_unknown"]) {
        const err = await client.responses
          .create({ model: "test-model", previous_response_id: id, input: "more" })
          .then(
            () => assert.fail("expected a 400"),
            (e: unknown) => e,
          );
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.code, "previous_response_not_found");
        assert.equal(err.param, "previous_response_id");
        assert.equal(err.message, `400 Previous response with id '${id}' not found.`);
      }
      const ref = await client.responses
        .create({ model: "test-model", input: [{ type: "item_reference", id: gone.output[0]!.id! }] })
        .catch((e: unknown) => e);
      assert.ok(ref instanceof OpenAI.BadRequestError);
      assert.equal(ref.code, "item_not_found");
    });

    test("structured output: text.format json_schema reaches the backend's constraint", async () => {
      const schema = {
        type: "object",
        properties: { city: { type: "string" }, temp: { type: "number" } },
        required: ["city", "temp"],
        additionalProperties: false,
      };
      fake.setReply({ text: '{"city":"Paris","temp":24}' });
      const params: Params = {
        model: "test-model",
        input: "Weather as JSON",
        text: { format: { type: "json_schema", name: "weather", schema, strict: true } },
      };
      const created = await client.responses.parse(params);
      assert.deepEqual(created.output_parsed, { city: "Paris", temp: 24 });
      assert.deepEqual(created.text?.format, { type: "json_schema", name: "weather", schema, strict: true });
      const body = sent();
      if (backend.kind === "ollama") assert.deepEqual(body.format, schema);
      else assert.deepEqual(body.response_format.json_schema.schema, schema);
      const final = await client.responses.stream(params).finalResponse();
      assert.deepEqual(stable(final), stable(created));
    });

    test("reasoning comes back as a reasoning item, streamed and not, and goes back as thinking", async () => {
      fake.setReply({ reasoning: "The user greets.", text: "Hi!" });
      const params: Params = {
        model: "test-model",
        input: "Hello",
        reasoning: { effort: "low", summary: "auto" },
        include: ["reasoning.encrypted_content"],
      };
      const created = await client.responses.create(params);
      assert.deepEqual(
        created.output.map((o) => o.type),
        ["reasoning", "message"],
      );
      const r = created.output[0];
      assert.ok(r?.type === "reasoning");
      assert.deepEqual(r.content, [{ type: "reasoning_text", text: "The user greets." }]);
      const final = await client.responses.stream(params).finalResponse();
      assert.deepEqual(stable(final), stable(created));

      fake.setReply({ text: "Fine." });
      await client.responses.create({
        model: "test-model",
        input: [
          { role: "user", content: "Hello" },
          ...created.output,
          { role: "user", content: "How are you?" },
        ] as OpenAI.Responses.ResponseInput,
      });
      const asked = sent().messages.find((m: any) => m.role === "assistant");
      assert.equal(asked.content, "Hi!");
      if (backend.kind === "ollama") assert.equal(asked.thinking, "The user greets.");
    });

    test("hosted tools listed are left out, forced ones refused; namespace tools flattened", async () => {
      fake.setReply({ toolCalls: [{ name: "close_agent", arguments: { id: "a1" } }] });
      const tools = [
        WEATHER,
        { type: "web_search", external_web_access: false },
        {
          type: "namespace",
          name: "multi_agent_v1",
          description: "agents",
          tools: [
            {
              type: "function",
              name: "close_agent",
              parameters: { type: "object", properties: { id: { type: "string" } } },
              strict: false,
            },
          ],
        },
      ] as unknown as OpenAI.Responses.Tool[];
      const res = await client.responses.create({
        model: "test-model",
        tools,
        input: "close it",
        store: false,
        include: ["reasoning.encrypted_content"],
        prompt_cache_key: "thread-1",
        parallel_tool_calls: true,
        client_metadata: { session_id: "s" },
      } as Params);
      const names = sent().tools.map((t: any) => t.function.name);
      assert.deepEqual(names, ["get_weather", "close_agent"]);
      const call = res.output[0] as OpenAI.Responses.ResponseFunctionToolCall & { namespace?: string };
      assert.equal(call.name, "close_agent");
      assert.equal(call.namespace, "multi_agent_v1");

      const forced = await client.responses
        .create({ model: "test-model", tools, tool_choice: { type: "web_search" } as never, input: "x" })
        .catch((e: unknown) => e);
      assert.ok(forced instanceof OpenAI.BadRequestError);
      assert.equal(forced.param, "tool_choice");
      assert.match(forced.message, /'web_search' is a tool that OpenAI hosts/);
    });

    test("a Codex-shaped turn: developer messages, ids of its own, store:false, its extra fields", async () => {
      fake.setReply({ text: "done" });
      const body = {
        model: "test-model",
        stream: true,
        input: [
          {
            type: "message",
            id: "msg_3edf8",
            role: "developer",
            content: [{ type: "input_text", text: "You are Codex." }],
          },
          {
            type: "message",
            id: "msg_01a2",
            role: "user",
            content: [{ type: "input_text", text: "Say hi" }],
          },
          {
            type: "function_call",
            status: "completed",
            id: "fc_1",
            name: "exec_command",
            arguments: '{"cmd":"echo hi"}',
            call_id: "call_abc123",
          },
          { type: "function_call_output", id: "fco_01a2", call_id: "call_abc123", output: "hi\n" },
        ],
        tools: [
          {
            type: "function",
            name: "exec_command",
            parameters: { type: "object", properties: { cmd: { type: "string" } } },
            strict: false,
          },
          { type: "web_search", external_web_access: false },
        ],
        tool_choice: "auto",
        parallel_tool_calls: true,
        reasoning: { summary: "auto" },
        store: false,
        include: ["reasoning.encrypted_content"],
        prompt_cache_key: "01a24beb",
        client_metadata: { session_id: "s", "x-codex-turn-metadata": "{}" },
      };
      const res = await fetch(`${gw.url}/v1/responses?api-version=2025-04-01-preview`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200);
      const frames = parseSse(await res.text());
      assert.equal(frames.at(-1)?.data.type, "response.completed");
      for (const f of frames) assert.equal(f.event, f.data.type, "the event: line names the data's type");
      const done = frames.find((f) => f.data.type === "response.output_item.done")?.data.item;
      assert.equal(done.content[0].text, "done");
      const sentBody = sent();
      assert.deepEqual(sentBody.messages[0], { role: "system", content: "You are Codex." });
      assert.deepEqual(
        sentBody.tools.map((t: any) => t.function.name),
        ["exec_command"],
      );
      assert.equal(sentBody.messages.find((m: any) => m.role === "tool").content, "hi\n");
    });

    test("bad input and a backend failure are errors in the OpenAI shape", async () => {
      const bad = await client.responses
        .create({ model: "test-model", input: [{ type: "function_call", call_id: 3 }] } as never)
        .catch((e: unknown) => e);
      assert.ok(bad instanceof OpenAI.BadRequestError);
      assert.equal(bad.param, "input.0.call_id");

      fake.setReply({ text: "x", fault: { kind: "status", status: 500, body: '{"error":"boom"}' } });
      const failed = await client.responses
        .create({ model: "test-model", input: "hi" })
        .catch((e: unknown) => e);
      assert.ok(failed instanceof OpenAI.APIError);
      assert.ok((failed.status ?? 0) >= 500);

      // a stream that breaks after it started ends with response.failed
      fake.setReply({
        text: "a long answer that breaks",
        chunkSize: 2,
        fault: { kind: "resetAfterChunks", chunks: 3 },
      });
      const all = await events(
        await client.responses.create({ model: "test-model", input: "hi", stream: true }),
      );
      const last = all.at(-1)!;
      assert.equal(last.type, "response.failed");
      if (last.type === "response.failed") {
        assert.equal(last.response.status, "failed");
        assert.equal(last.response.error?.code, "server_error");
      }
    });

    test("max_output_tokens reached: status incomplete", async () => {
      fake.setReply({ text: "cut", finishReason: "length" });
      const res = await client.responses.create({ model: "test-model", input: "long", max_output_tokens: 1 });
      assert.equal(res.status, "incomplete");
      assert.deepEqual(res.incomplete_details, { reason: "max_output_tokens" });
      const all = await events(
        await client.responses.create({
          model: "test-model",
          input: "long",
          max_output_tokens: 1,
          stream: true,
        }),
      );
      assert.equal(all.at(-1)?.type, "response.incomplete");
    });
  });
}

describe("responses: a slow backend", () => {
  test("keep-alives while the backend is silent do not trouble the SDK's stream helper", async () => {
    const backend = BACKENDS[0]!;
    const fake = await backend.start();
    const gw = await startGateway(oneBackend(backend.kind, fake.url, backend.model, backend.extra), {
      keepAliveAfterMs: 10,
      pingIntervalMs: 20,
    });
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
      fake.setReply({ text: "Late but here.", fault: { kind: "delayFirstByte", ms: 200 } });
      const stream = client.responses.stream({ model: "test-model", input: "hi" });
      const types: string[] = [];
      stream.on("event", (e) => types.push(e.type));
      const final = await stream.finalResponse();
      assert.equal(final.output_text, "Late but here.");
      assert.ok(types.includes("keepalive" as never), `keep-alives sent: ${types.join(",")}`);
      assert.ok(types.indexOf("keepalive" as never) > types.indexOf("response.in_progress"));
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
