/**
 * Checks the fake backends' wire formats with plain fetch, their faults, and that close() leaves nothing open.
 * Run: node --import tsx --test test/fakes/fakes.test.ts
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startAnthropicFake } from "./anthropic.js";
import { startOllamaFake } from "./ollama.js";
import { type OpenAICompatFakeOptions, startOpenAICompatFake } from "./openai-compat.js";
import type { FakeServer, ScriptedReply } from "./script.js";
import { countTokens, fakeTokenIds, fakeTokenize } from "./tokenizer.js";

// ---------------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------------

const open: FakeServer[] = [];
after(async () => {
  await Promise.all(open.map((f) => f.close()));
});

async function track<T extends FakeServer>(fake: Promise<T>): Promise<T> {
  const f = await fake;
  open.push(f);
  return f;
}

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** SSE frames as {event, data}; data is the raw text of the data field. */
function sseFrames(text: string): Array<{ event?: string; data: string }> {
  return text
    .split("\n\n")
    .filter((f) => f.trim() !== "")
    .map((frame) => {
      let event: string | undefined;
      const data: string[] = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      return event === undefined ? { data: data.join("\n") } : { event, data: data.join("\n") };
    });
}

/** The JSON payloads of an OpenAI-style stream, checking it ends with exactly one `data: [DONE]`. */
function openAIChunks(text: string): any[] {
  const frames = sseFrames(text);
  assert.equal(frames.at(-1)?.data, "[DONE]");
  assert.equal(frames.filter((f) => f.data === "[DONE]").length, 1);
  return frames.slice(0, -1).map((f) => JSON.parse(f.data));
}

function ndjson(text: string): any[] {
  assert.ok(text.endsWith("\n"), "NDJSON ends with a newline");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

/** Reads a body until it ends or fails; returns what arrived and the error if any. */
async function readAll(res: Response): Promise<{ text: string; error?: unknown }> {
  const reader = res.body?.getReader();
  if (!reader) return { text: "" };
  const decoder = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text: text + decoder.decode() };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error };
  }
}

/** Reads until `count` SSE frames (or NDJSON lines) have arrived. */
async function readFrames(res: Response, count: number, separator = "\n\n"): Promise<string> {
  const reader = res.body?.getReader();
  assert.ok(reader);
  const decoder = new TextDecoder();
  let text = "";
  while (text.split(separator).length - 1 < count) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const TOOL_REPLY: ScriptedReply = {
  text: "Let me check.",
  toolCalls: [
    { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } },
    { id: "call_fixed", name: "get_time", arguments: { tz: "Europe/Paris" } },
  ],
};

const userMsg = [{ role: "user", content: "What's the weather in Paris?" }];

/** Rebuilds text and tool calls from OpenAI-style chunks, the way a client accumulates them. */
function accumulate(chunks: any[]) {
  let text = "";
  let reasoning = "";
  const calls: Array<{ id?: string; type?: string; name: string; args: string }> = [];
  let finish: string | null = null;
  let usage: any;
  for (const c of chunks) {
    if (c.usage) usage = c.usage;
    for (const choice of c.choices) {
      const d = choice.delta ?? {};
      if (typeof d.content === "string") text += d.content;
      if (typeof d.reasoning_content === "string") reasoning += d.reasoning_content;
      for (const tc of d.tool_calls ?? []) {
        let call = calls[tc.index];
        if (!call) {
          call = { name: "", args: "" };
          calls[tc.index] = call;
        }
        if (tc.id) call.id = tc.id;
        if (tc.type) call.type = tc.type;
        if (tc.function?.name) call.name += tc.function.name;
        if (tc.function?.arguments) call.args += tc.function.arguments;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return { text, reasoning, calls, finish, usage };
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAI-compatible
// ---------------------------------------------------------------------------------------------------------------

describe("fake tokenizer", () => {
  it("splits as its pattern does: the hand scanner for ASCII changes no piece, id or count", () => {
    const PIECES = /<\|[a-z_]+\|>| ?[\p{L}\p{N}]+| ?[^\s\p{L}\p{N}]|\s+/gu;
    const PLAIN = / ?[\p{L}\p{N}]+| ?[^\s\p{L}\p{N}]|\s+/gu;
    const id = (piece: string) => {
      let h = 2166136261;
      for (const ch of piece) h = Math.imul(h ^ (ch.codePointAt(0) ?? 0), 16777619) >>> 0;
      return 100 + (h % 127900);
    };
    // words, marks and spaces of every kind, ASCII and not, astral, lone surrogates, special markers
    const alphabet = [
      ...'aZ9 .<|>_-"{}\t\n\r\v\f\u0000\u001féßª٣中\u00a0\u2028\ufeff\u3000\u0301',
      " ",
      "  ",
      "😀",
      "𝕏",
      "\ud800",
      "\udfff",
      "<|eot_id|>",
      "<|x",
    ];
    let seed = 7;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const texts = [
      "<|start_header_id|>user<|end_header_id|>\n\nHello, world!  Ça va?\t😀 x",
      ...Array.from({ length: 3000 }, () =>
        Array.from(
          { length: Math.floor(rnd() * 24) },
          () => alphabet[Math.floor(rnd() * alphabet.length)],
        ).join(""),
      ),
    ];
    for (const text of texts) {
      for (const special of [true, false]) {
        const want = text.match(special ? PIECES : PLAIN) ?? [];
        const what = `${JSON.stringify(text)} (special ${special})`;
        assert.deepEqual(
          fakeTokenize(text, special).map((t) => t.piece),
          want,
          what,
        );
        assert.deepEqual(fakeTokenIds(text, special), want.map(id), what);
      }
      assert.equal(countTokens(text), (text.match(PIECES) ?? []).length, JSON.stringify(text));
    }
  });
});

describe("openai-compat fake", () => {
  for (const flavor of ["generic", "llamacpp", "vllm", "lmstudio"] as const) {
    it(`${flavor}: streams role first, text, tool calls by index, finish, usage, [DONE]`, async () => {
      const fake = await track(
        startOpenAICompatFake({ flavor, reply: { ...TOOL_REPLY, reasoning: "Thinking." } }),
      );
      const res = await post(`${fake.url}/v1/chat/completions`, {
        model: "m1",
        stream: true,
        stream_options: { include_usage: true },
        messages: userMsg,
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      const chunks = openAIChunks(await res.text());
      assert.equal(chunks[0].choices[0].delta.role, "assistant");
      assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "m1"));
      assert.equal(new Set(chunks.map((c) => c.id)).size, 1, "one id for the whole stream");
      const acc = accumulate(chunks);
      assert.equal(acc.text, "Let me check.");
      assert.equal(acc.reasoning, "Thinking.");
      assert.equal(acc.finish, "tool_calls");
      assert.equal(acc.calls.length, 2);
      assert.deepEqual(JSON.parse(acc.calls[0]?.args ?? ""), { city: "Paris", unit: "celsius" });
      assert.equal(acc.calls[1]?.id, "call_fixed");
      assert.equal(acc.calls[1]?.name, "get_time");
      // the first delta of each call carries id, type and name; arguments come over several deltas
      const toolDeltas = chunks.flatMap((c) => c.choices.flatMap((ch: any) => ch.delta?.tool_calls ?? []));
      const firsts = toolDeltas.filter((t) => t.id !== undefined);
      assert.deepEqual(
        firsts.map((t) => [t.index, t.type, t.function.name]),
        [
          [0, "function", "get_weather"],
          [1, "function", "get_time"],
        ],
      );
      assert.ok(toolDeltas.filter((t) => t.index === 0 && t.function?.arguments).length > 2);
      // usage: a last chunk with empty choices
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
      assert.ok(last.usage.prompt_tokens > 0);
    });

    it(`${flavor}: non-streaming tool calls have message.content null`, async () => {
      const fake = await track(startOpenAICompatFake({ flavor, reply: { toolCalls: TOOL_REPLY.toolCalls } }));
      const res = await post(`${fake.url}/v1/chat/completions`, { model: "m1", messages: userMsg });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
      const body = (await res.json()) as any;
      assert.equal(body.object, "chat.completion");
      const choice = body.choices[0];
      assert.equal(choice.finish_reason, "tool_calls");
      assert.equal(choice.message.role, "assistant");
      assert.equal(choice.message.content, null);
      assert.equal(choice.message.tool_calls.length, 2);
      assert.equal(choice.message.tool_calls[0].type, "function");
      assert.deepEqual(JSON.parse(choice.message.tool_calls[1].function.arguments), { tz: "Europe/Paris" });
      assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
    });
  }

  it("streams text in chunkSize pieces and omits the usage chunk unless asked", async () => {
    const fake = await track(startOpenAICompatFake({ reply: { text: "abcdefghij", chunkSize: 3 } }));
    const res = await post(`${fake.url}/v1/chat/completions`, {
      model: "m",
      stream: true,
      messages: userMsg,
    });
    const chunks = openAIChunks(await res.text());
    const pieces = chunks.map((c) => c.choices[0]?.delta?.content).filter((t) => t);
    assert.deepEqual(pieces, ["abc", "def", "ghi", "j"]);
    assert.ok(chunks.every((c) => c.choices.length === 1 && !("usage" in c)));
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
  });

  it("uses scripted usage and finish reason", async () => {
    const reply = { text: "cut", finishReason: "length", usage: { prompt: 100, completion: 7 } } as const;
    const fake = await track(startOpenAICompatFake({ reply }));
    const res = await post(`${fake.url}/v1/chat/completions`, { model: "m", messages: userMsg });
    const body = (await res.json()) as any;
    assert.equal(body.choices[0].finish_reason, "length");
    assert.equal(body.usage.prompt_tokens, 100);
    assert.equal(body.usage.completion_tokens, 7);
  });

  it("sends raw tool arguments verbatim", async () => {
    const fake = await track(
      startOpenAICompatFake({ reply: { toolCalls: [{ name: "f", arguments: '{"a":' }] } }),
    );
    const res = await post(`${fake.url}/v1/chat/completions`, {
      model: "m",
      stream: true,
      messages: userMsg,
    });
    assert.equal(accumulate(openAIChunks(await res.text())).calls[0]?.args, '{"a":');
  });

  it("records requests and takes a reply function", async () => {
    const fake = await track(startOpenAICompatFake({}));
    fake.setReply((req) => ({ text: `you said ${req.body.messages.at(-1).content}` }));
    const res = await post(
      `${fake.url}/v1/chat/completions`,
      { model: "m", messages: userMsg },
      { "x-test": "1" },
    );
    assert.equal(((await res.json()) as any).choices[0].message.content, `you said ${userMsg[0]?.content}`);
    assert.equal(fake.requests.length, 1);
    const rec = fake.requests[0];
    assert.equal(rec?.method, "POST");
    assert.equal(rec?.path, "/v1/chat/completions");
    assert.equal(rec?.headers["x-test"], "1");
    assert.deepEqual(rec?.body.messages, userMsg);
    assert.ok(fake.url.startsWith("http://127.0.0.1:") && !fake.url.endsWith("/v1"));
  });

  it("llamacpp: /health, /props, /tokenize, /v1/models, timings, keys in llama.cpp order", async () => {
    const fake = await track(
      startOpenAICompatFake({
        flavor: "llamacpp",
        models: ["qwen"],
        contextLength: 16384,
        reply: { text: "hi" },
      }),
    );
    assert.deepEqual(await (await fetch(`${fake.url}/health`)).json(), { status: "ok" });
    const props = (await (await fetch(`${fake.url}/props`)).json()) as any;
    assert.equal(props.default_generation_settings.n_ctx, 16384);
    assert.equal(props.total_slots, 1);
    assert.equal(typeof props.chat_template, "string");
    const tok = (await (await post(`${fake.url}/tokenize`, { content: "Hello world!" })).json()) as any;
    assert.ok(tok.tokens.length >= 3 && tok.tokens.every((t: unknown) => typeof t === "number"));
    const pieces = (await (
      await post(`${fake.url}/tokenize`, { content: "Hi there", with_pieces: true })
    ).json()) as any;
    assert.deepEqual(
      pieces.tokens.map((t: any) => t.piece),
      ["Hi", " there"],
    );
    const models = (await (await fetch(`${fake.url}/v1/models`)).json()) as any;
    assert.equal(models.data[0].id, "qwen");
    assert.equal(models.data[0].owned_by, "llamacpp");
    const text = await (
      await post(`${fake.url}/v1/chat/completions`, { stream: true, messages: userMsg })
    ).text();
    assert.ok(
      text.startsWith(
        'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}]',
      ),
    );
    const chunks = openAIChunks(text);
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
    assert.equal(chunks.at(-1).timings.predicted_n, 1);
    assert.ok(chunks.slice(0, -1).every((c) => !("timings" in c)));
  });

  it("vllm: /v1/models has max_model_len; lmstudio: /api/v0/models has the context lengths", async () => {
    const vllm = await track(
      startOpenAICompatFake({ flavor: "vllm", models: ["a", "b"], contextLength: 32768 }),
    );
    const vm = (await (await fetch(`${vllm.url}/v1/models`)).json()) as any;
    assert.deepEqual(
      vm.data.map((m: any) => [m.id, m.object, m.owned_by, m.max_model_len]),
      [
        ["a", "model", "vllm", 32768],
        ["b", "model", "vllm", 32768],
      ],
    );
    const lms = await track(
      startOpenAICompatFake({
        flavor: "lmstudio",
        models: ["q"],
        contextLength: 4096,
        maxContextLength: 32768,
      }),
    );
    const lm = (await (await fetch(`${lms.url}/api/v0/models`)).json()) as any;
    assert.equal(lm.data[0].state, "loaded");
    assert.equal(lm.data[0].loaded_context_length, 4096);
    assert.equal(lm.data[0].max_context_length, 32768);
    const one = (await (await fetch(`${lms.url}/api/v0/models/q`)).json()) as any;
    assert.equal(one.id, "q");
    assert.equal((await fetch(`${lms.url}/v1/models`)).status, 200);
  });

  it("apiKey: 401 in each server's shape, correct key accepted", async () => {
    const generic = await track(startOpenAICompatFake({ apiKey: "sk-good" }));
    const missing = await post(`${generic.url}/v1/chat/completions`, { model: "m", messages: userMsg });
    assert.equal(missing.status, 401);
    const mErr = (await missing.json()) as any;
    assert.equal(mErr.error.type, "invalid_request_error");
    assert.equal(mErr.error.code, null);
    const wrong = await post(
      `${generic.url}/v1/chat/completions`,
      { model: "m", messages: userMsg },
      { authorization: "Bearer sk-bad-key-123" },
    );
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as any).error.code, "invalid_api_key");
    const ok = await post(
      `${generic.url}/v1/chat/completions`,
      { model: "m", messages: userMsg },
      { authorization: "Bearer sk-good" },
    );
    assert.equal(ok.status, 200);

    const llama = await track(startOpenAICompatFake({ flavor: "llamacpp", apiKey: "k" }));
    const lRes = await post(`${llama.url}/v1/chat/completions`, { messages: userMsg });
    assert.equal(lRes.status, 401);
    assert.deepEqual(await lRes.json(), {
      error: { code: 401, message: "Invalid API Key", type: "authentication_error" },
    });
    assert.equal((await fetch(`${llama.url}/health`)).status, 200, "llama.cpp /health is public");

    const vllm = await track(startOpenAICompatFake({ flavor: "vllm", apiKey: "k" }));
    const vRes = await fetch(`${vllm.url}/v1/models`);
    assert.equal(vRes.status, 401);
    assert.equal(await vRes.text(), '{"error":"Unauthorized"}');
    assert.equal((await fetch(`${vllm.url}/health`)).status, 200, "vLLM guards /v1 only");
  });

  describe("tinygrad", () => {
    const crashes: Array<[string, unknown, RegExp]> = [
      [
        "tools",
        { model: "m", messages: userMsg, tools: [{ type: "function", function: { name: "f" } }] },
        /tools/,
      ],
      [
        "a tool message",
        { model: "m", messages: [...userMsg, { role: "tool", tool_call_id: "1", content: "sunny" }] },
        /tool/,
      ],
      [
        "an assistant tool_calls",
        {
          model: "m",
          messages: [
            ...userMsg,
            {
              role: "assistant",
              content: "",
              tool_calls: [{ id: "1", type: "function", function: { name: "f", arguments: "{}" } }],
            },
          ],
        },
        /tool_calls/,
      ],
      [
        "null content",
        { model: "m", messages: [{ role: "assistant", content: null }] },
        /<class 'NoneType'>/,
      ],
      [
        "content parts",
        { model: "m", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] },
        /<class 'list'>/,
      ],
    ];
    for (const [what, body, error] of crashes) {
      it(`rejects ${what} with a 500 traceback`, async () => {
        const fake = await track(startOpenAICompatFake({ flavor: "tinygrad" }));
        const res = await post(`${fake.url}/v1/chat/completions`, body);
        assert.equal(res.status, 500);
        assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
        const text = await res.text();
        assert.ok(text.startsWith("Traceback (most recent call last):\n"));
        assert.match(text, /tinygrad\/apps\/llm\.py", line \d+, in do_POST/);
        assert.match(text.trim().split("\n").at(-1) ?? "", error);
      });
    }

    it("takes plain text and answers in Python json.dumps style, close-delimited", async () => {
      const fake = await track(startOpenAICompatFake({ flavor: "tinygrad", reply: { text: "Héllo" } }));
      const res = await post(`${fake.url}/v1/chat/completions`, {
        model: "m",
        stream: true,
        messages: userMsg,
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("connection"), "close");
      assert.equal(res.headers.get("transfer-encoding"), null);
      const text = await res.text();
      assert.ok(
        text.startsWith('data: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}'),
      );
      assert.ok(text.includes('"H\\u00e9ll"'), "non-ASCII escaped like ensure_ascii");
      assert.equal(accumulate(openAIChunks(text)).text, "Héllo");
      const body = (await (
        await post(`${fake.url}/v1/chat/completions`, { model: "m", messages: userMsg })
      ).json()) as any;
      assert.equal(body.choices[0].message.content, "Héllo");
      assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
    });

    it("non-strict takes what llm.py takes; crash: close drops the connection", async () => {
      const lax = await track(startOpenAICompatFake({ flavor: "tinygrad", tinygrad: { strict: false } }));
      const parts = {
        model: "m",
        tools: [{ type: "function" }],
        messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      };
      assert.equal((await post(`${lax.url}/v1/chat/completions`, parts)).status, 200);
      const image = {
        model: "m",
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }],
      };
      const res = await post(`${lax.url}/v1/chat/completions`, image);
      assert.equal(res.status, 500);
      assert.match(await res.text(), /RuntimeError: unhandled type: image_url/);

      const closing = await track(
        startOpenAICompatFake({ flavor: "tinygrad", tinygrad: { crash: "close" } }),
      );
      await assert.rejects(
        post(`${closing.url}/v1/chat/completions`, {
          model: "m",
          messages: [{ role: "user", content: null }],
        }),
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Ollama
// ---------------------------------------------------------------------------------------------------------------

describe("ollama fake", () => {
  const models = [
    {
      name: "qwen3:8b",
      capabilities: ["completion", "tools", "thinking"],
      contextLength: 40960,
      numCtx: 8192,
      family: "qwen3",
    },
    { name: "gemma3", capabilities: ["completion"], family: "gemma3" },
  ];

  it("streams NDJSON: content lines, tool calls in one line, then done with metrics", async () => {
    const fake = await track(startOllamaFake({ models, reply: { ...TOOL_REPLY, reasoning: "Hmm." } }));
    const res = await post(`${fake.url}/api/chat`, {
      model: "qwen3:8b",
      messages: userMsg,
      tools: [{ type: "function" }],
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const lines = ndjson(await res.text());
    for (const l of lines) {
      assert.equal(l.model, "qwen3:8b");
      assert.match(l.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
      assert.equal(l.message.role, "assistant");
    }
    const body = lines.slice(0, -1);
    assert.ok(body.every((l) => l.done === false && !("done_reason" in l)));
    assert.equal(body.map((l) => l.message.thinking ?? "").join(""), "Hmm.");
    assert.equal(body.map((l) => l.message.content).join(""), "Let me check.");
    const withCalls = body.filter((l) => l.message.tool_calls);
    assert.equal(withCalls.length, 1, "all tool calls in one line");
    assert.deepEqual(
      withCalls[0].message.tool_calls.map((c: any) => [
        c.function.index,
        c.function.name,
        c.function.arguments,
      ]),
      [
        [0, "get_weather", { city: "Paris", unit: "celsius" }],
        [1, "get_time", { tz: "Europe/Paris" }],
      ],
    );
    assert.match(withCalls[0].message.tool_calls[0].id, /^call_[a-z0-9]{8}$/);
    const done = lines.at(-1);
    assert.equal(done.done, true);
    assert.equal(done.done_reason, "stop");
    for (const k of [
      "total_duration",
      "load_duration",
      "prompt_eval_count",
      "prompt_eval_duration",
      "eval_count",
      "eval_duration",
    ]) {
      assert.equal(typeof done[k], "number", k);
    }
  });

  it("answers one object when stream is false; length maps to done_reason length", async () => {
    const reply = {
      text: "Hello there",
      finishReason: "length",
      usage: { prompt: 11, completion: 3 },
    } as const;
    const fake = await track(startOllamaFake({ reply }));
    const res = await post(`${fake.url}/api/chat`, { model: "llama3.2", stream: false, messages: userMsg });
    assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
    const body = (await res.json()) as any;
    assert.equal(body.model, "llama3.2");
    assert.deepEqual(body.message, { role: "assistant", content: "Hello there" });
    assert.equal(body.done, true);
    assert.equal(body.done_reason, "length");
    assert.equal(body.prompt_eval_count, 11);
    assert.equal(body.eval_count, 3);
  });

  it("refuses tools for a model without the capability, and unknown models", async () => {
    const fake = await track(startOllamaFake({ models }));
    const noTools = await post(`${fake.url}/api/chat`, {
      model: "gemma3",
      messages: userMsg,
      tools: [{ type: "function" }],
    });
    assert.equal(noTools.status, 400);
    assert.equal(
      await noTools.text(),
      '{"error":"registry.ollama.ai/library/gemma3:latest does not support tools"}',
    );
    const fine = await post(`${fake.url}/api/chat`, { model: "gemma3", messages: userMsg, tools: [] });
    assert.equal(fine.status, 200);
    await fine.text();
    const unknown = await post(`${fake.url}/api/chat`, { model: "x", messages: userMsg });
    assert.equal(unknown.status, 404);
    assert.deepEqual(await unknown.json(), { error: 'model "x" not found, try pulling it first' });
    const think = await post(`${fake.url}/api/chat`, { model: "gemma3", think: true, messages: userMsg });
    assert.equal(think.status, 400);
    assert.deepEqual(await think.json(), { error: '"gemma3" does not support thinking' });
  });

  it("serves /api/tags, /api/show, /api/ps, /api/version and /", async () => {
    const fake = await track(startOllamaFake({ models }));
    const tags = (await (await fetch(`${fake.url}/api/tags`)).json()) as any;
    assert.deepEqual(
      tags.models.map((m: any) => [m.name, m.model, m.details.family]),
      [
        ["qwen3:8b", "qwen3:8b", "qwen3"],
        ["gemma3:latest", "gemma3:latest", "gemma3"],
      ],
    );
    assert.match(tags.models[0].digest, /^[0-9a-f]{64}$/);
    const show = (await (await post(`${fake.url}/api/show`, { model: "qwen3:8b" })).json()) as any;
    assert.equal(show.model_info["general.architecture"], "qwen3");
    assert.equal(show.model_info["qwen3.context_length"], 40960);
    assert.match(show.parameters, /^num_ctx {24}8192$/m);
    assert.deepEqual(show.capabilities, ["completion", "tools", "thinking"]);
    assert.equal(show.details.family, "qwen3");
    const plain = (await (await post(`${fake.url}/api/show`, { name: "gemma3" })).json()) as any;
    assert.doesNotMatch(plain.parameters, /num_ctx/);
    assert.deepEqual(plain.capabilities, ["completion"]);
    assert.equal((await post(`${fake.url}/api/show`, { model: "nope" })).status, 404);
    const ps = (await (await fetch(`${fake.url}/api/ps`)).json()) as any;
    assert.equal(ps.models[0].name, "qwen3:8b");
    assert.equal(ps.models[0].context_length, 8192);
    assert.match(((await (await fetch(`${fake.url}/api/version`)).json()) as any).version, /^\d+\.\d+\.\d+$/);
    assert.equal(await (await fetch(`${fake.url}/`)).text(), "Ollama is running");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------------------------------------------

describe("anthropic fake", () => {
  const headers = { "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test" };
  const request = { model: "claude-test", max_tokens: 1024, messages: userMsg };

  it("streams message_start, blocks (thinking, text, tool_use), ping, message_delta, message_stop", async () => {
    const fake = await track(
      startAnthropicFake({ reply: { ...TOOL_REPLY, reasoning: "Consider." }, apiKey: "sk-ant-test" }),
    );
    const res = await post(`${fake.url}/v1/messages`, { ...request, stream: true }, headers);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const frames = sseFrames(await res.text());
    for (const f of frames) assert.equal(JSON.parse(f.data).type, f.event, "event name matches data.type");
    const events = frames.map((f) => ({ event: f.event, data: JSON.parse(f.data) }));
    assert.equal(events[0]?.event, "message_start");
    assert.equal(events[0]?.data.message.model, "claude-test");
    assert.deepEqual(events[0]?.data.message.content, []);
    assert.equal(events.at(-1)?.event, "message_stop");
    assert.equal(events.at(-2)?.event, "message_delta");
    assert.equal(events.at(-2)?.data.delta.stop_reason, "tool_use");
    assert.ok(events.some((e) => e.event === "ping"));
    const starts = events.filter((e) => e.event === "content_block_start").map((e) => e.data);
    assert.deepEqual(
      starts.map((s) => [s.index, s.content_block.type]),
      [
        [0, "thinking"],
        [1, "text"],
        [2, "tool_use"],
        [3, "tool_use"],
      ],
    );
    assert.deepEqual(starts[2].content_block.input, {});
    assert.equal(starts[3].content_block.id, "call_fixed");
    const deltas = events.filter((e) => e.event === "content_block_delta").map((e) => e.data);
    const byIndex = (i: number, type: string, field: string) =>
      deltas
        .filter((d) => d.index === i && d.delta.type === type)
        .map((d) => d.delta[field])
        .join("");
    assert.equal(byIndex(0, "thinking_delta", "thinking"), "Consider.");
    assert.ok(byIndex(0, "signature_delta", "signature").length > 0);
    assert.equal(byIndex(1, "text_delta", "text"), "Let me check.");
    assert.deepEqual(JSON.parse(byIndex(2, "input_json_delta", "partial_json")), {
      city: "Paris",
      unit: "celsius",
    });
    assert.deepEqual(
      events.filter((e) => e.event === "content_block_stop").map((e) => e.data.index),
      [0, 1, 2, 3],
    );
    assert.ok(events.at(-2)?.data.usage.output_tokens > 0);
  });

  it("answers a message object when not streaming", async () => {
    const fake = await track(
      startAnthropicFake({
        reply: { text: "Hi!", finishReason: "length", usage: { prompt: 9, completion: 2 } },
      }),
    );
    const res = await post(`${fake.url}/v1/messages`, request, headers);
    const body = (await res.json()) as any;
    assert.equal(body.type, "message");
    assert.equal(body.role, "assistant");
    assert.match(body.id, /^msg_/);
    assert.deepEqual(body.content, [{ type: "text", text: "Hi!" }]);
    assert.equal(body.stop_reason, "max_tokens");
    assert.equal(body.usage.input_tokens, 9);
    assert.equal(body.usage.output_tokens, 2);
  });

  it("errors in Anthropic's shape: wrong key, missing version, missing max_tokens; counts tokens", async () => {
    const fake = await track(startAnthropicFake({ apiKey: "sk-ant-test" }));
    const wrong = await post(`${fake.url}/v1/messages`, request, { ...headers, "x-api-key": "nope" });
    assert.equal(wrong.status, 401);
    const wErr = (await wrong.json()) as any;
    assert.equal(wErr.type, "error");
    assert.equal(wErr.error.type, "authentication_error");
    assert.equal(typeof wErr.error.message, "string");
    const noVersion = await post(`${fake.url}/v1/messages`, request, { "x-api-key": "sk-ant-test" });
    assert.equal(noVersion.status, 400);
    assert.equal(((await noVersion.json()) as any).error.type, "invalid_request_error");
    const noMax = await post(`${fake.url}/v1/messages`, { model: "c", messages: userMsg }, headers);
    assert.equal(noMax.status, 400);
    assert.equal(((await noMax.json()) as any).error.message, "max_tokens: Field required");
    const count = await post(
      `${fake.url}/v1/messages/count_tokens`,
      { model: "c", messages: userMsg },
      headers,
    );
    const counted = (await count.json()) as any;
    assert.deepEqual(Object.keys(counted), ["input_tokens"]);
    assert.ok(counted.input_tokens > 0);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------------------------

describe("faults", () => {
  const chat = (fake: FakeServer, stream = true) =>
    post(`${fake.url}/v1/chat/completions`, { model: "m", stream, messages: userMsg });
  const faulty = (fault: ScriptedReply["fault"], opts: OpenAICompatFakeOptions = {}) =>
    track(startOpenAICompatFake({ ...opts, reply: { text: "one two three four five six", fault } }));

  it("status: the backend's error shape, or the given body and headers", async () => {
    const fake = await faulty({ kind: "status", status: 503 }, { flavor: "llamacpp" });
    const res = await chat(fake);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), {
      error: { code: 503, message: "Loading model", type: "unavailable_error" },
    });
    fake.setReply({
      fault: { kind: "status", status: 429, body: "slow down", headers: { "retry-after": "2" } },
    });
    const custom = await chat(fake, false);
    assert.equal(custom.status, 429);
    assert.equal(custom.headers.get("retry-after"), "2");
    assert.equal(await custom.text(), "slow down");

    const ollama = await track(startOllamaFake({ reply: { fault: { kind: "status", status: 500 } } }));
    const oRes = await post(`${ollama.url}/api/chat`, { model: "llama3.2", messages: userMsg });
    assert.equal(oRes.status, 500);
    assert.equal(typeof ((await oRes.json()) as any).error, "string");
    const anthropic = await track(startAnthropicFake({ reply: { fault: { kind: "status", status: 529 } } }));
    const aRes = await post(
      `${anthropic.url}/v1/messages`,
      { model: "c", max_tokens: 5, messages: userMsg },
      { "anthropic-version": "2023-06-01" },
    );
    assert.equal(aRes.status, 529);
    assert.equal(((await aRes.json()) as any).error.type, "overloaded_error");
  });

  it("resetAfterChunks: N chunks arrive, then the connection dies", async () => {
    const fake = await faulty({ kind: "resetAfterChunks", chunks: 3 });
    const res = await chat(fake);
    assert.equal(res.status, 200);
    const { text, error } = await readAll(res);
    assert.ok(error, "the body fails");
    assert.equal(sseFrames(text).length, 3);
    const ollama = await track(
      startOllamaFake({ reply: { text: "abcdefgh", fault: { kind: "resetAfterChunks", chunks: 1 } } }),
    );
    const oRes = await post(`${ollama.url}/api/chat`, { model: "llama3.2", messages: userMsg });
    const o = await readAll(oRes);
    assert.ok(o.error);
    assert.equal(o.text.split("\n").filter(Boolean).length, 1);
  });

  it("resetAfterChunks on a non-streaming request cuts the body", async () => {
    const fake = await faulty({ kind: "resetAfterChunks", chunks: 1 });
    const res = await chat(fake, false);
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
  });

  it("resetBeforeHeaders: the request fails without a response", async () => {
    const fake = await faulty({ kind: "resetBeforeHeaders" });
    await assert.rejects(chat(fake));
  });

  it("hangBeforeHeaders: nothing comes back until the fake closes, then the request fails", async () => {
    const fake = await startOpenAICompatFake({ reply: { fault: { kind: "hangBeforeHeaders" } } });
    const pending = chat(fake);
    let settled = false;
    pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await waitFor(() => fake.requests.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false);
    const t0 = Date.now();
    await fake.close();
    await assert.rejects(pending);
    assert.ok(Date.now() - t0 < 1000);
  });

  it("hangAfterChunks: N chunks, then silence with the socket open", async () => {
    const fake = await startOpenAICompatFake({
      reply: { text: "abcdefghijkl", fault: { kind: "hangAfterChunks", chunks: 2 } },
    });
    const res = await chat(fake);
    const first = await readFrames(res, 2);
    assert.equal(sseFrames(first).length, 2);
    const rest = readAll(res);
    let settled = false;
    rest.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(settled, false, "no more bytes and no end");
    await fake.close();
    const { text, error } = await rest;
    assert.ok(error);
    assert.equal(text, "");
  });

  it("delayFirstByte and delayBetweenChunks", async () => {
    const slow = await faulty({ kind: "delayFirstByte", ms: 150 });
    let t0 = Date.now();
    const res = await chat(slow);
    assert.ok(Date.now() - t0 >= 140, "headers wait");
    await res.text();
    const drip = await track(
      startOpenAICompatFake({
        reply: { text: "abcdefgh", chunkSize: 4, fault: { kind: "delayBetweenChunks", ms: 40 } },
      }),
    );
    t0 = Date.now();
    const chunks = openAIChunks(await (await chat(drip)).text());
    // role, 2 text chunks, finish, [DONE]: 4 gaps
    assert.equal(chunks.length, 4);
    assert.ok(Date.now() - t0 >= 150);
  });

  it("malformed: one garbage frame among valid ones", async () => {
    const fake = await faulty({ kind: "malformed", afterChunks: 2 });
    const frames = sseFrames(await (await chat(fake)).text());
    const bad = frames.filter((f) => {
      if (f.data === "[DONE]") return false;
      try {
        JSON.parse(f.data);
        return false;
      } catch {
        return true;
      }
    });
    assert.equal(bad.length, 1);
    assert.equal(frames.indexOf(bad[0] as { data: string }), 2);
    assert.equal(frames.at(-1)?.data, "[DONE]");
    const ollama = await track(startOllamaFake({ reply: { text: "hello", fault: { kind: "malformed" } } }));
    const text = await (
      await post(`${ollama.url}/api/chat`, { model: "llama3.2", messages: userMsg })
    ).text();
    assert.throws(() => ndjson(text));
  });

  it("unfinished: the stream ends without its finish marker, in each wire", async () => {
    const fake = await faulty({ kind: "unfinished" });
    const chunks = openAIChunks(await (await chat(fake)).text());
    assert.equal(accumulate(chunks).text, "one two three four five six");
    assert.equal(accumulate(chunks).finish, null, "no finish_reason, [DONE] all the same");
    const ollama = await track(startOllamaFake({ reply: { text: "hello", fault: { kind: "unfinished" } } }));
    const lines = ndjson(
      await (await post(`${ollama.url}/api/chat`, { model: "llama3.2", messages: userMsg })).text(),
    );
    assert.equal(lines.map((l) => l.message.content).join(""), "hello");
    assert.ok(!lines.some((l) => l.done), "no done: true line");
    const anthropic = await track(
      startAnthropicFake({ reply: { text: "hi", fault: { kind: "unfinished" } } }),
    );
    const events = sseFrames(
      await (
        await post(
          `${anthropic.url}/v1/messages`,
          { model: "c", max_tokens: 5, stream: true, messages: userMsg },
          { "anthropic-version": "2023-06-01" },
        )
      ).text(),
    ).map((f) => f.event);
    assert.equal(events.at(-1), "message_delta", "no message_stop");
  });

  it("garbageAfterEnd: the stream in full, then a garbage frame", async () => {
    const fake = await faulty({ kind: "garbageAfterEnd" });
    const frames = sseFrames(await (await chat(fake)).text());
    assert.equal(frames.at(-2)?.data, "[DONE]");
    assert.throws(() => JSON.parse(frames.at(-1)!.data));
    const body = await (await chat(fake, false)).text();
    assert.ok(body.endsWith("<html><body>502 Bad Gateway</body></html>"));
    assert.equal(JSON.parse(body.slice(0, body.indexOf("<html>"))).choices[0].finish_reason, "stop");
  });

  it("repeat: the text chunks sent over and over, the rest once", async () => {
    const fake = await track(startOpenAICompatFake({ reply: { text: "abcd", chunkSize: 2, repeat: 3 } }));
    const chunks = openAIChunks(await (await chat(fake)).text());
    assert.equal(accumulate(chunks).text, "abcdabcdabcd");
    assert.equal(accumulate(chunks).finish, "stop");
    const ollama = await track(startOllamaFake({ reply: { text: "xy", chunkSize: 1, repeat: 2 } }));
    const lines = ndjson(
      await (await post(`${ollama.url}/api/chat`, { model: "llama3.2", messages: userMsg })).text(),
    );
    assert.equal(lines.map((l) => l.message.content).join(""), "xyxy");
    assert.equal(lines.filter((l) => l.done).length, 1);
    const anthropic = await track(startAnthropicFake({ reply: { text: "ok", chunkSize: 1, repeat: 2 } }));
    const text = sseFrames(
      await (
        await post(
          `${anthropic.url}/v1/messages`,
          { model: "c", max_tokens: 5, stream: true, messages: userMsg },
          { "anthropic-version": "2023-06-01" },
        )
      ).text(),
    )
      .map((f) => JSON.parse(f.data))
      .map((d) => d.delta?.text ?? "")
      .join("");
    assert.equal(text, "okok");
  });

  it("setKeepAlive(false): every response says Connection: close", async () => {
    const fake = await track(startOpenAICompatFake({ flavor: "llamacpp" }));
    const connection = () =>
      new Promise<string | undefined>((resolve, reject) => {
        http
          .get(`${fake.url}/health`, { agent: false, headers: { connection: "keep-alive" } }, (res) => {
            res.resume();
            resolve(res.headers.connection);
          })
          .on("error", reject);
      });
    assert.equal(await connection(), "keep-alive");
    fake.setKeepAlive(false);
    assert.equal(await connection(), "close");
  });

  it("emptyStream: 200, headers, no events", async () => {
    const fake = await faulty({ kind: "emptyStream" });
    const res = await chat(fake);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(await res.text(), "");
    const anthropic = await track(startAnthropicFake({ reply: { fault: { kind: "emptyStream" } } }));
    const aRes = await post(
      `${anthropic.url}/v1/messages`,
      { model: "c", max_tokens: 5, stream: true, messages: userMsg },
      { "anthropic-version": "2023-06-01" },
    );
    assert.equal(await aRes.text(), "");
  });
});

// ---------------------------------------------------------------------------------------------------------------
// close() leaves nothing open
// ---------------------------------------------------------------------------------------------------------------

describe("close()", () => {
  it("leaves nothing that keeps the process alive", async () => {
    const mod = (name: string) => JSON.stringify(fileURLToPath(new URL(`./${name}`, import.meta.url)));
    const child = `
      const { startOpenAICompatFake } = await import(${mod("openai-compat.ts")});
      const { startOllamaFake } = await import(${mod("ollama.ts")});
      const { startAnthropicFake } = await import(${mod("anthropic.ts")});
      const oa = await startOpenAICompatFake({ flavor: "llamacpp", reply: { text: "hello there", fault: { kind: "hangAfterChunks", chunks: 1 } } });
      const ol = await startOllamaFake({ reply: { text: "hi", fault: { kind: "delayFirstByte", ms: 600000 } } });
      const an = await startAnthropicFake({ reply: { fault: { kind: "hangBeforeHeaders" } } });
      const ok = await fetch(oa.url + "/health");  // leaves a keep-alive connection behind
      await ok.text();
      const post = (url, body, headers = {}) => fetch(url, { method: "POST", headers, body: JSON.stringify(body) })
        .then((r) => r.text()).then(() => "ended", () => "failed");
      const msgs = [{ role: "user", content: "hi" }];
      const pending = [
        post(oa.url + "/v1/chat/completions", { stream: true, messages: msgs }),
        post(ol.url + "/api/chat", { model: "llama3.2", messages: msgs }),
        post(an.url + "/v1/messages", { model: "c", max_tokens: 5, messages: msgs }, { "anthropic-version": "2023-06-01" }),
      ];
      while (oa.requests.length < 2 || ol.requests.length < 1 || an.requests.length < 1) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      await Promise.all([oa.close(), ol.close(), an.close()]);
      console.log(JSON.stringify(await Promise.all(pending)));
    `;
    const started = Date.now();
    const proc = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "--eval", child], {
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const kill = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      proc.on("exit", (c) => {
        clearTimeout(kill);
        resolve(c);
      });
    });
    assert.equal(code, 0, `child exited by itself (stderr: ${err})`);
    assert.deepEqual(JSON.parse(out.trim()), ["failed", "failed", "failed"]);
    assert.ok(Date.now() - started < 15_000);
  });
});
