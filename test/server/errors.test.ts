/**
 * Bad input and failing upstreams: every answer has the right status and an error body in the dialect of the
 * surface the client spoke, on both surfaces, with plain HTTP and through the official SDKs.
 * Run: node --import tsx --test test/server/errors.test.ts
 */
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { DEFAULT_BODY_LIMIT } from "../../src/config/types.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, ScriptedReply } from "../fakes/script.js";
import { parseSse, type RunningGateway, startGateway } from "../helpers.js";

/** The backend's name: upstream failures must name it. */
const BACKEND = "llama-box";
const MASTER_KEY = "sk-clawbridge-test-key";
/** No answer may take longer than this: a hang is a failure, not a slow test. */
const TIMEOUT_MS = 5000;

function config(url: string, server = ""): string {
  return `
${server}
backends:
  ${BACKEND}:
    kind: openai-compat
    url: "${url}"
    flavor: llamacpp
models:
  test-model: { backend: ${BACKEND}, model: "fake-model" }
`;
}

type Kind = "invalid" | "auth" | "not_found" | "too_large" | "api" | "unavailable" | "overloaded";

/** What each dialect answers for each kind (src/surfaces/{anthropic,openai}/encode.ts). */
const ANTHROPIC: Record<Kind, { status: number; type: string }> = {
  invalid: { status: 400, type: "invalid_request_error" },
  auth: { status: 401, type: "authentication_error" },
  not_found: { status: 404, type: "not_found_error" },
  too_large: { status: 413, type: "request_too_large" },
  api: { status: 500, type: "api_error" },
  unavailable: { status: 503, type: "api_error" },
  overloaded: { status: 529, type: "overloaded_error" },
};
const OPENAI: Record<Kind, { status: number; type: string; code: string | null }> = {
  invalid: { status: 400, type: "invalid_request_error", code: null },
  auth: { status: 401, type: "invalid_request_error", code: "invalid_api_key" },
  not_found: { status: 404, type: "invalid_request_error", code: "model_not_found" },
  too_large: { status: 413, type: "invalid_request_error", code: "request_too_large" },
  api: { status: 500, type: "server_error", code: null },
  unavailable: { status: 503, type: "server_error", code: "backend_unreachable" },
  overloaded: { status: 503, type: "server_error", code: "overloaded" },
};

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

async function send(
  url: string,
  init: {
    method?: string;
    body?: string | Uint8Array;
    headers?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<Answer> {
  const res = await fetch(url, {
    method: init.method ?? "POST",
    headers: init.body === undefined ? init.headers : { "content-type": "application/json", ...init.headers },
    body: init.body,
    signal: AbortSignal.timeout(init.timeoutMs ?? TIMEOUT_MS),
  });
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", text: await res.text() };
}

interface Surface {
  name: "anthropic" | "openai";
  path: string;
  headers: Record<string, string>;
  /** A request that succeeds. */
  valid(): Record<string, any>;
  /** Asserts an error answer of this kind in this surface's dialect; returns the error object. */
  expectError(a: Answer, kind: Kind, what: string): { message: string; [k: string]: unknown };
}

function parseJson(a: Answer, what: string): any {
  assert.match(a.contentType, /^application\/json/, `${what}: content-type of an error`);
  try {
    return JSON.parse(a.text);
  } catch {
    assert.fail(`${what}: error body is not JSON: ${a.text.slice(0, 300)}`);
  }
}

const anthropic: Surface = {
  name: "anthropic",
  path: "/v1/messages",
  headers: { "anthropic-version": "2023-06-01" },
  valid: () => ({ model: "test-model", max_tokens: 64, messages: [{ role: "user", content: "Hello" }] }),
  expectError(a, kind, what) {
    const want = ANTHROPIC[kind];
    assert.equal(a.status, want.status, `${what}: status (body ${a.text.slice(0, 300)})`);
    const body = parseJson(a, what);
    assert.deepEqual(Object.keys(body).sort(), ["error", "type"], `${what}: top-level keys of ${a.text}`);
    assert.equal(body.type, "error", what);
    assert.equal(body.error.type, want.type, `${what}: error.type`);
    assert.equal(typeof body.error.message, "string", what);
    assert.ok(body.error.message.length > 0, `${what}: empty message`);
    return body.error;
  },
};

const openai: Surface = {
  name: "openai",
  path: "/v1/chat/completions",
  headers: {},
  valid: () => ({ model: "test-model", messages: [{ role: "user", content: "Hello" }] }),
  expectError(a, kind, what) {
    const want = OPENAI[kind];
    assert.equal(a.status, want.status, `${what}: status (body ${a.text.slice(0, 300)})`);
    const body = parseJson(a, what);
    assert.deepEqual(Object.keys(body), ["error"], `${what}: top-level keys of ${a.text}`);
    const e = body.error;
    assert.deepEqual(Object.keys(e).sort(), ["code", "message", "param", "type"], `${what}: error keys`);
    assert.equal(typeof e.message, "string", what);
    assert.ok(e.message.length > 0, `${what}: empty message`);
    assert.equal(e.type, want.type, `${what}: error.type`);
    assert.ok(e.param === null || typeof e.param === "string", `${what}: param`);
    // not_found: model_not_found for models, a route has its own; api: the gateway may say more (backend_unreachable)
    if (kind === "not_found" || kind === "api")
      assert.ok(e.code === null || typeof e.code === "string", `${what}: code`);
    else assert.equal(e.code, want.code, `${what}: error.code`);
    return e;
  },
};

const SURFACES = [anthropic, openai];

/** A free loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A JSON request body of `size` bytes (one long user message) as a Buffer: no big string is built. */
function bodyOfSize(surface: Surface, size: number): Buffer {
  const head = Buffer.from(JSON.stringify({ ...surface.valid(), messages: [{ role: "user", content: "" }] }));
  const cut = head.lastIndexOf('""') + 1; // inside the empty content string
  const buf = Buffer.alloc(size, 0x61); // "a"
  head.copy(buf, 0, 0, cut);
  head.copy(buf, size - (head.length - cut), cut);
  return buf;
}

let fake: FakeServer;
let gw: RunningGateway;
let keyed: RunningGateway;
let down: RunningGateway;
/** Gateways with a 1 MB and a 0.5 MB body limit. */
let small: RunningGateway;
let half: RunningGateway;

before(async () => {
  // a window that takes the 1 MB bodies of the body-limit tests (the context stage keeps prompts inside it)
  fake = await startOpenAICompatFake({ flavor: "llamacpp", contextLength: 1 << 20 });
  gw = await startGateway(config(fake.url));
  keyed = await startGateway(config(fake.url, `server:\n  master_key: "${MASTER_KEY}"`));
  down = await startGateway(config(`http://127.0.0.1:${await closedPort()}`), { discover: false });
  small = await startGateway(config(fake.url, "server:\n  body_limit_mb: 1"));
  half = await startGateway(config(fake.url, "server:\n  body_limit_mb: 0.5"));
});

after(async () => {
  await Promise.all([gw?.close(), keyed?.close(), down?.close(), small?.close(), half?.close()]);
  await fake?.close();
});

for (const s of SURFACES) {
  const post = (body: string | Uint8Array | Record<string, unknown>, headers: Record<string, string> = {}) =>
    send(`${gw.url}${s.path}`, {
      body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
      headers: { ...s.headers, ...headers },
    });

  describe(`${s.name} surface: bad input`, () => {
    test("a valid request succeeds (the baseline)", async () => {
      fake.setReply({ text: "Hi." });
      const a = await post(s.valid());
      assert.equal(a.status, 200, a.text);
    });

    test("malformed JSON is a 400", async () => {
      for (const body of [
        '{"model": "test-model", "messages": [',
        "{model: 'test-model'}",
        "not json",
        "{}}",
      ]) {
        const e = s.expectError(await post(body), "invalid", `body ${body}`);
        assert.match(e.message, /JSON/, `the message says the body is not JSON: ${e.message}`);
      }
      // the same without a content type, and an empty body
      const noType = await send(`${gw.url}${s.path}`, {
        body: "{",
        headers: { ...s.headers, "content-type": "" },
      });
      s.expectError(noType, "invalid", "malformed body without a content type");
      const e = s.expectError(await post(""), "invalid", "empty body");
      assert.match(e.message, /empty|JSON/);
    });

    test("a JSON body that is not an object is a 400", async () => {
      for (const body of ["[]", '[{"model":"test-model"}]', '"hello"', "42", "null", "true"]) {
        s.expectError(await post(body), "invalid", `body ${body}`);
      }
    });

    test("fields of the wrong type are a 400 that names the field", async () => {
      const cases: Array<[string, Record<string, unknown>, RegExp]> = [
        ["messages a string", { ...s.valid(), messages: "Hello" }, /messages/],
        ["messages an object", { ...s.valid(), messages: { role: "user", content: "Hello" } }, /messages/],
        ["max_tokens a string", { ...s.valid(), max_tokens: "10" }, /max_tokens/],
        ["model a number", { ...s.valid(), model: 42 }, /model/],
        ["stream a string", { ...s.valid(), stream: "yes" }, /stream/],
        ["temperature a string", { ...s.valid(), temperature: "hot" }, /temperature/],
        [
          "a text block with text: 5",
          { ...s.valid(), messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] },
          /messages\.0\.content\.0/,
        ],
        [
          "a role that does not exist",
          { ...s.valid(), messages: [{ role: "wizard", content: "Hi" }] },
          /role|messages/,
        ],
      ];
      for (const [what, body, names] of cases) {
        const e = s.expectError(await post(body), "invalid", what);
        assert.match(e.message, names, `${what}: ${e.message}`);
        if (s.name === "openai") assert.match(String(e.param), names, `${what}: param`);
      }
    });

    test("missing required fields are a 400 that names the field", async () => {
      const required = s.name === "anthropic" ? ["model", "messages", "max_tokens"] : ["model", "messages"];
      for (const field of required) {
        const { [field]: _gone, ...body } = s.valid();
        const e = s.expectError(await post(body), "invalid", `without ${field}`);
        assert.match(e.message, new RegExp(field), `the message names ${field}: ${e.message}`);
        if (s.name === "openai") assert.equal(e.param, field);
      }
      s.expectError(await post({}), "invalid", "an empty object");
    });

    test("an unknown model is a 404 that names the model", async () => {
      for (const stream of [false, true]) {
        const e = s.expectError(
          await post({ ...s.valid(), model: "no-such-model-xyz", stream }),
          "not_found",
          `unknown model, stream ${stream}`,
        );
        assert.match(e.message, /no-such-model-xyz/);
        if (s.name === "openai") {
          assert.equal(e.code, "model_not_found");
          assert.equal(e.param, "model");
        }
      }
    });

    test("a body over the 32 MB limit is a 413, quickly", async () => {
      assert.equal(DEFAULT_BODY_LIMIT, 32 * 1024 * 1024);
      const started = performance.now();
      // with a content-length: refused before it is read
      let body: Buffer | undefined = bodyOfSize(s, 33 * 1024 * 1024);
      assert.equal(body.subarray(-4).toString(), '"}]}', "the body ends as JSON");
      const e = s.expectError(await post(body), "too_large", "33 MB body");
      body = undefined;
      assert.match(e.message, /32 MB/, e.message);
      // streamed (chunked, no content-length): refused once the limit is crossed
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(ctrl) {
          if (sent === 0) ctrl.enqueue(Buffer.from('{"model":"test-model","messages":[],"pad":"'));
          if (sent >= 34) ctrl.close();
          else ctrl.enqueue(chunk);
          sent++;
        },
      });
      const res = await fetch(`${gw.url}${s.path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...s.headers },
        body: stream,
        duplex: "half",
        signal: AbortSignal.timeout(TIMEOUT_MS),
      } as RequestInit);
      s.expectError(
        { status: res.status, contentType: res.headers.get("content-type") ?? "", text: await res.text() },
        "too_large",
        "33 MB streamed body",
      );
      assert.ok(performance.now() - started < 4000, "413s come back fast");
    });

    test("server.body_limit_mb sets the limit: just under passes, just over is a 413", async () => {
      fake.setReply({ text: "Hi." });
      const url = `${small.url}${s.path}`;
      const under = await send(url, { body: bodyOfSize(s, 1024 * 1024 - 1024), headers: s.headers });
      assert.equal(under.status, 200, under.text.slice(0, 300));
      const over = await send(url, { body: bodyOfSize(s, 1024 * 1024 + 1), headers: s.headers });
      const e = s.expectError(over, "too_large", "1 MB + 1 byte");
      assert.match(e.message, /1 MB/, e.message);
    });

    test("the 413 message states a fractional limit as configured", async () => {
      // body_limit_mb: 0.5 — the message must not round it to "1 MB" (nor a smaller one to "0 MB")
      const over = await send(`${half.url}${s.path}`, {
        body: bodyOfSize(s, 600 * 1024),
        headers: s.headers,
      });
      const e = s.expectError(over, "too_large", "600 KB body over a 0.5 MB limit");
      assert.match(e.message, /0\.5 MB|512 KB|524288 bytes/, e.message);
    });

    test("deeply nested JSON is a 400, not a hang or a 500", async () => {
      // 10 000 levels in a tool's schema: 20 KB of JSON that recursion-based code cannot stringify
      const deep = "[".repeat(10_000) + "]".repeat(10_000);
      const tools =
        s.name === "anthropic"
          ? `[{"name":"t","input_schema":{"type":"object","x":${deep}}}]`
          : `[{"type":"function","function":{"name":"t","parameters":{"type":"object","x":${deep}}}}]`;
      const body = JSON.stringify(s.valid()).replace(/}$/, `,"tools":${tools}}`);
      const paths = s.name === "anthropic" ? [s.path, "/v1/messages/count_tokens"] : [s.path];
      const problems: string[] = [];
      for (const path of paths) {
        try {
          // the answer is immediate; a gateway that never answers fails here after 2 s
          const a = await send(`${gw.url}${path}`, { body, headers: s.headers, timeoutMs: 2000 });
          s.expectError(a, "invalid", `${path} with a 10 000-level tool schema`);
        } catch (e) {
          const err = e as Error;
          problems.push(
            err.name === "TimeoutError" ? `${path}: no answer within 2 s` : err.message.split("\n")[0]!,
          );
        }
      }
      assert.deepEqual(problems, [], "every path answers a 400");
      // and the gateway still answers
      assert.equal((await post(s.valid())).status, 200);
    });

    test("an unknown route is a 404 in the dialect", async () => {
      const routes =
        s.name === "anthropic"
          ? [
              { method: "POST", path: "/v1/messages/batches" },
              { method: "GET", path: "/v1/messages" },
              { method: "POST", path: "/v1/complete" },
              { method: "GET", path: "/v1/nothing-here" },
            ]
          : [
              { method: "POST", path: "/v1/completions" },
              { method: "GET", path: "/v1/chat/completions" },
              { method: "POST", path: "/v1/embeddings" },
              { method: "GET", path: "/v1/nothing-here" },
            ];
      for (const r of routes) {
        const a = await send(`${gw.url}${r.path}`, {
          method: r.method,
          headers: s.headers,
          ...(r.method === "POST" ? { body: JSON.stringify(s.valid()) } : {}),
        });
        const e = s.expectError(a, "not_found", `${r.method} ${r.path}`);
        assert.ok(e.message.includes(r.path), `the message names the route: ${e.message}`);
      }
    });

    if (s.name === "openai") {
      test("an unknown route's 404 does not claim code model_not_found", async () => {
        const a = await send(`${gw.url}/v1/embeddings`, {
          body: JSON.stringify({ model: "test-model", input: "x" }),
        });
        const e = s.expectError(a, "not_found", "POST /v1/embeddings");
        // OpenAI answers an unknown URL with code null; model_not_found sends clients looking for a model.
        assert.equal(e.code, null, `code of a route 404: ${JSON.stringify(e)}`);
        assert.equal(e.param, null);
      });

      test("max_tokens is optional on the OpenAI surface", async () => {
        fake.setReply({ text: "Hi." });
        const a = await post(s.valid());
        assert.equal(a.status, 200, a.text);
      });
    } else {
      test("count_tokens answers errors in the Anthropic dialect", async () => {
        const url = `${gw.url}/v1/messages/count_tokens`;
        const ok = await send(url, {
          body: JSON.stringify({ model: "test-model", messages: [{ role: "user", content: "Hi" }] }),
        });
        assert.equal(ok.status, 200, ok.text);
        assert.equal(typeof JSON.parse(ok.text).input_tokens, "number");
        s.expectError(await send(url, { body: "{nope" }), "invalid", "count_tokens malformed");
        s.expectError(await send(url, { body: "[1,2]" }), "invalid", "count_tokens array");
        s.expectError(
          await send(url, { body: JSON.stringify({ model: "test-model", messages: "x" }) }),
          "invalid",
          "count_tokens wrong type",
        );
        const e = s.expectError(
          await send(url, {
            body: JSON.stringify({ model: "ghost-model", messages: [{ role: "user", content: "Hi" }] }),
          }),
          "not_found",
          "count_tokens unknown model",
        );
        assert.match(e.message, /ghost-model/);
      });
    }
  });

  describe(`${s.name} surface: master key`, () => {
    const postKeyed = (headers: Record<string, string>, path = s.path) =>
      send(`${keyed.url}${path}`, { body: JSON.stringify(s.valid()), headers: { ...s.headers, ...headers } });

    test("a missing key is a 401", async () => {
      const e = s.expectError(await postKeyed({}), "auth", "no key");
      assert.match(e.message, /key/i);
    });

    test("a wrong key is a 401, as x-api-key or as a Bearer token", async () => {
      s.expectError(await postKeyed({ "x-api-key": "sk-wrong" }), "auth", "wrong x-api-key");
      s.expectError(await postKeyed({ authorization: "Bearer sk-wrong" }), "auth", "wrong bearer");
      s.expectError(await postKeyed({ authorization: `Basic ${MASTER_KEY}` }), "auth", "not a bearer");
      s.expectError(await postKeyed({ "x-api-key": `${MASTER_KEY}x` }), "auth", "key with a suffix");
    });

    test("the right key is accepted as x-api-key and as Authorization: Bearer", async () => {
      fake.setReply({ text: "Hi." });
      const right: Array<Record<string, string>> = [
        { "x-api-key": MASTER_KEY },
        { authorization: `Bearer ${MASTER_KEY}` },
      ];
      for (const headers of right) {
        const a = await postKeyed(headers);
        assert.equal(a.status, 200, `${JSON.stringify(headers)}: ${a.text}`);
      }
    });

    test("the key is checked before the body and the route", async () => {
      s.expectError(await postKeyed({}, "/v1/unknown-route"), "auth", "unknown route without a key");
      const bad = await send(`${keyed.url}${s.path}`, { body: "{not json", headers: s.headers });
      s.expectError(bad, "auth", "malformed body without a key");
      const models = await send(`${keyed.url}/v1/models`, { method: "GET", headers: s.headers });
      s.expectError(models, "auth", "GET /v1/models without a key");
      const health = await send(`${keyed.url}/health`, { method: "GET" });
      assert.equal(health.status, 200, "/health needs no key");
    });
  });

  describe(`${s.name} surface: failing upstream`, () => {
    const withFault = async (reply: ScriptedReply, body: Record<string, unknown>) => {
      fake.setReply(reply);
      try {
        return await post(body);
      } finally {
        fake.setReply({ text: "Hi." });
      }
    };

    for (const stream of [false, true]) {
      test(`upstream 500 is a 500 naming the backend (stream ${stream})`, async () => {
        const a = await withFault({ fault: { kind: "status", status: 500 } }, { ...s.valid(), stream });
        const e = s.expectError(a, "api", "upstream 500");
        assert.ok(e.message.includes(BACKEND), `names the backend: ${e.message}`);
        assert.match(e.message, /500/);
      });

      test(`upstream 503 is an overload (stream ${stream})`, async () => {
        const a = await withFault({ fault: { kind: "status", status: 503 } }, { ...s.valid(), stream });
        const e = s.expectError(a, "overloaded", "upstream 503");
        assert.ok(e.message.includes(BACKEND), `names the backend: ${e.message}`);
      });

      test(`a backend that refuses connections is a 503 naming it (stream ${stream})`, async () => {
        const a = await send(`${down.url}${s.path}`, {
          body: JSON.stringify({ ...s.valid(), stream }),
          headers: s.headers,
        });
        const e = s.expectError(a, "unavailable", "connection refused");
        assert.ok(e.message.includes(BACKEND), `names the backend: ${e.message}`);
        assert.match(e.message, /connection refused/);
      });

      test(`a connection reset before any byte is a 503 (stream ${stream})`, async () => {
        const a = await withFault({ fault: { kind: "resetBeforeHeaders" } }, { ...s.valid(), stream });
        const e = s.expectError(a, "unavailable", "reset before headers");
        assert.ok(e.message.includes(BACKEND), `names the backend: ${e.message}`);
      });
    }

    test("an upstream that breaks off mid-stream gives an in-stream error event", async () => {
      const a = await withFault(
        {
          text: "The quick brown fox jumps over the lazy dog. ".repeat(8),
          fault: { kind: "resetAfterChunks", chunks: 5 },
        },
        { ...s.valid(), stream: true },
      );
      assert.equal(a.status, 200, "the stream had started");
      assert.match(a.contentType, /^text\/event-stream/);
      const events = parseSse(a.text);
      const last = events.at(-1)!;
      if (s.name === "anthropic") {
        assert.equal(events[0]?.event, "message_start");
        assert.ok(
          events.some((e) => e.event === "content_block_delta"),
          "some text arrived first",
        );
        assert.equal(last.event, "error");
        assert.deepEqual(Object.keys(last.data).sort(), ["error", "type"]);
        assert.equal(last.data.type, "error");
        assert.equal(last.data.error.type, "api_error");
        assert.ok(last.data.error.message.includes(BACKEND), last.data.error.message);
        assert.ok(!events.some((e) => e.event === "message_stop"), "no message_stop after a failure");
      } else {
        assert.equal(events[0]?.data.object, "chat.completion.chunk");
        assert.ok(
          events.some((e) => e.data?.choices?.[0]?.delta?.content),
          "some text arrived first",
        );
        assert.deepEqual(Object.keys(last.data), ["error"]);
        assert.equal(last.data.error.type, "server_error");
        assert.ok(last.data.error.message.includes(BACKEND), last.data.error.message);
        assert.ok(!events.some((e) => e.data === "[DONE]"), "no [DONE] after a failure");
      }
    });

    test("an upstream that breaks off a non-streamed answer is a 5xx", async () => {
      const a = await withFault(
        {
          text: "The quick brown fox jumps over the lazy dog. ".repeat(8),
          fault: { kind: "resetAfterChunks", chunks: 5 },
        },
        s.valid(),
      );
      const e = s.expectError(a, "api", "mid-answer reset");
      assert.ok(e.message.includes(BACKEND), e.message);
    });

    test("the gateway still serves normally afterwards", async () => {
      fake.setReply({ text: "Still here." });
      const a = await post(s.valid());
      assert.equal(a.status, 200, a.text);
      assert.match(a.text, /Still here\./);
    });
  });
}

/**
 * An OpenAI-compatible backend on a raw socket that closes a kept-alive connection just as the next request
 * arrives on it (as a server whose keep-alive timeout fires at that moment does): the second request on any
 * connection is answered with a reset, before any byte. Fresh connections are answered normally.
 */
async function startStaleConnectionBackend(): Promise<{
  url: string;
  resets: () => number;
  close(): Promise<void>;
}> {
  const sse = [
    {
      choices: [
        { index: 0, delta: { role: "assistant", content: "Fresh connection." }, finish_reason: null },
      ],
    },
    { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
  ]
    .map(
      (c) =>
        `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 0, model: "m", ...c })}\n\n`,
    )
    .join("")
    .concat("data: [DONE]\n\n");
  let resets = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let requests = 0;
    let buf = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length:\s*(\d+)/i.exec(buf.subarray(0, end).toString())?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      buf = buf.subarray(end + 4 + length);
      requests++;
      if (requests > 1) {
        resets++;
        socket.resetAndDestroy();
        return;
      }
      socket.write(
        `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: ${Buffer.byteLength(sse)}\r\n` +
          `connection: keep-alive\r\n\r\n${sse}`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    resets: () => resets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("backend connections", () => {
  test("a kept-alive backend connection that the backend closed is retried on a fresh one, not a 500", async () => {
    const backend = await startStaleConnectionBackend();
    const stale = await startGateway(config(backend.url), { discover: false });
    try {
      const problems: string[] = [];
      for (const s of SURFACES) {
        for (const stream of [false, true]) {
          // the first request opens a connection that goes back to the pool; the next one reuses it
          for (let i = 0; i < 2; i++) {
            const a = await send(`${stale.url}${s.path}`, {
              body: JSON.stringify({ ...s.valid(), stream }),
              headers: s.headers,
            });
            if (a.status !== 200 || !a.text.includes("Fresh connection."))
              problems.push(
                `${s.name} stream=${stream} request ${i + 1}: ${a.status} ${a.text.slice(0, 200)}`,
              );
          }
        }
      }
      assert.ok(backend.resets() > 0, "the gateway reused a pooled connection (the scenario happened)");
      // Node's http docs: a request on a reused socket that fails with ECONNRESET before any response byte
      // went nowhere — retry it (req.reusedSocket). Anything else turns a routine keep-alive race into a 500.
      assert.deepEqual(problems, [], "every request is answered from a fresh connection");
    } finally {
      await stale.close();
      await backend.close();
    }
  });
});

describe("Anthropic SDK errors", () => {
  let client: Anthropic;
  before(() => {
    client = new Anthropic({ baseURL: gw.url, apiKey: "unused", maxRetries: 0, timeout: TIMEOUT_MS });
  });
  const params = {
    model: "test-model",
    max_tokens: 64,
    messages: [{ role: "user" as const, content: "Hello" }],
  };

  test("an unknown model raises NotFoundError", async () => {
    await assert.rejects(client.messages.create({ ...params, model: "ghost-model" }), (e: unknown) => {
      assert.ok(e instanceof Anthropic.NotFoundError, String(e));
      assert.equal(e.status, 404);
      assert.equal((e.error as any).type, "error");
      assert.equal((e.error as any).error.type, "not_found_error");
      assert.match((e.error as any).error.message, /ghost-model/);
      return true;
    });
  });

  test("a wrong key raises AuthenticationError", async () => {
    const bad = new Anthropic({ baseURL: keyed.url, apiKey: "sk-wrong", maxRetries: 0, timeout: TIMEOUT_MS });
    await assert.rejects(bad.messages.create(params), (e: unknown) => {
      assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
      assert.equal(e.status, 401);
      assert.deepEqual(e.error, {
        type: "error",
        error: { type: "authentication_error", message: "invalid API key" },
      });
      return true;
    });
    const good = new Anthropic({
      baseURL: keyed.url,
      apiKey: MASTER_KEY,
      maxRetries: 0,
      timeout: TIMEOUT_MS,
    });
    fake.setReply({ text: "Hi." });
    assert.equal((await good.messages.create(params)).type, "message");
  });

  test("a bad request raises BadRequestError", async () => {
    const bad = { ...params, messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] } as any;
    await assert.rejects(client.messages.create(bad), (e: unknown) => {
      assert.ok(e instanceof Anthropic.BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.equal((e.error as any).error.type, "invalid_request_error");
      assert.match((e.error as any).error.message, /messages\.0\.content\.0\.text/);
      return true;
    });
    await assert.rejects(client.messages.create({ ...params, max_tokens: -1 }), Anthropic.BadRequestError);
    await assert.rejects(
      client.messages.countTokens({ model: "test-model", messages: "x" as any }),
      Anthropic.BadRequestError,
    );
  });

  test("an overloaded upstream raises a 529 InternalServerError with overloaded_error", async () => {
    fake.setReply({ fault: { kind: "status", status: 503 } });
    try {
      await assert.rejects(client.messages.create(params), (e: unknown) => {
        assert.ok(e instanceof Anthropic.InternalServerError, String(e));
        assert.equal(e.status, 529);
        assert.equal((e.error as any).error.type, "overloaded_error");
        assert.ok((e.error as any).error.message.includes(BACKEND));
        return true;
      });
    } finally {
      fake.setReply({ text: "Hi." });
    }
  });

  test("an upstream failing mid-stream raises APIError while iterating", async () => {
    fake.setReply({ text: "abcdefgh".repeat(40), fault: { kind: "resetAfterChunks", chunks: 5 } });
    try {
      const stream = await client.messages.create({ ...params, stream: true });
      const seen: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const ev of stream) seen.push(ev.type);
        })(),
        (e: unknown) => {
          assert.ok(e instanceof Anthropic.APIError, String(e));
          assert.equal((e.error as any)?.error?.type, "api_error");
          assert.ok(e.message.includes(BACKEND), e.message);
          return true;
        },
      );
      assert.equal(seen[0], "message_start");
      assert.ok(seen.includes("content_block_delta"));
      // the stream helper rejects too
      await assert.rejects(client.messages.stream(params).finalMessage(), Anthropic.APIError);
    } finally {
      fake.setReply({ text: "Hi." });
    }
  });
});

describe("OpenAI SDK errors", () => {
  let client: OpenAI;
  before(() => {
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: TIMEOUT_MS });
  });
  const params = { model: "test-model", messages: [{ role: "user" as const, content: "Hello" }] };

  test("an unknown model raises NotFoundError", async () => {
    await assert.rejects(
      client.chat.completions.create({ ...params, model: "ghost-model" }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError, String(e));
        assert.equal(e.status, 404);
        assert.equal(e.code, "model_not_found");
        assert.equal(e.param, "model");
        assert.equal(e.type, "invalid_request_error");
        assert.match((e.error as any).message, /ghost-model/);
        return true;
      },
    );
  });

  test("a wrong key raises AuthenticationError", async () => {
    const bad = new OpenAI({
      baseURL: `${keyed.url}/v1`,
      apiKey: "sk-wrong",
      maxRetries: 0,
      timeout: TIMEOUT_MS,
    });
    await assert.rejects(bad.chat.completions.create(params), (e: unknown) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
      assert.equal(e.status, 401);
      assert.equal(e.code, "invalid_api_key");
      assert.deepEqual(e.error, {
        message: "invalid API key",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      });
      return true;
    });
    await assert.rejects(bad.models.list(), OpenAI.AuthenticationError);
    const good = new OpenAI({
      baseURL: `${keyed.url}/v1`,
      apiKey: MASTER_KEY,
      maxRetries: 0,
      timeout: TIMEOUT_MS,
    });
    fake.setReply({ text: "Hi." });
    assert.equal((await good.chat.completions.create(params)).object, "chat.completion");
  });

  test("a bad request raises BadRequestError", async () => {
    const bad = { ...params, messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] } as any;
    await assert.rejects(client.chat.completions.create(bad), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.equal(e.type, "invalid_request_error");
      assert.equal(e.param, "messages.0.content.0.text");
      return true;
    });
    await assert.rejects(client.chat.completions.create({ ...params, messages: [] }), OpenAI.BadRequestError);
  });

  test("an overloaded upstream raises a 503 InternalServerError", async () => {
    fake.setReply({ fault: { kind: "status", status: 503 } });
    try {
      await assert.rejects(client.chat.completions.create(params), (e: unknown) => {
        assert.ok(e instanceof OpenAI.InternalServerError, String(e));
        assert.equal(e.status, 503);
        assert.equal(e.code, "overloaded");
        assert.ok(e.message.includes(BACKEND), e.message);
        return true;
      });
    } finally {
      fake.setReply({ text: "Hi." });
    }
  });

  test("an upstream failing mid-stream raises APIError while iterating", async () => {
    fake.setReply({ text: "abcdefgh".repeat(40), fault: { kind: "resetAfterChunks", chunks: 5 } });
    try {
      const stream = await client.chat.completions.create({ ...params, stream: true });
      let text = "";
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
        })(),
        (e: unknown) => {
          assert.ok(e instanceof OpenAI.APIError, String(e));
          assert.equal(e.type, "server_error");
          assert.ok(e.message.includes(BACKEND), e.message);
          return true;
        },
      );
      assert.ok(text.length > 0, "text arrived before the failure");
      await assert.rejects(client.chat.completions.stream(params).finalChatCompletion(), OpenAI.APIError);
    } finally {
      fake.setReply({ text: "Hi." });
    }
  });
});
