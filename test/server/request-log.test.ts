/**
 * One request line per request, at info, whatever the client got: asserted on the real log of a
 * real gateway (pino's JSON lines) in front of a fake llama.cpp that is told to misbehave.
 * Run: node --import tsx --test test/server/request-log.test.ts
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { createLogger } from "../../src/log.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, ScriptedReply } from "../fakes/script.js";
import { type RunningGateway, startGateway } from "../helpers.js";

const KEY = "sk-clawbridge-request-log";
type Line = Record<string, any>;

/** What the fake answers, by the last word of the prompt. */
function reply(prompt: string): ScriptedReply {
  if (prompt.endsWith("fail500"))
    return {
      fault: { kind: "status", status: 500, body: '{"error":{"message":"boom","type":"server_error"}}' },
    };
  if (prompt.endsWith("fail400"))
    return {
      fault: {
        kind: "status",
        status: 400,
        body: '{"error":{"message":"bad grammar field","type":"invalid_request_error"}}',
      },
    };
  if (prompt.endsWith("hang")) return { fault: { kind: "hangBeforeHeaders" } };
  if (prompt.endsWith("slow"))
    return {
      text: "a slow answer that keeps coming",
      chunkSize: 2,
      fault: { kind: "delayBetweenChunks", ms: 100 },
    };
  return { text: "Hello there, friend.", usage: { prompt: 11, completion: 5 } };
}

describe("the request line", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  const lines: Line[] = [];
  const requestLines = () => lines.filter((l) => l.req !== undefined);

  before(async () => {
    fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      reply: (r) => {
        const msgs = r.body?.messages ?? [];
        const last = msgs.at(-1)?.content;
        return reply(typeof last === "string" ? last : JSON.stringify(last ?? ""));
      },
    });
    const log = createLogger({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    gw = await startGateway(
      `
server: { master_key: ${KEY}, body_limit_mb: 0.05 }
timeouts: { load_ms: 300 }
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: llamacpp }
models:
  test-model: { backend: b, model: "fake-model" }
`,
      { log },
    );
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  /** The request line that appears next (they are written when the response closes). */
  async function nextLine(before: number): Promise<Line> {
    for (let i = 0; i < 100 && requestLines().length <= before; i++)
      await new Promise((r) => setTimeout(r, 20));
    const got = requestLines().slice(before);
    assert.equal(got.length, 1, `one request line, got ${JSON.stringify(got)}`);
    return got[0]!;
  }

  const post = (path: string, body: unknown, key: string | null = KEY, signal?: AbortSignal) =>
    fetch(`${gw.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
      body: typeof body === "string" ? body : JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
  const msg = (text: string, extra: Record<string, unknown> = {}) => ({
    model: "test-model",
    max_tokens: 50,
    messages: [{ role: "user", content: text }],
    ...extra,
  });

  /** The fields every line has. */
  function common(l: Line, surface: string): void {
    assert.equal(l.level, 30, "info");
    assert.match(l.req, /^req_/);
    assert.equal(l.surface, surface);
    assert.match(l.client, /^127\.0\.0\.1:\d+$/);
    assert.equal(typeof l.duration_ms, "number");
  }

  test("a success (Anthropic SDK): model → target, 200, times, tokens, the stages' notes", async () => {
    const n = requestLines().length;
    const client = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 });
    // a cache_control block: the normalize stage notes that it is dropped
    const m = await client.messages.create(
      msg("hi", {
        system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
      }) as any,
    );
    assert.equal((m.content[0] as any).text, "Hello there, friend.");
    const l = await nextLine(n);
    common(l, "anthropic");
    assert.equal(l.route, "POST /v1/messages");
    assert.equal(l.model, "test-model");
    assert.equal(l.served, "b/fake-model");
    assert.equal(l.status, 200);
    assert.equal(l.outcome, "ok");
    assert.equal(l.tokens_in, 11);
    assert.equal(l.tokens_out, 5);
    assert.equal(typeof l.queue_ms, "number");
    assert.equal(typeof l.ttft_ms, "number");
    assert.equal(l.cause, undefined);
    assert.deepEqual(l.notes, ["cache_control"], "what the stages changed, by subject");
    assert.match(l.msg, /test-model → b\/fake-model: 200 in \d+ ms/);
  });

  test("a streamed success (OpenAI SDK) and the Responses API each have their line", async () => {
    let n = requestLines().length;
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "test-model",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    assert.equal(text, "Hello there, friend.");
    let l = await nextLine(n);
    common(l, "openai");
    assert.equal(l.status, 200);
    assert.equal(l.outcome, "ok");
    assert.equal(l.tokens_out, 5);
    assert.ok(l.ttft_ms <= l.duration_ms);

    n = requestLines().length;
    const r = await client.responses.create({ model: "test-model", input: "hi" });
    assert.equal(r.output_text, "Hello there, friend.");
    l = await nextLine(n);
    common(l, "responses");
    assert.equal(l.route, "POST /v1/responses");
    assert.equal(l.status, 200);
  });

  test("count_tokens has its line", async () => {
    const n = requestLines().length;
    const res = await post("/v1/messages/count_tokens", {
      model: "test-model",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(res.status, 200);
    const { input_tokens } = (await res.json()) as { input_tokens: number };
    const l = await nextLine(n);
    common(l, "anthropic");
    assert.equal(l.route, "POST /v1/messages/count_tokens");
    assert.equal(l.status, 200);
    assert.equal(l.tokens_in, input_tokens);
  });

  const failures: Array<[string, () => Promise<Response>, number, string, RegExp]> = [
    [
      "400 validation",
      () => post("/v1/messages", { model: "test-model", messages: [] }),
      400,
      "invalid_request",
      /max_tokens|messages/,
    ],
    ["400 bad JSON", () => post("/v1/chat/completions", "{not json"), 400, "invalid_request", /JSON/i],
    ["401 no key", () => post("/v1/messages", msg("hi"), null), 401, "authentication", /no API key/],
    [
      "401 wrong key",
      () => post("/v1/messages", msg("hi"), "sk-wrong"),
      401,
      "authentication",
      /invalid API key/,
    ],
    [
      "404 unknown model",
      () => post("/v1/messages", msg("hi", { model: "no-such-model" })),
      404,
      "not_found",
      /no-such-model/,
    ],
    ["404 unknown route", () => post("/v1/nothing", {}), 404, "not_found", /no route/],
    ["413 too large", () => post("/v1/messages", msg("x".repeat(80_000))), 413, "request_too_large", /.+/],
    [
      "backend 400",
      () => post("/v1/messages", msg("please fail400")),
      400,
      "invalid_request",
      /bad grammar field/,
    ],
    ["backend 500", () => post("/v1/chat/completions", msg("please fail500")), 500, "api_error", /boom|500/],
    ["timeout", () => post("/v1/messages", msg("please hang")), 504, "timeout", /.+/],
  ];
  for (const [name, send, status, outcome, cause] of failures) {
    test(`${name}: one line with status ${status}, its outcome and its cause`, async () => {
      const n = requestLines().length;
      const res = await send();
      await res.text();
      assert.equal(res.status, status);
      const l = await nextLine(n);
      assert.equal(l.level, 30, "info, like every request line");
      assert.equal(l.status, status);
      assert.equal(l.outcome, outcome);
      assert.match(l.cause, cause);
      assert.equal(typeof l.duration_ms, "number");
      assert.match(l.client, /^127\.0\.0\.1:\d+$/);
    });
  }

  test("a client that leaves mid-stream: status client_gone", async () => {
    const n = requestLines().length;
    const ac = new AbortController();
    const res = await post("/v1/messages", msg("go slow", { stream: true }), KEY, ac.signal);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await reader.read().catch(() => undefined);
    const l = await nextLine(n);
    assert.equal(l.status, "client_gone");
    assert.equal(l.outcome, "client_gone");
    assert.equal(l.model, "test-model");
    assert.equal(l.served, "b/fake-model");
    assert.match(l.cause, /client/);
  });

  test("every request so far had exactly one line, and polling /health writes none at info", async () => {
    const ids = requestLines().map((l) => l.req);
    assert.equal(new Set(ids).size, ids.length, "no request has two lines");
    // 1 + 2 + 1 + failures + 1
    assert.equal(ids.length, 5 + failures.length);
    const res = await fetch(`${gw.url}/health`);
    await res.text();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(requestLines().length, ids.length);
  });
});
