/**
 * The request path's shortcuts give what the plain way gives:
 * - the upstream body written as bytes (`encodeChatBody`, long strings and tool definitions kept from earlier
 *   requests) is byte for byte `JSON.stringify(encodeChatRequest(...))`, on real and generated requests, with the
 *   cache cold, warm and overflowing;
 * - the surfaces' hand-written check for well-formed bodies decodes exactly what zod decodes, and anything it does
 *   not take goes to zod, which answers as before (mutations of real requests, both dialects);
 * - the body is read whole however it arrives (one chunk, many, with or without content-length, more than it said);
 * - a body that shares its history with earlier ones (through the parse cache) decodes and encodes as one parsed afresh,
 *   and pooled upstream bodies are never written over while a request still sends them.
 * Run: node --import tsx --test test/server/request-path.test.ts
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
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
import { encodeChatBody, encodeChatRequest } from "../../src/backends/openai-compat/encode.js";
import { CAPS } from "../../src/backends/openai-compat/index.js";
import type { WireCaps } from "../../src/ir/contract.js";
import { setFastPaths } from "../../src/fast-paths.js";
import { deepFreeze } from "../../src/ir/frozen.js";
import type { Message, Part, Request, Tool } from "../../src/ir/types.js";
import type { ModelProfile } from "../../src/ir/contract.js";
import { nestingDepth } from "../../src/server/body.js";
import { BodyParser } from "../../src/server/parse-cache.js";
import { normalize } from "../../src/stages/normalize.js";
import { decodeAnthropicRequest } from "../../src/surfaces/anthropic/decode.js";
import { decodeOpenAIRequest } from "../../src/surfaces/openai/decode.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { prng as rng } from "../fixtures/tool-corpus.js";
import { oneBackend, stageContext, startGateway } from "../helpers.js";

const FULL: WireCaps = CAPS.generic;
const TEXT_ONLY: WireCaps = { ...FULL, tools: false, stringContentOnly: true, jsonSchema: false };

function profileOf(extra: Partial<ModelProfile> = {}): ModelProfile {
  return { alias: "m", model: "served-model", dropParams: true, defaults: {}, ...extra } as ModelProfile;
}

function sameBytes(req: Request, profile: ModelProfile, caps: WireCaps, streamUsage = true): void {
  const expected = Buffer.from(JSON.stringify(encodeChatRequest(req, profile, caps, streamUsage)));
  const got = encodeChatBody(req, profile, caps, streamUsage);
  if (!got.equals(expected)) {
    let i = 0;
    while (i < got.length && got[i] === expected[i]) i++;
    assert.fail(
      `bodies differ at byte ${i}:\n  want …${expected.subarray(Math.max(0, i - 60), i + 60)}\n  got  …${got.subarray(Math.max(0, i - 60), i + 60)}`,
    );
  }
}

const ODD = [
  "",
  "plain",
  'quote " and \\ backslash',
  "line\nbreak\ttab\r",
  "ctrl \u0001\u001f",
  "é ü 漢字 🎉",
  "lone \ud800 x",
  "\u2028\u2029",
];

function text(r: () => number): string {
  const base = ODD[Math.floor(r() * ODD.length)]!;
  // long enough, now and then, to go through the cache
  return r() < 0.4 ? base.repeat(1 + Math.floor((r() * 2 * LONG_STRING) / Math.max(1, base.length))) : base;
}

function part(r: () => number): Part {
  const k = r();
  if (k < 0.35) return { type: "text", text: text(r) };
  if (k < 0.45)
    return r() < 0.5
      ? {
          type: "image",
          source: { kind: "base64", mediaType: "image/png", data: "QUJD".repeat(1 + Math.floor(r() * 40)) },
        }
      : { type: "image", source: { kind: "url", url: `https://x.test/${text(r)}` } };
  if (k < 0.65)
    return {
      type: "toolCall",
      id: `call_${Math.floor(r() * 1e6)}`,
      name: "tool_a",
      input: { q: text(r), n: 3, deep: { a: [1, null, true] } },
    };
  if (k < 0.9) {
    const p: Part = {
      type: "toolResult",
      toolCallId: `call_${Math.floor(r() * 1e6)}`,
      content: [
        { type: "text", text: text(r) },
        ...(r() < 0.2 ? [{ type: "image" as const, source: { kind: "url" as const, url: "u" } }] : []),
      ],
    };
    if (r() < 0.3) p.isError = true;
    return p;
  }
  return { type: "thinking", text: text(r) };
}

function request(r: () => number, tools: Tool[]): Request {
  const messages: Message[] = [];
  const n = Math.floor(r() * 12);
  for (let i = 0; i < n; i++) {
    const role = (["user", "assistant", "system"] as const)[Math.floor(r() * 3)]!;
    messages.push({ role, parts: Array.from({ length: Math.floor(r() * 4) }, () => part(r)) });
  }
  const req: Request = {
    model: "m",
    system: r() < 0.7 ? text(r) : "",
    messages,
    tools: r() < 0.6 ? tools : [],
    toolChoice: [
      { type: "auto" as const },
      { type: "any" as const },
      { type: "none" as const },
      { type: "tool" as const, name: "tool_a" },
    ][Math.floor(r() * 4)]!,
    limits: r() < 0.5 ? { maxOutputTokens: 100 } : {},
    sampling: r() < 0.5 ? { temperature: 0.5, stop: ["x"], seed: 1, topK: 3 } : {},
    thinking: {},
    stream: true,
    metadata: {},
    ignored: [],
  };
  if (r() < 0.3) req.parallelToolCalls = false;
  if (r() < 0.2) req.constrain = { schema: { type: "object", properties: { a: { type: "string" } } } };
  return req;
}

const TOOLS: Tool[] = [
  {
    name: "tool_a",
    description: "does a".repeat(60),
    inputSchema: { type: "object", properties: { q: { type: "string" } }, required: ["q"] },
  },
  { name: "tool_b", inputSchema: { type: "object", properties: { n: { type: "integer", minimum: 0 } } } },
];

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

// --- decoding: the hand-written check against zod --------------------------------------------------------------

function fixture(file: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/openclaw/${file}`, import.meta.url), "utf8"));
}

const VALUES: unknown[] = [
  null,
  0,
  -1,
  1.5,
  2 ** 53,
  "",
  "x",
  "user",
  "assistant",
  "system",
  "tool",
  "function",
  "developer",
  "text",
  "image",
  "tool_use",
  "tool_result",
  "thinking",
  "redacted_thinking",
  "base64",
  "url",
  "auto",
  "any",
  "none",
  "required",
  "function",
  true,
  false,
  [],
  ["a"],
  {},
  { type: "text" },
  { type: "text", text: "q" },
  { name: "n" },
];

function mutate(base: unknown, r: () => number): unknown {
  const v = structuredClone(base) as Record<string, unknown>;
  for (let n = 1 + Math.floor(r() * 3); n > 0; n--) {
    const path: Array<string | number> = [];
    let o: any = v;
    // walk down a random way, stopping at random
    while (o && typeof o === "object" && r() < 0.8) {
      const keys = Object.keys(o);
      if (!keys.length) break;
      const k = keys[Math.floor(r() * keys.length)]!;
      if (!o[k] || typeof o[k] !== "object") {
        path.push(k);
        break;
      }
      path.push(k);
      o = o[k];
    }
    if (!path.length) continue;
    let parent: any = v;
    for (const k of path.slice(0, -1)) parent = parent[k];
    const k = path.at(-1)!;
    const x = r();
    if (x < 0.3) {
      if (Array.isArray(parent)) parent.splice(Number(k), 1);
      else delete parent[k];
    } else if (x < 0.9) parent[k] = structuredClone(VALUES[Math.floor(r() * VALUES.length)]);
    else if (parent && typeof parent === "object" && !Array.isArray(parent))
      parent[["type", "text", "content", "role", "input", "name", "id"][Math.floor(r() * 7)]!] =
        structuredClone(VALUES[Math.floor(r() * VALUES.length)]);
  }
  return v;
}

function outcome(decode: () => unknown): unknown {
  try {
    return { ok: decode() };
  } catch (e) {
    const err = e as { name?: string; message?: string; kind?: string };
    return { err: `${err.name}:${err.kind}:${err.message}` };
  }
}

describe("decoding: a well-formed body without zod, the same result", () => {
  // a test of the fast path itself: on, whichever way the suite runs (CLAWBRIDGE_FAST_PATHS)
  let restore: () => void;
  before(() => {
    restore = setFastPaths("1");
  });
  after(() => restore());
  const cases: Array<[string, (b: unknown, viaSchema?: boolean) => unknown, unknown[]]> = [
    [
      "anthropic",
      decodeAnthropicRequest,
      [
        fixture("anthropic-messages.custom.after-tool-result.json"),
        fixture("anthropic-messages.custom.turn1.json"),
        openclawAnthropic(3),
      ],
    ],
    [
      "openai",
      decodeOpenAIRequest,
      [
        fixture("openai-completions.after-tool-result.json"),
        fixture("openai-completions.turn1.json"),
        openclawOpenAI(3),
      ],
    ],
  ];
  for (const [name, decode, bases] of cases) {
    test(`${name}: 3000 mutations of real requests decode (or fail) as through zod`, () => {
      const r = rng(name.length * 7919);
      let failed = 0;
      for (let i = 0; i < 3000; i++) {
        const body = i < bases.length ? bases[i] : mutate(bases[Math.floor(r() * bases.length)], r);
        const plain = outcome(() => decode(structuredClone(body)));
        const zod = outcome(() => decode(structuredClone(body), true));
        assert.deepEqual(plain, zod, JSON.stringify(body).slice(0, 400));
        if ("err" in (zod as object)) failed++;
      }
      assert.ok(failed > 300 && failed < 2700, `a fair share of the mutations are refused: ${failed}`);
    });
  }
});

// --- parsing: what a body shares with the last ones is taken as it was parsed -------------------------------------

describe("parsing a body that repeats an earlier one", () => {
  // a test of the fast path itself: on, whichever way the suite runs (CLAWBRIDGE_FAST_PATHS)
  let restore: () => void;
  before(() => {
    restore = setFastPaths("1");
  });
  after(() => restore());
  /** The parser's result is JSON.parse's: the same values, the same keys in the same order, the same error. */
  function check(parser: BodyParser, text: string): void {
    const outcomeOf = (f: () => unknown) => {
      try {
        const v = f();
        return { v, keys: v && typeof v === "object" ? Object.keys(v) : [] };
      } catch (e) {
        return { err: (e as Error).message };
      }
    };
    assert.deepEqual(
      outcomeOf(() => parser.parse(Buffer.from(text))),
      outcomeOf(() => JSON.parse(text)),
      text.slice(0, 300),
    );
  }

  test("a conversation that grows turn by turn is parsed from where it changed", () => {
    const parser = new BodyParser();
    for (const base of [openclawAnthropic(5), openclawOpenAI(5)] as Array<Record<string, unknown[]>>) {
      const messages = base.messages!;
      for (let n = 4; n <= messages.length; n += 2) {
        check(parser, JSON.stringify({ ...base, messages: messages.slice(0, n) }));
        check(parser, JSON.stringify({ ...base, messages: messages.slice(0, n) }, null, 2));
      }
      for (let i = 0; i < 3; i++) check(parser, JSON.stringify(base));
    }
    assert.ok(parser.stats.reused > 20, JSON.stringify(parser.stats));
    assert.ok(parser.stats.reusedBytes > 20 * 100_000, JSON.stringify(parser.stats));
  });

  test("what JSON.parse refuses, or would read differently, is parsed whole", () => {
    const r = rng(99);
    const parser = new BodyParser();
    const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
    const edits: Array<(t: string) => string> = [
      (t) => t.slice(0, Math.floor(r() * t.length)),
      (t) => {
        const i = Math.floor(r() * t.length);
        return t.slice(0, i) + pick([",", "}", "]", '"', "x", "\\", ",}", ",]", " ", "é"]) + t.slice(i);
      },
      (t) => t.replace(/,"messages":\[/, ',"messages":[],"messages":['),
      (t) => t.replace(/}\]}$/, "},]}"),
      (t) => t.replace(/}\]}$/, "}],}"),
      (t) => t.replace(/"model"/, '"__proto__":{"x":1},"model"'),
      (t) => t.replace(/"model"/, '"\\u0000clawbridge:tail":1,"model"'),
      (t) => t.replace(/"stream":true/, '"stream":true,"stream":false'),
      (t) => t.replace(/"messages":\[/, '"messages":[1,"a",true,null,[],{},'),
      (t) => t.replace(/"model":"bench-model"/, '"model":"bench-model","1":2,"0":{"messages":[1,2]}'),
      (t) => t.replace(/Now summarise/, "Now \\u00e9\\ud83c\\udf89 résumé 漢字 summarise"),
      (t) => `${t}  `,
      (t) => `${t}x`,
    ];
    for (let i = 0; i < 1500; i++) {
      const base = pick([openclawAnthropic(5), openclawOpenAI(5)]) as Record<string, unknown[]>;
      const body = {
        ...base,
        messages: base.messages!.slice(0, 1 + Math.floor(r() * base.messages!.length)),
      };
      let t = JSON.stringify(body, null, pick([0, 0, 1]));
      if (r() < 0.7) t = pick(edits)(t);
      check(parser, t);
    }
    assert.ok(parser.stats.reused > 100, JSON.stringify(parser.stats));
  });

  test("what is taken from an earlier body cannot be changed by a request", () => {
    const parser = new BodyParser();
    const text = JSON.stringify(openclawAnthropic(5));
    parser.parse(Buffer.from(text));
    const again = parser.parse(Buffer.from(text)) as {
      tools: Array<{ input_schema: Record<string, unknown> }>;
    };
    assert.equal(parser.stats.reused, 1);
    assert.throws(() => {
      again.tools[0]!.input_schema.type = "changed";
    }, TypeError);
    const third = parser.parse(Buffer.from(text)) as {
      tools: Array<{ input_schema: Record<string, unknown> }>;
    };
    assert.equal(third.tools[0]!.input_schema.type, "object");
  });
});

test("nestingDepth counts objects and arrays, and stops past its limit", () => {
  assert.equal(nestingDepth("x", 10), 0);
  assert.equal(nestingDepth({}, 10), 1);
  assert.equal(nestingDepth({ a: [1, { b: "s" }], c: [] }, 10), 3);
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  assert.equal(nestingDepth(deep, 128), 129);
});

// --- reading the body -------------------------------------------------------------------------------------------

describe("the request body is read whole however it comes", () => {
  test("one chunk, many chunks, no content-length, more than it said; the limit holds", async () => {
    const fake = await startOpenAICompatFake({ models: ["qwen"] });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "qwen", "\nserver: { body_limit_mb: 1 }"),
    );
    try {
      const body = Buffer.from(
        JSON.stringify({
          model: "nope",
          max_tokens: 5,
          messages: [{ role: "user", content: "é".repeat(70_000) }],
        }),
      );
      const send = (chunks: Buffer[], headers: Record<string, string | number>) =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = http.request(
            `${gw.url}/v1/messages`,
            { method: "POST", headers: { "content-type": "application/json", ...headers } },
            (res) => {
              let text = "";
              res.setEncoding("utf8");
              res.on("data", (c) => {
                text += c;
              });
              res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
            },
          );
          req.on("error", reject);
          (async () => {
            for (const c of chunks) {
              req.write(c);
              await new Promise((r) => setTimeout(r, 2));
            }
            req.end();
          })();
        });
      const pieces = (n: number) =>
        Array.from({ length: n }, (_, i) =>
          body.subarray(Math.floor((i * body.length) / n), Math.floor(((i + 1) * body.length) / n)),
        );
      for (const [chunks, headers] of [
        [[body], { "content-length": body.length }],
        [pieces(7), { "content-length": body.length }],
        [pieces(5), { "transfer-encoding": "chunked" }],
      ] as const) {
        const res = await send([...chunks], headers);
        // the body was read and decoded whole: the answer is about the model, not about the JSON
        assert.equal(res.status, 404, res.text);
        assert.match(res.text, /nope/);
      }
      const big = Buffer.from(
        JSON.stringify({
          model: "x",
          max_tokens: 5,
          messages: [{ role: "user", content: "a".repeat(1_100_000) }],
        }),
      );
      const tooBig = await send([big], { "transfer-encoding": "chunked" }).catch((e: Error) => ({
        status: 0,
        text: e.message,
      }));
      assert.ok(tooBig.status === 413 || tooBig.status === 0, `${tooBig.status}`);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

// --- a history kept from earlier turns: decoded and encoded as a fresh one ----------------------------------------

describe("the upstream request's head", () => {
  test("Host as the URL names it, the URL's credentials as Basic auth, the configured headers; theirs win", async () => {
    const fake = await startOpenAICompatFake({ models: ["qwen"] });
    const port = new URL(fake.url).port;
    const gw = await startGateway(`
backends:
  plain: { kind: openai-compat, url: "${fake.url}/v1", discover: false }
  creds:
    kind: openai-compat
    url: "http://us%40er:p%3Ass@localhost:${port}/v1"
    headers: { x-team: blue }
    discover: false
  own:
    kind: openai-compat
    url: "http://them:secret@127.0.0.1:${port}/v1"
    headers: { Authorization: "Bearer mine", Host: "models.internal", Content-Type: "application/json; charset=utf-8" }
    discover: false
models:
  a: { backend: plain, model: qwen }
  b: { backend: creds, model: qwen }
  c: { backend: own, model: qwen }
`);
    try {
      const heads: Array<Record<string, string | string[] | undefined>> = [];
      // "a" twice: a head worked out once is not changed by the request that used it
      for (const model of ["a", "b", "c", "a"]) {
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
        });
        assert.equal(res.status, 200, await res.clone().text());
        heads.push(fake.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.headers);
      }
      const [plain, creds, own, again] = heads as [
        (typeof heads)[0],
        (typeof heads)[0],
        (typeof heads)[0],
        (typeof heads)[0],
      ];
      assert.equal(plain.host, `127.0.0.1:${port}`);
      assert.equal(plain.authorization, undefined);
      assert.equal(plain["content-type"], "application/json");
      assert.equal(plain.accept, "text/event-stream");
      assert.deepEqual(again, plain);
      assert.match(String(plain["content-length"]), /^[1-9]\d*$/);
      assert.equal(plain["transfer-encoding"], undefined);
      assert.equal(creds.host, `localhost:${port}`);
      assert.equal(creds.authorization, `Basic ${Buffer.from("us@er:p:ss").toString("base64")}`);
      assert.equal(creds["x-team"], "blue");
      assert.equal(own.host, "models.internal");
      assert.equal(own.authorization, "Bearer mine");
      assert.equal(own["content-type"], "application/json; charset=utf-8");
      const raw = fake.requests.filter((r) => r.path === "/v1/chat/completions").map((r) => r.rawHeaders);
      assert.deepEqual(
        raw.map((h) => h?.filter((_, i) => i % 2 === 0).filter((k) => /^content-type$/i.test(k)).length),
        [1, 1, 1, 1],
        "one content-type each",
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("a conversation's history, shared with earlier bodies by the parse cache", () => {
  // a test of the fast path itself: on, whichever way the suite runs (CLAWBRIDGE_FAST_PATHS)
  let restore: () => void;
  before(() => {
    restore = setFastPaths("1");
  });
  after(() => restore());
  const dialects = [
    { name: "anthropic", decode: decodeAnthropicRequest, base: openclawAnthropic(3) },
    { name: "openai", decode: decodeOpenAIRequest, base: openclawOpenAI(3) },
  ] as const;

  for (const { name, decode, base } of dialects) {
    test(`${name}: mutated bodies through the parse cache decode, and encode (OpenAI-compatible, Ollama), as the same bodies parsed afresh`, () => {
      const r = rng(name.length * 104729);
      const parser = new BodyParser();
      let memoised = 0;
      for (let i = 0; i < 400; i++) {
        // a body that shares a prefix with the last ones, so that some of its messages are taken from them
        const body = i % 4 === 0 ? base : mutate(base, r);
        const text = JSON.stringify(body);
        const parsed = parser.parse(Buffer.from(text));
        const kept = outcome(() => decode(parsed));
        const fresh = outcome(() => decode(JSON.parse(text)));
        assert.deepEqual(kept, fresh, text.slice(0, 300));
        if (!("ok" in (kept as object))) continue;
        const req = (kept as { ok: Request }).ok;
        memoised += req.messages.filter((m) => Object.isFrozen(m)).length;
        const shaped = normalizeFor(req);
        sameBytes(shaped, profileOf(), i % 3 === 0 ? TEXT_ONLY : FULL);
        assert.deepEqual(
          encodeOllamaBody(shaped, profileOf()),
          Buffer.from(JSON.stringify(encodeOllamaChat(shaped, profileOf()))),
        );
      }
      assert.ok(memoised > 400 * 10, `turns found again: ${memoised}`);
    });
  }

  test("a kept tool result whose tool is named otherwise in this body gets this body's name", () => {
    // the same frozen objects in two bodies, as the parse cache would hand them out
    const result = frozen({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: "t1", content: "ok" }],
    });
    const useA = frozen({
      role: "assistant",
      content: [{ type: "tool_use", id: "t1", name: "read", input: {} }],
    });
    const useB = { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "write", input: {} }] };
    const body = (use: unknown, r: unknown) => ({
      model: "m",
      max_tokens: 10,
      messages: [{ role: "user", content: "go" }, use, r],
    });
    const nameOf = (req: Request) =>
      (req.messages[2]!.parts[0] as Extract<Part, { type: "toolResult" }>).toolName;
    const messages = [result, useA];
    assert.ok(messages.every((m) => Object.isFrozen(m)));
    assert.equal(nameOf(decodeAnthropicRequest(body(useA, result))), "read");
    assert.equal(nameOf(decodeAnthropicRequest(body(useB, result))), "write");
    assert.equal(nameOf(decodeAnthropicRequest(body(useA, result))), "read");
    const tool = frozen({ role: "tool", tool_call_id: "c1", content: "ok" });
    const call = (fn: string) => ({
      role: "assistant",
      content: null,
      tool_calls: [{ id: "c1", type: "function", function: { name: fn, arguments: "{}" } }],
    });
    const oai = (fn: string) =>
      decodeOpenAIRequest({
        model: "m",
        messages: [{ role: "user", content: "go" }, frozen(call(fn)), tool],
      });
    const toolName = (req: Request) =>
      (req.messages[2]!.parts[0] as Extract<Part, { type: "toolResult" }>).toolName;
    assert.equal(toolName(oai("read")), "read");
    assert.equal(toolName(oai("write")), "write");
    assert.equal(toolName(oai("read")), "read");
  });

  test("notes about what a kept turn holds are made again for every body", () => {
    const turn = frozen({
      role: "user",
      content: [{ type: "text", text: "hi", cache_control: { type: "ephemeral" } }],
    });
    for (let i = 0; i < 3; i++) {
      const req = decodeAnthropicRequest({ model: "m", max_tokens: 5, messages: [turn] });
      assert.deepEqual(req.ignored, ["cache_control"]);
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

function frozen<T>(v: T): T {
  assert.ok(deepFreeze(v) > 0);
  return v;
}

function normalizeFor(req: Request): Request {
  return normalize(req, stageContext(profileOf({ backend: { caps: FULL } } as Partial<ModelProfile>), req));
}
