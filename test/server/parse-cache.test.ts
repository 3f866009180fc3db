/**
 * The parse cache (a fast path: src/server/parse-cache.ts): a body that repeats an earlier one parses as
 * JSON.parse would, what it takes from an earlier body cannot be changed, and a history shared with earlier
 * bodies decodes and encodes as the same body parsed afresh.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openclawAnthropic, openclawOpenAI } from "../../bench/fixtures.js";
import { encodeOllamaBody, encodeOllamaChat } from "../../src/backends/ollama/encode.js";
import { setFastPaths } from "../../src/fast-paths.js";
import type { Part, Request } from "../../src/ir/types.js";
import { BodyParser } from "../../src/server/parse-cache.js";
import { decodeAnthropicRequest } from "../../src/surfaces/anthropic/decode.js";
import { decodeOpenAIRequest } from "../../src/surfaces/openai/decode.js";
import { prng as rng } from "../fixtures/tool-corpus.js";
import {
  FULL,
  frozen,
  mutate,
  normalizeFor,
  outcome,
  profileOf,
  sameBytes,
  TEXT_ONLY,
} from "../fixtures/requests.js";

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
