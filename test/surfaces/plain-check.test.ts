/**
 * The surfaces' hand-written check for well-formed bodies (a fast path: src/surfaces/plain.ts) decodes exactly
 * what zod decodes, and anything it does not take goes to zod, which answers as before (mutations of real
 * requests, both dialects).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openclawAnthropic, openclawOpenAI } from "../../bench/fixtures.js";
import { setFastPaths } from "../../src/fast-paths.js";
import { decodeAnthropicRequest } from "../../src/surfaces/anthropic/decode.js";
import { decodeOpenAIRequest } from "../../src/surfaces/openai/decode.js";
import { prng as rng } from "../fixtures/tool-corpus.js";
import { fixture, mutate, outcome } from "../fixtures/requests.js";

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
