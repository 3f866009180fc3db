/**
 * The upstream body writer (a fast path: src/backends/json-body.ts, `encodeChatBody`, `encodeOllamaBody`) gives
 * byte for byte what the simple way gives (`JSON.stringify(encodeChatRequest(...))`), on real and generated
 * requests, with its cache cold, warm and overflowing; pooled bodies are never written over while a request
 * still sends them.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openclawAnthropic, openclawOpenAI } from "../../bench/fixtures.js";
import {
  clearJsonCache,
  jsonBody,
  jsonCacheStats,
  LONG_STRING,
  RawJson,
  releaseBody,
} from "../../src/backends/json-body.js";
import { encodeOllamaBody, encodeOllamaChat } from "../../src/backends/ollama/encode.js";
import { setFastPaths } from "../../src/fast-paths.js";
import type { Request, Tool } from "../../src/ir/types.js";
import { BodyParser } from "../../src/server/parse-cache.js";
import { decodeAnthropicRequest } from "../../src/surfaces/anthropic/decode.js";
import { decodeOpenAIRequest } from "../../src/surfaces/openai/decode.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { prng as rng } from "../fixtures/tool-corpus.js";
import { oneBackend, startGateway } from "../helpers.js";
import { FULL, profileOf, request, sameBytes, TEXT_ONLY, TOOLS } from "../fixtures/requests.js";

describe("the upstream body, written as bytes", () => {
  // a test of the fast path itself: on, whichever way the suite runs (CLAWBRIDGE_FAST_PATHS)
  let restore: () => void;
  before(() => {
    restore = setFastPaths("1");
  });
  after(() => restore());
  test("jsonBody is Buffer.from(JSON.stringify(v)), cache cold and warm", () => {
    clearJsonCache();
    const long = `${"x".repeat(LONG_STRING)} é 漢 \ud800 "q" \\ \n`;
    const values: unknown[] = [
      null,
      0,
      -0,
      1.5e300,
      Number.NaN,
      true,
      "",
      long,
      [undefined, () => 1, Symbol("s"), long, [long, { long }]],
      {
        a: undefined,
        b: () => 1,
        c: Symbol("s"),
        d: new Date(0),
        e: { toJSON: () => long },
        "1": 1,
        z: 2,
        "0": 0,
        "é\n": long,
      },
      new RawJson([Buffer.from('{"raw":'), Buffer.from("1}")]),
    ];
    for (let round = 0; round < 3; round++)
      for (const v of values) {
        const want =
          v instanceof RawJson ? Buffer.from('{"raw":1}') : Buffer.from(JSON.stringify(v) ?? "null");
        assert.deepEqual(jsonBody(v), want, `${round}: ${String(JSON.stringify(v)).slice(0, 80)}`);
      }
    assert.ok(jsonCacheStats().hits > 0, "long strings found again");
  });

  test("encodeChatBody = JSON.stringify(encodeChatRequest(…)): the OpenClaw-sized requests, again and again", () => {
    clearJsonCache();
    const anthropic = decodeAnthropicRequest(openclawAnthropic(10));
    const openai = decodeOpenAIRequest(openclawOpenAI(10));
    for (let i = 0; i < 3; i++) {
      sameBytes(anthropic, profileOf(), FULL);
      sameBytes(openai, profileOf(), FULL, false);
      sameBytes(anthropic, profileOf(), TEXT_ONLY);
    }
    const before = jsonCacheStats().hits;
    sameBytes(decodeAnthropicRequest(openclawAnthropic(10)), profileOf(), FULL);
    assert.ok(jsonCacheStats().hits > before + 20, "a resent history is found again");
  });

  test("generated requests: every part type, tool choices, caps, extra_body, constrain", () => {
    const r = rng(20261121);
    for (let i = 0; i < 400; i++) {
      const extra = r() < 0.2 ? { extraBody: { stream: false, messages: "replaced", extra: { a: 1 } } } : {};
      sameBytes(request(r, TOOLS), profileOf(extra), r() < 0.7 ? FULL : TEXT_ONLY, r() < 0.5);
    }
  });

  test("Ollama: encodeOllamaBody = JSON.stringify(encodeOllamaChat(…))", () => {
    clearJsonCache();
    const r = rng(3);
    const reqs = [
      decodeAnthropicRequest(openclawAnthropic(10)),
      ...Array.from({ length: 200 }, () => request(r, TOOLS)),
    ];
    for (const req of [...reqs, ...reqs]) {
      const profile = profileOf(
        r() < 0.3 ? { numCtx: 8192, keepAlive: "5m", extraBody: { think: false } } : {},
      );
      assert.deepEqual(
        encodeOllamaBody(req, profile),
        Buffer.from(JSON.stringify(encodeOllamaChat(req, profile))),
      );
    }
  });

  test("a tool whose description, schema or key order changes is written anew", () => {
    clearJsonCache();
    const base = (): Request => ({ ...request(rng(1), TOOLS), tools: structuredClone(TOOLS) });
    sameBytes(base(), profileOf(), FULL);
    const changed = [
      (t: Tool[]) => {
        t[0]!.description = "other";
      },
      (t: Tool[]) => {
        (t[1]!.inputSchema.properties as { n: { minimum: number } }).n.minimum = 1;
      },
      (t: Tool[]) => {
        t[0]!.inputSchema = { required: ["q"], type: "object", properties: { q: { type: "string" } } };
      },
      (t: Tool[]) => {
        delete t[1]!.description;
        t[1]!.inputSchema = {};
      },
    ];
    for (const change of changed) {
      const req = base();
      change(req.tools);
      sameBytes(req, profileOf(), FULL);
      sameBytes(base(), profileOf(), FULL);
    }
  });

  test("bodies taken from earlier ones (frozen parts, found by identity) encode the same", () => {
    clearJsonCache();
    const parser = new BodyParser();
    const base = openclawAnthropic(5) as {
      tools: Array<{ input_schema: { properties: object } }>;
      messages: unknown[];
    };
    for (let n = 10; n <= base.messages.length; n += 5) {
      const body = structuredClone({ ...base, messages: base.messages.slice(0, n) });
      // halfway through, a tool's schema changes: it must be written anew, not taken by identity
      if (n > 30) body.tools[3]!.input_schema.properties = { changed: { type: "string" } };
      const req = decodeAnthropicRequest(parser.parse(Buffer.from(JSON.stringify(body))));
      sameBytes(req, profileOf(), FULL);
    }
    assert.ok(parser.stats.reused > 3, JSON.stringify(parser.stats));
  });

  test("more long strings than the cache keeps: still right", () => {
    clearJsonCache();
    const r = rng(7);
    for (let i = 0; i < 60; i++) {
      const req = request(r, TOOLS);
      req.system = `${i} ${"s".repeat(100_000)}`;
      sameBytes(req, profileOf(), FULL);
    }
  });
});

describe("upstream bodies from the pool", () => {
  // a test of the fast path itself: on, whichever way the suite runs (CLAWBRIDGE_FAST_PATHS)
  let restore: () => void;
  before(() => {
    restore = setFastPaths("1");
  });
  after(() => restore());
  test("a body given back is written over by the next; one not given back never is", () => {
    const a = jsonBody({ a: "x".repeat(1000) });
    const aText = a.toString();
    const b = jsonBody({ b: 1 });
    assert.notEqual(b.buffer, a.buffer, "a body still out is not reused");
    assert.equal(a.toString(), aText);
    releaseBody(b);
    const c = jsonBody({ c: [1, 2, 3] });
    assert.equal(c.buffer, b.buffer, "the buffer given back is reused");
    assert.equal(c.toString(), '{"c":[1,2,3]}');
    // given back twice, or a buffer the pool never lent: ignored
    releaseBody(c);
    releaseBody(c);
    releaseBody(Buffer.from("foreign"));
    const d = jsonBody({ d: 1 });
    const e = jsonBody({ e: 2 });
    assert.notEqual(d.buffer, e.buffer, "one buffer is not lent twice");
    assert.equal(`${d}${e}`, '{"d":1}{"e":2}');
    releaseBody(a);
    releaseBody(d);
    releaseBody(e);
  });

  test("as many buffers are kept as requests at once gave back, within 4 MiB", () => {
    // 40 requests at once: every buffer they give back is there for the next 40
    const first = Array.from({ length: 40 }, (_, i) => jsonBody({ i }));
    const lent = new Set(first.map((b) => b.buffer));
    assert.equal(lent.size, 40);
    for (const b of first) releaseBody(b);
    const next = Array.from({ length: 40 }, (_, i) => jsonBody({ i }));
    assert.equal(next.filter((b) => lent.has(b.buffer)).length, 40, "all reused, none allocated anew");
    for (const b of next) releaseBody(b);
    // ten large bodies: as many of their buffers are kept as fit in 4 MiB
    const big = Array.from({ length: 10 }, (_, i) => jsonBody({ i, pad: "x".repeat(300_000) }));
    const bigBuffers = new Set(big.map((b) => b.buffer));
    const size = big[0]!.buffer.byteLength;
    assert.ok(size > 512 * 1024 && size <= 1024 * 1024, `a large body's buffer: ${size} bytes`);
    for (const b of big) releaseBody(b);
    const after = Array.from({ length: 10 }, (_, i) => jsonBody({ i }));
    const fit = Math.floor((4 * 1024 * 1024) / size);
    assert.equal(after.filter((b) => bigBuffers.has(b.buffer)).length, fit, `${fit} of them kept`);
    for (const b of after) releaseBody(b);
  });

  test("concurrent OpenClaw-sized requests reach the server each with its own body, intact", async () => {
    const fake = await startOpenAICompatFake({ contextLength: 1_000_000, maxContextLength: 1_000_000 });
    const gw = await startGateway(oneBackend("openai-compat", `${fake.url}/v1`, "fake-model"));
    try {
      const base = openclawOpenAI(2) as { messages: Array<{ role: string; content: unknown }> };
      for (let round = 0; round < 3; round++) {
        const marks = Array.from({ length: 12 }, (_, i) => `mark-${round}-${i}-${"z".repeat(i * 997)}`);
        const answers = await Promise.all(
          marks.map(async (mark) => {
            const messages = [...base.messages.slice(0, -1), { role: "user", content: mark }];
            const res = await fetch(`${gw.url}/v1/chat/completions`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ ...base, model: "test-model", stream: false, messages }),
            });
            return res.status;
          }),
        );
        assert.deepEqual(
          answers,
          marks.map(() => 200),
        );
      }
      const chats = fake.requests.filter((q) => q.path.endsWith("/chat/completions"));
      assert.equal(chats.length, 36);
      const seen = new Set<string>();
      for (const q of chats) {
        assert.equal(typeof q.body, "object", "the server got valid JSON");
        const last = q.body.messages.at(-1).content as string;
        const m = /^mark-\d-(\d+)-(z*)$/.exec(last);
        assert.ok(m, last.slice(0, 80));
        assert.equal(m[2]!.length, Number(m[1]) * 997);
        assert.equal(q.body.messages.length, chats[0]!.body.messages.length);
        seen.add(last);
      }
      assert.equal(seen.size, 36, "every request's own body");
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
