// The stream decoders' fast path (JsonTemplate: a payload that differs from the last one only in
// its token's string is not parsed in full) held to the full parse, payload by payload; the readers
// (StringDecoder) held to TextDecoder and eventsource-parser as they were used before; and
// decodeResponse (the body's iterator loop written out) over real connections: batches, the pool,
// backpressure, errors, aborts, an early stop.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { AnthropicEventDecoder } from "../../src/backends/anthropic/decode.js";
import { createDispatcher, postJson } from "../../src/backends/http/client.js";
import { decodeResponse, splitterFor, type StreamDecoder } from "../../src/backends/http/framing.js";
import { type JsonPath, JsonTemplate } from "../../src/backends/json-template.js";
import { OllamaLineDecoder } from "../../src/backends/ollama/decode.js";
import { ChatChunkDecoder } from "../../src/backends/openai-compat/decode.js";
import { setFastPaths } from "../../src/fast-paths.js";
import { GatewayError } from "../../src/ir/errors.js";
import type { Event } from "../../src/ir/types.js";
import { prng } from "../fixtures/tool-corpus.js";

type Rng = () => number;
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

// --- payloads --------------------------------------------------------------------------------------

/** Token texts, as servers write them: raw or escaped, empty, quotes, controls, astral characters. */
const TOKEN_LITERALS = [
  '"The"',
  '" quick"',
  '""',
  '" "',
  '"\\n"',
  '"a\\"b"',
  '"\\\\"',
  '"\\\\\\""',
  '"\\u00e9t\\u00e9"',
  '"été"',
  '"😀"',
  '"\\ud83d\\ude00"',
  '"\\ud800"',
  '"\\udc00x"',
  '"\\u0000"',
  '"\\t\\r\\b\\f\\/"',
  '"\\u003cb\\u003e"',
  '"<b>"',
  '"{\\"a\\":1}"',
  '"}]}"',
  '"\\u"',
  '"\\x"',
  '"a\u0001b"',
  '"tab\there"',
  '"ok\u2028"',
  '"\ufeff"',
  '"',
  '"abc',
  '"a"b"',
  "null",
  "1",
  '["x"]',
];

/** OpenAI-compatible chunk shapes of real servers, `$` where the token's literal goes. */
const OPENAI_SHAPES = [
  // vLLM, LM Studio
  '{"id":"chatcmpl-x","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":$},"logprobs":null,"finish_reason":null}]}',
  // llama.cpp: choices first, created changing
  '{"choices":[{"finish_reason":null,"index":0,"delta":{"content":$}}],"created":1700000001,"id":"chatcmpl-y","model":"m","system_fingerprint":"b1-abc","object":"chat.completion.chunk"}',
  '{"choices":[{"finish_reason":null,"index":0,"delta":{"reasoning_content":$}}],"created":1700000001,"id":"chatcmpl-y","model":"m","object":"chat.completion.chunk"}',
  // Ollama's OpenAI endpoint
  '{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":$},"finish_reason":null}]}',
  // newer vLLM reasoning
  '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning":$},"logprobs":null,"finish_reason":null}]}',
  // both, one null
  '{"id":"c","choices":[{"index":0,"delta":{"content":null,"reasoning_content":$}}]}',
  // tool-call argument fragments
  '{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":$}}]},"finish_reason":null}]}',
  '{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"read","arguments":$}}]}}]}',
  // whitespace, pretty-printed
  '{ "id" : "c" , "choices" : [ { "index" : 0 , "delta" : { "content" : $ } } ] }\n',
  // repeated members: the last one wins
  '{"id":"c","choices":[{"index":0,"delta":{"content":$,"content":"shadow"}}]}',
  '{"id":"c","choices":[{"index":0,"delta":{"content":"shadow","content":$}}]}',
  '{"id":"c","choices":[{"index":0,"delta":{"content":$}}],"choices":[{"index":0,"delta":{"content":"b"}}]}',
  '{"id":"c","choices":[{"index":0,"delta":{"content":$}}],"choices":{"0":{"delta":{"content":"b"}}}}',
  '{"id":"c","choices":{"0":{"delta":{"content":$}}}}',
  '{"id":"c","choices":[{"delta":{"content":"first"}},{"index":1,"delta":{"content":$}}]}',
  // escaped member names
  '{"id":"c","choices":[{"index":0,"delta":{"cont\\u0065nt":$}}]}',
  '{"id":"c","choices":[{"index":0,"delta":{"content":$},"x":"\\"content\\":\\"y\\""}]}',
  // the finish, usage, timings, an error
  '{"id":"c","choices":[{"index":0,"delta":{"content":$},"finish_reason":"stop"}]}',
  '{"id":"c","choices":[{"index":0,"delta":{"content":$},"finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":4}}',
  '{"id":"c","choices":[{"index":0,"delta":{"content":$},"finish_reason":"length"}],"timings":{"prompt_n":5,"predicted_n":6}}',
  '{"error":{"message":$}}',
  '{"id":"c","choices":[{"index":0,"delta":{"content":$}}],"error":"late"}',
  // a whole completion (a server that ignored stream: true)
  '{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":$},"finish_reason":"stop"}]}',
];

const OPENAI_OTHERS = [
  '{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
  '{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
  '{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
  '{"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":4}}}',
  '{"id":"c","choices":[{"index":1,"delta":{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"ls","arguments":"{}"}}]}}]}',
  '{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"function":{"arguments":{"a":1}}}]}}]}',
  "[DONE]",
  "",
  "{",
  "not json",
  '{"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]}}',
  "null",
  "5",
  '"str"',
];

const OLLAMA_SHAPES = [
  '{"model":"m","created_at":"2024-05-01T12:00:00.$Z","message":{"role":"assistant","content":$},"done":false}',
  '{"model":"m","created_at":"2024-05-01T12:00:00.$Z","message":{"role":"assistant","content":"","thinking":$},"done":false}',
  '{"model":"m","created_at":"2024-05-01T12:00:00.$Z","message":{"role":"assistant","content":$,"tool_calls":[{"function":{"name":"read","arguments":{"path":"a"}}}]},"done":false}',
  '{"model":"m","created_at":"2024-05-01T12:00:00.$Z","message":{"role":"assistant","content":$},"done_reason":"stop","done":true,"prompt_eval_count":3,"eval_count":4}',
  '{"model":"m","created_at":$,"message":{"role":"assistant","content":"x"},"done":false}',
  '{"error":$}',
  '{"model":"m","created_at":"t","message":{"role":"assistant","content":$},"done":false,"error":null}',
];

const ANTHROPIC_SHAPES = [
  '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":$}}',
  '{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":$}}',
  '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":$}}',
  '{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":$}}',
  '{"type":"content_block_delta","index":0,"delta":{"text":$,"type":"text_delta"}}',
  '{"type":"error","error":{"type":"overloaded_error","message":$}}',
];

const ANTHROPIC_OTHERS = [
  '{"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":3,"output_tokens":1}}}',
  '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
  '{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"read","input":{}}}',
  '{"type":"content_block_stop","index":0}',
  '{"type":"ping"}',
  '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}',
  '{"type":"message_stop"}',
  "{",
];

/** One payload of a shape: the token's literal, and a time of day where Ollama's `$` comes first. */
function fill(shape: string, rng: Rng): string {
  const parts = shape.split("$");
  let out = parts[0]!;
  for (let i = 1; i < parts.length; i++) {
    const time = parts.length === 3 && i === 1;
    out += (time ? String(Math.floor(rng() * 1e9)) : pick(rng, TOKEN_LITERALS)) + parts[i];
  }
  return out;
}

/** A payload changed by one character: replaced, dropped or added, anywhere. */
function mutate(text: string, rng: Rng): string {
  const CHARS = ['"', "\\", "{", "}", "[", "]", ",", ":", " ", "0", "9", "a", "n", "t", "\u0001", "é", "\n"];
  const i = Math.floor(rng() * (text.length + 1));
  const r = rng();
  if (r < 0.4) return text.slice(0, i) + pick(rng, CHARS) + text.slice(i + 1);
  if (r < 0.7) return text.slice(0, i) + text.slice(i + 1);
  return text.slice(0, i) + pick(rng, CHARS) + text.slice(i);
}

function streamOf(rng: Rng, shapes: readonly string[], others: readonly string[], length: number): string[] {
  const out: string[] = [];
  let shape = pick(rng, shapes);
  while (out.length < length) {
    const r = rng();
    if (r < 0.06) shape = pick(rng, shapes);
    if (r < 0.1) out.push(pick(rng, others));
    else if (r < 0.25) out.push(mutate(fill(shape, rng), rng));
    else if (r < 0.3) out.push(fill(shape, rng).slice(0, Math.floor(rng() * 200)));
    else out.push(fill(shape, rng));
  }
  return out;
}

// --- comparing decoders ----------------------------------------------------------------------------

type Outcome = { returned?: boolean; events: Event[]; error?: unknown };

/** Generated call ids are random: the same place in both runs gets the same name. */
function normalized(events: Event[]): Event[] {
  return events.map((e) =>
    e.type === "toolCallStart" && /^call_[0-9A-Za-z]{24}$/.test(e.id) ? { ...e, id: "call_generated" } : e,
  );
}

function errorShape(e: unknown): unknown {
  if (e instanceof GatewayError) return { gateway: true, kind: e.kind, message: e.message, code: e.code };
  return { message: (e as Error)?.message, name: (e as Error)?.name };
}

function step(f: (out: Event[]) => boolean | undefined): Outcome {
  const events: Event[] = [];
  try {
    return { returned: f(events), events: normalized(events) };
  } catch (e) {
    return { events: normalized(events), error: errorShape(e) };
  }
}

/** Both decoders fed the same payloads; every push and the end give the same events and errors. */
function sameAsFullParse(make: (templates: boolean) => StreamDecoder, payloads: readonly string[]): void {
  const fast = make(true);
  const full = make(false);
  for (const [i, p] of payloads.entries()) {
    const a = step((out) => fast.push(p, out));
    const b = step((out) => full.push(p, out));
    assert.deepEqual(a, b, `payload ${i}: ${JSON.stringify(p)}`);
  }
  const a = step((out) => {
    fast.end(out);
    return undefined;
  });
  const b = step((out) => {
    full.end(out);
    return undefined;
  });
  assert.deepEqual(a, b, "end");
}

const DECODERS = {
  openai: {
    make: (t: boolean) => new ChatChunkDecoder("b", t),
    shapes: OPENAI_SHAPES,
    others: OPENAI_OTHERS,
  },
  ollama: {
    make: (t: boolean) => new OllamaLineDecoder("b", t),
    shapes: OLLAMA_SHAPES,
    others: ["{", "[]", '{"model":"m","done":true}'],
  },
  anthropic: {
    make: (t: boolean) => new AnthropicEventDecoder("b", t),
    shapes: ANTHROPIC_SHAPES,
    others: ANTHROPIC_OTHERS,
  },
};

describe("stream decoders: the template fast path is the full parse", () => {
  // a test of the fast path itself: on, whichever way the suite runs (CLAWBRIDGE_FAST_PATHS)
  let restore: () => void;
  before(() => {
    restore = setFastPaths("1");
  });
  after(() => restore());
  for (const [name, d] of Object.entries(DECODERS)) {
    test(`${name}: 1500 generated streams give the same events and errors`, () => {
      for (let seed = 1; seed <= 1500; seed++) {
        const rng = prng(seed);
        const payloads = streamOf(rng, d.shapes, d.others, 5 + Math.floor(rng() * 40));
        try {
          sameAsFullParse(d.make, payloads);
        } catch (e) {
          (e as Error).message = `seed ${seed}: ${(e as Error).message}`;
          throw e;
        }
      }
    });

    test(`${name}: every one-character change of a matching payload`, () => {
      const rng = prng(7);
      const CHARS = ['"', "\\", "}", ",", " ", "0", "\u0001", "é"];
      for (const shape of d.shapes) {
        const first = fill(shape, rng);
        const second = fill(shape, rng);
        const variants: string[] = [];
        for (let i = 0; i <= second.length; i++) {
          variants.push(second.slice(0, i) + second.slice(i + 1));
          for (const c of CHARS) {
            variants.push(second.slice(0, i) + c + second.slice(i + 1));
            variants.push(second.slice(0, i) + c + second.slice(i));
          }
        }
        // the decoders make a template from their third candidate on: `first` three times, then the match
        for (const v of variants) sameAsFullParse(d.make, [first, first, first, second, v, second]);
      }
    });
  }

  test("a plain token stream takes the fast path, and a malformed chunk after it throws the same", () => {
    const payloads = ['{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'];
    for (let i = 0; i < 50; i++)
      payloads.push(`{"id":"c","choices":[{"index":0,"delta":{"content":${JSON.stringify(`t${i}`)}}}]}`);
    const d = new ChatChunkDecoder("b");
    const parse = JSON.parse;
    let parsed = 0;
    JSON.parse = ((text: string, reviver?: any) => {
      parsed++;
      return parse(text, reviver);
    }) as typeof JSON.parse;
    const out: Event[] = [];
    try {
      for (const p of payloads) d.push(p, out);
    } finally {
      JSON.parse = parse;
    }
    assert.ok(parsed <= 4, `parsed ${parsed} of ${payloads.length} in full`);
    assert.equal(out.filter((e) => e.type === "textDelta").length, 50);
    assert.deepEqual(out.at(-1), { type: "textDelta", text: "t49" });
    const bad = '{"id":"c","choices":[{"index":0,"delta":{"content":"t"}}]}}';
    assert.throws(
      () => d.push(bad, []),
      (e: unknown) => e instanceof GatewayError && e.code === "backend_malformed" && e.message.includes(bad),
    );
  });

  test("a server whose payloads differ in more than the token gives up templates", () => {
    const d = new ChatChunkDecoder("b");
    const out: Event[] = [];
    for (let i = 0; i < 100; i++)
      d.push(`{"id":"c","n":${i},"choices":[{"index":0,"delta":{"content":"x"}}]}`, out);
    assert.equal((d as any).templates.hits, 0);
    assert.ok((d as any).templates.givenUp);
    assert.equal(out.length, 101);
  });
});

describe("JsonTemplate", () => {
  const PATHS: JsonPath[] = [["a", 0, "b"], ["c"], ["d", "e"]];

  test("a match is JSON.parse of the payload, and what JSON.parse refuses never matches", () => {
    const rng = prng(11);
    const texts = [
      '{"a":[{"b":"x"}],"c":"y","d":{"e":"z"}}',
      '{"c":"y","a":[{"b":"x","b2":1}],"d":{"f":1,"e":"z"},"g":[1,2,{"h":null}]}',
      ' { "a" : [ { "b" : "x" } ] , "c" : "\\u0041" } ',
      '{"a":[{"b":"x"},{"b":"y"}],"c":"y"}',
    ];
    let matched = 0;
    for (const text of texts) {
      const t = JsonTemplate.of(text, JSON.parse(text), PATHS);
      assert.ok(t, text);
      for (let n = 0; n < 20000; n++) {
        let v = text;
        for (let k = Math.floor(rng() * 3); k >= 0; k--) v = mutate(v, rng);
        if (rng() < 0.5) {
          // a new string in a slot, the rest as it was
          v = text.replace(/"x"|"y"|"z"/g, () => pick(rng, TOKEN_LITERALS));
        }
        let want: unknown;
        let threw = false;
        try {
          want = JSON.parse(v);
        } catch {
          threw = true;
        }
        const got: unknown = t.match(v);
        if (got === undefined) continue;
        matched++;
        assert.equal(threw, false, `matched what JSON.parse refuses: ${JSON.stringify(v)}`);
        assert.deepEqual(got, want, JSON.stringify(v));
      }
    }
    assert.ok(matched > 10000, `only ${matched} matched`);
  });

  test("no slot where the value is shadowed, repeated, not a string, or reached another way", () => {
    const none = [
      '{"a":[{"b":"x"}],"a":[{"b":"x"}]}',
      '{"a":[{"b":"x"}],"a":{"0":{"b":"x"}}}',
      '{"a":{"0":{"b":"x"}}}',
      '{"a":[{"b":"x","b":"y"}]}',
      '{"a":[{"b":1}]}',
      '{"a":[{"b":["x"]}]}',
      '{"a":[{"b":"x"}],"a":[]}',
      '"x"',
      "[]",
      "null",
    ];
    for (const text of none) assert.equal(JsonTemplate.of(text, JSON.parse(text), PATHS), undefined, text);
    // a repeated member that is not on a slot's path is fixed bytes like any other
    const t = JsonTemplate.of('{"q":1,"q":2,"c":"y"}', JSON.parse('{"q":1,"q":2,"c":"y"}'), PATHS);
    assert.deepEqual(t?.match('{"q":1,"q":2,"c":"\\"z"}'), { q: 2, c: '"z' });
  });

  test("deep nesting costs no stack", () => {
    const deep = `{"c":"y","n":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    const t = JsonTemplate.of(deep, JSON.parse(deep), PATHS);
    assert.equal(t?.match(deep.replace('"y"', '"w"')).c, "w");
  });
});

// --- the response reader ---------------------------------------------------------------------------

/** The reader before: TextDecoder and eventsource-parser, one batch per chunk. */
function sseReference(chunks: readonly Buffer[]): EventSourceMessage[][] {
  const decoder = new TextDecoder();
  const batches: EventSourceMessage[][] = [];
  let batch: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (ev) => batch.push(ev) });
  for (const c of chunks) {
    parser.feed(decoder.decode(c, { stream: true }));
    if (batch.length) batches.push(batch);
    batch = [];
  }
  parser.feed(`${decoder.decode()}\n\n`);
  if (batch.length) batches.push(batch);
  return batches;
}

function linesReference(chunks: readonly Buffer[]): string[][] {
  const decoder = new TextDecoder();
  const batches: string[][] = [];
  let buf = "";
  for (const c of chunks) {
    buf += decoder.decode(c, { stream: true });
    const parts = buf.split("\n");
    buf = parts.pop()!;
    const lines = parts.map((l) => l.trim()).filter(Boolean);
    if (lines.length) batches.push(lines);
  }
  buf += decoder.decode();
  if (buf.trim()) batches.push([buf.trim()]);
  return batches;
}

async function collectAll<T>(gen: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

/** What decodeResponse hands the decoder: the payloads each chunk completed (batches never empty), then the rest. */
function split(framing: "sse" | "ndjson", chunks: readonly Buffer[]): string[][] {
  const splitter = splitterFor(framing);
  const batches: string[][] = [];
  for (const c of chunks) {
    const payloads: string[] = [];
    splitter.feed(c, payloads);
    if (payloads.length) batches.push(payloads);
  }
  const payloads: string[] = [];
  splitter.end(payloads);
  if (payloads.length) batches.push(payloads);
  return batches;
}

/** The reference's events as their data: what the decoders are given. */
function dataOf(batches: EventSourceMessage[][]): string[][] {
  return batches.map((b) => b.map((ev) => ev.data));
}

const SSE_TEXTS = [
  'data: {"a":1}\n\ndata: {"b":"é😀"}\n\n',
  "\ufeffdata: bom\n\n",
  "\ufeff\ufeffdata: two boms\n\n",
  "data: crlf\r\n\r\ndata: cr\r\rdata: mixed\r\n\n",
  ": a comment\ndata: after comment\n\n:\n\n",
  "event: content_block_delta\nid: 7\ndata: x\n\nevent: ping\ndata: {}\n\n",
  "data: line one\ndata: line two\ndata\ndata:no space\n\n",
  "retry: 100\nfoo: bar\ndata: unknown fields\n\n",
  "data: [DONE]\n\n",
  "data: no blank line at the end",
  "data: ends with cr\r",
  "\n\n\ndata:  two spaces\n\n",
];

const NDJSON_TEXTS = [
  '{"a":1}\n{"b":"é😀"}\n',
  '\ufeff{"bom":1}\n',
  '  {"padded":1}  \r\n\r\n{"crlf":2}\r\n',
  '{"no":"newline at the end"}',
  "\n\n\n",
  '{"x":1}\n   \n{"y":2}',
];

describe("response reader: StringDecoder and the same SSE and lines as before", () => {
  test("SSE split at every byte position, and in three at random", async () => {
    const rng = prng(3);
    for (const text of SSE_TEXTS) {
      const bytes = Buffer.from(text);
      const splits: Buffer[][] = [[bytes]];
      for (let i = 0; i <= bytes.length; i++) splits.push([bytes.subarray(0, i), bytes.subarray(i)]);
      for (let n = 0; n < 200; n++) {
        const a = Math.floor(rng() * (bytes.length + 1));
        const b = Math.floor(rng() * (bytes.length + 1));
        const [x, y] = a < b ? [a, b] : [b, a];
        splits.push([bytes.subarray(0, x), bytes.subarray(x, y), bytes.subarray(y)]);
      }
      for (const chunks of splits) {
        assert.deepEqual(split("sse", chunks), dataOf(sseReference(chunks)), text);
      }
    }
  });

  test("NDJSON split at every byte position", async () => {
    for (const text of NDJSON_TEXTS) {
      const bytes = Buffer.from(text);
      for (let i = 0; i <= bytes.length; i++) {
        const chunks = [bytes.subarray(0, i), bytes.subarray(i)];
        assert.deepEqual(split("ndjson", chunks), linesReference(chunks), text);
      }
    }
  });

  test("bytes that are not UTF-8 are replaced as TextDecoder replaces them, split anywhere", async () => {
    const rng = prng(5);
    const PIECES = [[0x41], [0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xef, 0xbb, 0xbf]];
    const BAD = [
      [0x80],
      [0xc0],
      [0xc1, 0x80],
      [0xe0, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90],
      [0xf5],
      [0xff],
    ];
    for (let n = 0; n < 3000; n++) {
      const bytes: number[] = [];
      if (rng() < 0.2) bytes.push(0xef, 0xbb, 0xbf);
      bytes.push(...Buffer.from("data: "));
      for (let k = Math.floor(rng() * 10); k > 0; k--) {
        const r = rng();
        bytes.push(...(r < 0.5 ? pick(rng, PIECES) : r < 0.9 ? pick(rng, BAD) : [Math.floor(rng() * 256)]));
      }
      bytes.push(0x0a, 0x0a);
      if (rng() < 0.3) bytes.push(0xe2, 0x82); // cut off at the end
      const all = Buffer.from(bytes);
      const cuts = [0, ...Array.from({ length: 3 }, () => Math.floor(rng() * (all.length + 1)))];
      cuts.sort((a, b) => a - b);
      cuts.push(all.length);
      const chunks = cuts.slice(1).map((c, i) => all.subarray(cuts[i], c));
      assert.deepEqual(split("sse", chunks), dataOf(sseReference(chunks)), all.toString("hex"));
      assert.deepEqual(split("ndjson", chunks), linesReference(chunks), all.toString("hex"));
    }
  });
});

// --- decodeResponse over a real connection ---------------------------------------------------------

type Script = (res: http.ServerResponse) => Promise<void> | void;

/** A server answering by `script`, and a dispatcher to reach it, both closed after `run`. */
async function withServer(
  script: Script,
  run: (url: string, dispatcher: ReturnType<typeof createDispatcher>) => Promise<void>,
): Promise<void> {
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => void script(res));
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const dispatcher = createDispatcher();
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`, dispatcher);
  } finally {
    await dispatcher.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until `cond` holds (polled every 2 ms, 2 s at most). */
async function until(cond: () => boolean): Promise<void> {
  for (const t0 = performance.now(); !cond(); await sleep(2))
    if (performance.now() - t0 > 2000) throw new Error("timed out waiting");
}
const chunkOf = (text: string) =>
  `data: ${JSON.stringify({ id: "c", model: "m", choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
const FINISH = `data: ${JSON.stringify({ id: "c", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\ndata: [DONE]\n\n`;

async function open(url: string, dispatcher: ReturnType<typeof createDispatcher>, signal?: AbortSignal) {
  return postJson({
    backend: "b",
    url,
    body: "{}",
    headers: {},
    signal: signal ?? new AbortController().signal,
    dispatcher,
  });
}

describe("decodeResponse", () => {
  test("one batch per network chunk, the connection back in the pool at the end", async () => {
    // the server writes its next chunk only once the last one has come out as a batch: each is a read of its
    // own however slow the machine
    let read: () => void = () => {};
    const nextRead = () => new Promise<void>((r) => (read = r));
    await withServer(
      async (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        for (const t of ["a", "b", "c"]) {
          const seen = nextRead();
          res.write(chunkOf(t));
          await seen;
        }
        res.end(FINISH);
      },
      async (url, dispatcher) => {
        const res = await open(url, dispatcher);
        const batches: unknown[] = [];
        for await (const batch of decodeResponse("b", res, "sse", new ChatChunkDecoder("b"))) {
          batches.push(batch);
          read();
        }
        assert.deepEqual(batches, [
          [
            { type: "start", id: "c", model: "m" },
            { type: "textDelta", text: "a" },
          ],
          [{ type: "textDelta", text: "b" }],
          [{ type: "textDelta", text: "c" }],
          [{ type: "stop", reason: "end_turn" }],
        ]);
        await sleep(10);
        const free = Object.values(dispatcher.http.freeSockets).flat();
        assert.equal(free.length, 1, "the socket went back to the pool");
      },
    );
  });

  test("an answer that came whole in one read is one batch with its end; the connection is kept", async () => {
    await withServer(
      (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end(chunkOf("a") + chunkOf("b") + FINISH);
      },
      async (url, dispatcher) => {
        // read to the end
        let res = await open(url, dispatcher);
        // the whole response is in before the first read (one write of the server's)
        await until(() => res.body.complete);
        const batches = await collectAll(decodeResponse("b", res, "sse", new ChatChunkDecoder("b")));
        assert.deepEqual(batches, [
          [
            { type: "start", id: "c", model: "m" },
            { type: "textDelta", text: "a" },
            { type: "textDelta", text: "b" },
            { type: "stop", reason: "end_turn" },
          ],
        ]);
        await sleep(10);
        assert.equal(Object.values(dispatcher.http.freeSockets).flat().length, 1, "back in the pool");

        // a caller that stops at that batch, its last: the body was read to its end, nothing to destroy
        res = await open(url, dispatcher);
        await until(() => res.body.complete);
        for await (const batch of decodeResponse("b", res, "sse", new ChatChunkDecoder("b"))) {
          assert.equal(batch.at(-1)?.type, "stop");
          break;
        }
        await sleep(10);
        assert.equal(res.body.destroyed && !res.body.readableEnded, false, "the body was not cut");
        assert.equal(
          Object.values(dispatcher.http.freeSockets).flat().length,
          1,
          "the same connection back in the pool",
        );
      },
    );
  });

  test("a caller busy with a batch gets what came meanwhile in one; the body's buffer stays bounded", async () => {
    const text = (i: number) => `${i}:${"x".repeat(1000)}`;
    const COUNT = 4000;
    let pushedBack = false;
    await withServer(
      async (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        for (let i = 0; i < COUNT; i++) {
          if (!res.write(chunkOf(text(i)))) {
            pushedBack = true;
            await new Promise((r) => res.once("drain", r));
          }
        }
        res.end(FINISH);
      },
      async (url, dispatcher) => {
        const res = await open(url, dispatcher);
        let next = 0;
        let batches = 0;
        let most = 0;
        for await (const batch of decodeResponse("b", res, "sse", new ChatChunkDecoder("b"))) {
          batches++;
          for (const e of batch) if (e.type === "textDelta") assert.equal(e.text, text(next++));
          await sleep(batches < 20 ? 20 : 0);
          most = Math.max(most, res.body.readableLength);
        }
        assert.equal(next, COUNT);
        assert.ok(batches < COUNT / 4, `${batches} batches`);
        assert.ok(most <= res.body.readableHighWaterMark + 65536, `${most} bytes buffered`);
        assert.ok(pushedBack, "the server had to wait for the reader");
      },
    );
  });

  test("a bad payload: the events before it in its chunk first, then the error; the body destroyed", async () => {
    await withServer(
      (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`${chunkOf("a")}${chunkOf("b")}data: {oops\n\n${chunkOf("c")}`);
      },
      async (url, dispatcher) => {
        const res = await open(url, dispatcher);
        const got: Event[][] = [];
        await assert.rejects(
          async () => {
            for await (const b of decodeResponse("b", res, "sse", new ChatChunkDecoder("b"))) got.push(b);
          },
          (e: unknown) => e instanceof GatewayError && e.code === "backend_malformed",
        );
        assert.deepEqual(got, [
          [
            { type: "start", id: "c", model: "m" },
            { type: "textDelta", text: "a" },
            { type: "textDelta", text: "b" },
          ],
        ]);
        assert.ok(res.body.destroyed);
      },
    );
  });

  test("a reset mid-answer and an abort end the iteration with the same errors as before", async () => {
    await withServer(
      async (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(chunkOf("a"));
        await sleep(20);
        res.socket?.destroy();
      },
      async (url, dispatcher) => {
        const res = await open(url, dispatcher);
        const got: Event[][] = [];
        await assert.rejects(
          async () => {
            for await (const b of decodeResponse("b", res, "sse", new ChatChunkDecoder("b"))) got.push(b);
          },
          (e: unknown) =>
            e instanceof GatewayError &&
            e.code === "backend_stream_broken" &&
            e.message === "backend b broke off its answer: connection reset",
        );
        assert.equal(got.length, 1);
      },
    );
    await withServer(
      async (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(chunkOf("a"));
        await sleep(500);
        res.end(FINISH);
      },
      async (url, dispatcher) => {
        const ac = new AbortController();
        const res = await open(url, dispatcher, ac.signal);
        const it = decodeResponse("b", res, "sse", new ChatChunkDecoder("b"));
        assert.equal((await it.next()).done, false);
        const pending = it.next();
        ac.abort();
        await assert.rejects(pending, (e: unknown) => e instanceof GatewayError && e.retryable === true);
        assert.ok(res.body.destroyed);
      },
    );
  });

  test("a caller that stops early has the body destroyed", async () => {
    await withServer(
      async (res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(chunkOf("a"));
        await sleep(300);
        res.end(FINISH);
      },
      async (url, dispatcher) => {
        const res = await open(url, dispatcher);
        for await (const _ of decodeResponse("b", res, "sse", new ChatChunkDecoder("b"))) break;
        assert.ok(res.body.destroyed);
      },
    );
  });

  test("NDJSON: a last line without its newline, and a stream that ends unfinished", async () => {
    const line = (content: string, done = false) =>
      JSON.stringify({ model: "m", created_at: "t", message: { role: "assistant", content }, done });
    await withServer(
      (res) => {
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        res.end(`${line("a")}\n${line("b")}\n${line("", true)}`);
      },
      async (url, dispatcher) => {
        const res = await open(url, dispatcher);
        const events = (
          await collectAll(decodeResponse("b", res, "ndjson", new OllamaLineDecoder("b")))
        ).flat();
        assert.deepEqual(
          events.map((e) => e.type),
          ["start", "textDelta", "textDelta", "usage", "stop"],
        );
      },
    );
    await withServer(
      (res) => {
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        res.end(`${line("a")}\n`);
      },
      async (url, dispatcher) => {
        const res = await open(url, dispatcher);
        await assert.rejects(
          collectAll(decodeResponse("b", res, "ndjson", new OllamaLineDecoder("b"))),
          (e: unknown) => e instanceof GatewayError && e.code === "backend_stream_incomplete",
        );
      },
    );
  });
});
