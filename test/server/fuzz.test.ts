/**
 * Fuzzes both surfaces with mutations of real requests (OpenClaw's captured traffic) and of small hand-written
 * ones: fields deleted or retyped, arrays shuffled, roles and block types swapped, the JSON text cut or salted with
 * bytes that are not UTF-8. Whatever comes in, the gateway must answer, quickly, with 200/400/404/413 and a body
 * well-formed in the surface's dialect, and keep serving afterwards.
 *
 * Run: node --import tsx --test test/server/fuzz.test.ts
 * Knobs: FUZZ_SEED (reproduce a run), FUZZ_COUNT (mutations, default 10000), FUZZ_BUDGET_MS (default 120000),
 * FUZZ_ONLY (one case index of a seeded run), FUZZ_VERBOSE=1 (print every failing case in full), FUZZ_DUMP=DIR
 * (write each failing case's request there: DIR/case-N.body and DIR/case-N.json with its path and headers).
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { Agent, request } from "undici";
import { NOTE_SUBJECTS } from "../../src/stages/types.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, ScriptedReply } from "../fakes/script.js";
import {
  checkAnthropicStream,
  checkOpenAIStream,
  parseSse,
  type RunningGateway,
  startGateway,
} from "../helpers.js";

// CI runs one fixed seed, so a submission's result does not depend on luck; a developer's run explores new ones.
const SEED = process.env.FUZZ_SEED
  ? Number(process.env.FUZZ_SEED)
  : process.env.CI
    ? 20261121
    : Math.floor(Math.random() * 2 ** 31);
const COUNT = Number(process.env.FUZZ_COUNT ?? 10_000);
/** A guard against a run that crawls (every case must run): 10,000 take 20-40 s on a shared 2-core machine. */
const BUDGET_MS = Number(process.env.FUZZ_BUDGET_MS ?? 120_000);
const ONLY = process.env.FUZZ_ONLY === undefined ? undefined : Number(process.env.FUZZ_ONLY);
const VERBOSE = process.env.FUZZ_VERBOSE === "1";
const DUMP = process.env.FUZZ_DUMP;
/** Requests in flight at once. */
const CONCURRENCY = 6;
/** A request that takes longer than this is a hang. */
const REQUEST_TIMEOUT_MS = 5000;

// ---------------------------------------------------------------------------------------------------------------
// seeded randomness
// ---------------------------------------------------------------------------------------------------------------

type Rng = () => number;

/** mulberry32: small, fast, good enough to drive a fuzzer; the same seed gives the same run. */
function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The generator for one case: depends only on the run's seed and the case's index. */
function caseRng(seed: number, index: number): Rng {
  return mulberry32((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, list: readonly T[]): T => list[int(rng, list.length)]!;
const chance = (rng: Rng, p: number) => rng() < p;

// ---------------------------------------------------------------------------------------------------------------
// the requests mutated
// ---------------------------------------------------------------------------------------------------------------

type Dialect = "anthropic" | "openai";
type Json = any;

interface Base {
  name: string;
  path: string;
  body: Json;
}

const PNG_1x1 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

function fixture(name: string): Json {
  return JSON.parse(readFileSync(new URL(`../fixtures/openclaw/${name}.json`, import.meta.url), "utf8"));
}

const WEATHER_SCHEMA = {
  type: "object",
  properties: { city: { type: "string" }, unit: { type: "string", enum: ["c", "f"] } },
  required: ["city"],
};

const ANTHROPIC_BASES: Base[] = [
  {
    name: "openclaw anthropic turn1",
    path: "/v1/messages",
    body: fixture("anthropic-messages.custom.turn1"),
  },
  {
    name: "openclaw anthropic after-tool-result",
    path: "/v1/messages",
    body: fixture("anthropic-messages.custom.after-tool-result"),
  },
  {
    name: "anthropic tools",
    path: "/v1/messages",
    body: {
      model: "claude-mock",
      max_tokens: 256,
      system: [{ type: "text", text: "You are terse.", cache_control: { type: "ephemeral" } }],
      tools: [{ name: "get_weather", description: "Weather for a city", input_schema: WEATHER_SCHEMA }],
      tool_choice: { type: "auto", disable_parallel_tool_use: true },
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "Paris" } },
          ],
        },
        {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "toolu_01",
              content: [{ type: "text", text: "sunny, 24°C" }],
            },
            { type: "text", text: "And tomorrow?" },
          ],
        },
      ],
      temperature: 0.2,
      stop_sequences: ["END"],
      metadata: { user_id: "u-1" },
    },
  },
  {
    name: "anthropic images",
    path: "/v1/messages",
    body: {
      model: "claude-mock",
      max_tokens: 64,
      stream: true,
      messages: [
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/png", data: PNG_1x1 } },
            { type: "image", source: { type: "url", url: "https://example.com/cat.png" } },
            { type: "text", text: "What are these?" },
          ],
        },
      ],
    },
  },
  {
    name: "anthropic thinking",
    path: "/v1/messages",
    body: {
      model: "claude-mock",
      max_tokens: 2048,
      thinking: { type: "enabled", budget_tokens: 1024 },
      system: "Think first.",
      top_p: 0.9,
      top_k: 40,
      messages: [
        { role: "user", content: "Hi" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "The user greets me.", signature: "sig-abc" },
            { type: "redacted_thinking", data: "cmVkYWN0ZWQ=" },
            { type: "text", text: "Hello!" },
          ],
        },
        { role: "user", content: [{ type: "text", text: "How are you?" }] },
      ],
    },
  },
  {
    name: "anthropic tool error with image",
    path: "/v1/messages",
    body: {
      model: "claude-mock",
      max_tokens: 128,
      stream: true,
      tools: [
        { name: "screenshot", input_schema: { type: "object", properties: {} } },
        { type: "web_search_20250305", name: "web_search" },
      ],
      tool_choice: { type: "tool", name: "screenshot" },
      messages: [
        { role: "user", content: "Take a screenshot" },
        { role: "assistant", content: [{ type: "tool_use", id: "toolu_02", name: "screenshot", input: {} }] },
        {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "toolu_02",
              is_error: true,
              content: [
                { type: "text", text: "partial" },
                { type: "image", source: { type: "base64", media_type: "image/png", data: PNG_1x1 } },
              ],
            },
          ],
        },
      ],
    },
  },
];

const OPENAI_BASES: Base[] = [
  { name: "openclaw openai turn1", path: "/v1/chat/completions", body: fixture("openai-completions.turn1") },
  {
    name: "openclaw openai after-tool-result",
    path: "/v1/chat/completions",
    body: fixture("openai-completions.after-tool-result"),
  },
  {
    name: "openai tools",
    path: "/v1/chat/completions",
    body: {
      model: "mock-model",
      max_tokens: 100,
      tools: [
        {
          type: "function",
          function: { name: "get_weather", description: "Weather", parameters: WEATHER_SCHEMA },
        },
      ],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      parallel_tool_calls: true,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny" },
        { role: "user", content: [{ type: "text", text: "And tomorrow?" }] },
      ],
    },
  },
  {
    name: "openai images",
    path: "/v1/chat/completions",
    body: {
      model: "mock-model",
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What are these?" },
            { type: "image_url", image_url: { url: `data:image/png;base64,${PNG_1x1}` } },
            { type: "image_url", image_url: { url: "https://example.com/cat.png", detail: "low" } },
          ],
        },
      ],
    },
  },
  {
    name: "openai reasoning",
    path: "/v1/chat/completions",
    body: {
      model: "mock-model",
      max_completion_tokens: 500,
      reasoning_effort: "low",
      stop: ["\n\n"],
      seed: 7,
      n: 1,
      temperature: 0.7,
      response_format: { type: "json_object" },
      user: "u-1",
      messages: [
        { role: "developer", content: [{ type: "text", text: "Answer in JSON." }] },
        { role: "user", content: "Hi" },
        {
          role: "assistant",
          reasoning_content: "The user greets me.",
          content: [{ type: "text", text: "{}" }],
        },
        { role: "user", content: "Again" },
      ],
    },
  },
  {
    name: "openai legacy functions",
    path: "/v1/chat/completions",
    body: {
      model: "mock-model",
      functions: [{ name: "get_weather", parameters: WEATHER_SCHEMA }],
      messages: [
        { role: "user", content: "Weather?" },
        {
          role: "assistant",
          content: null,
          function_call: { name: "get_weather", arguments: '{"city":"Oslo"}' },
        },
        { role: "function", name: "get_weather", content: "rain" },
      ],
    },
  },
];

/** count_tokens takes a Messages request without max_tokens. */
const COUNT_BASES: Base[] = ANTHROPIC_BASES.map((b) => {
  const { max_tokens: _m, stream: _s, ...body } = b.body;
  return { name: `count_tokens ${b.name}`, path: "/v1/messages/count_tokens", body };
});

function dialectOf(path: string): Dialect {
  return path.startsWith("/v1/messages") ? "anthropic" : "openai";
}

// ---------------------------------------------------------------------------------------------------------------
// mutations
// ---------------------------------------------------------------------------------------------------------------

const words = (text: string) => text.split(/\s+/).filter(Boolean);
const ROLES = [...words("user assistant system developer tool function model USER 🤖"), "", "user\u0000"];
const TYPES = [
  ...words(`text image image_url tool_use tool_result thinking redacted_thinking document input_audio refusal function
    server_tool_use search_result enabled auto any none base64 url TEXT`),
  "",
  "t\u00e9xt",
];
const MODELS = [
  ...words("claude-mock mock-model test-model nope-model * ../../etc/passwd"),
  "",
  " ",
  "claude-mock ",
];
const KEYS = [
  ...words(`cache_control is_error signature tool_calls tool_call_id tool_use_id content text role type name input
    arguments source image_url stream n __proto__ constructor 💥`),
  "",
];

/** Values spliced into the JSON text after serialization (deep nesting cannot go through JSON.stringify). */
const DEEP = (n: number, kind: "array" | "object") => `\u0000DEEP:${kind}:${n}\u0000`;

function weird(rng: Rng): Json {
  switch (int(rng, 30)) {
    case 0:
      return null;
    case 1:
      return 0;
    case 2:
      return -1;
    case 3:
      return 1.5;
    case 4:
      return 1e308;
    case 5:
      return -1e308;
    case 6:
      return 2 ** 53 + 2;
    case 7:
      return pick(rng, ["NaN", "Infinity", "-Infinity", "1e999", "-0", "0x10", "null", "true", "10"]);
    case 8:
      return "";
    case 9:
      return "x".repeat(pick(rng, [1000, 100_000]));
    case 10:
      return pick(rng, [
        "\ud800",
        "\udfff\ud800",
        "a\u0000b",
        "\u2028\u2029",
        "\ufeff",
        "𝕏🤖",
        "%s%n",
        "</script>",
      ]);
    case 11:
      return [];
    case 12:
      return [null];
    case 13:
      return [1, "a", {}, [], true, null];
    case 14:
      return {};
    case 15:
      return { type: pick(rng, TYPES) };
    case 16:
      return true;
    case 17:
      return false;
    case 18:
      return DEEP(pick(rng, [64, 1000, 6000, 50_000]), pick(rng, ["array", "object"] as const));
    case 19:
      return pick(rng, TYPES);
    case 20:
      return pick(rng, ROLES);
    case 21:
      return -0.0000001;
    case 22:
      return { role: pick(rng, ROLES), content: pick(rng, ["hi", [], null, [{ type: "text", text: "hi" }]]) };
    case 23:
      return [{ type: pick(rng, TYPES), text: "hi" }];
    case 24:
      return 4_294_967_297;
    case 25:
      return { "": null, "\u0000": 1 };
    case 26:
      return "😀".repeat(50);
    case 27:
      return Array.from({ length: 100 }, (_, i) => i);
    case 28:
      return { type: "text", text: 5 };
    default:
      return { a: { b: { c: [{ d: "e" }] } } };
  }
}

interface Slot {
  parent: Json[] | Record<string, Json>;
  key: string | number;
  depth: number;
}

/** Every place in the tree a value sits, breadth first. */
function slots(root: Json): Slot[] {
  const out: Slot[] = [];
  const queue: Array<{ v: Json; depth: number }> = [{ v: root, depth: 0 }];
  for (let q = 0; q < queue.length; q++) {
    const { v, depth } = queue[q]!;
    if (Array.isArray(v)) {
      v.forEach((child, i) => {
        out.push({ parent: v, key: i, depth: depth + 1 });
        queue.push({ v: child, depth: depth + 1 });
      });
    } else if (v && typeof v === "object") {
      for (const [k, child] of Object.entries(v)) {
        out.push({ parent: v, key: k, depth: depth + 1 });
        queue.push({ v: child, depth: depth + 1 });
      }
    }
  }
  return out;
}

const INTERESTING = new Set(
  words(`role type content text model messages max_tokens stream tool_use_id tool_call_id id name input arguments
    tool_calls source image_url url data system tools tool_choice thinking function`),
);

function pickSlot(rng: Rng, root: Json): Slot | undefined {
  const all = slots(root);
  if (!all.length) return undefined;
  const r = rng();
  let pool = all;
  if (r < 0.35) pool = all.filter((s) => s.depth <= 4);
  else if (r < 0.7) pool = all.filter((s) => typeof s.key === "string" && INTERESTING.has(s.key));
  return pick(rng, pool.length ? pool : all);
}

function get(s: Slot): Json {
  return (s.parent as any)[s.key];
}

function set(s: Slot, v: Json): void {
  (s.parent as any)[s.key] = v;
}

function remove(s: Slot): void {
  if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
  else delete s.parent[s.key as string];
}

function shuffle<T>(rng: Rng, list: T[]): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = int(rng, i + 1);
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
}

/** One structural mutation of the parsed body; returns what it did. `root` is a box so the root itself may go. */
function mutateTree(rng: Rng, box: { root: Json }): string {
  const root = box.root;
  if (chance(rng, 0.06)) {
    if (root && typeof root === "object" && !Array.isArray(root)) {
      root.stream = typeof root.stream === "boolean" ? !root.stream : chance(rng, 0.5);
      return `stream=${root.stream}`;
    }
  }
  if (chance(rng, 0.02)) {
    box.root = weird(rng);
    return "root=weird";
  }
  const s = pickSlot(rng, root);
  if (!s) {
    box.root = weird(rng);
    return "root=weird(empty)";
  }
  const v = get(s);
  const where = `${String(s.key)}@${s.depth}`;
  const ops: string[] = ["delete", "set", "set", "transplant", "vocab"];
  if (Array.isArray(v)) ops.push("dup", "shuffle", "reverse", "empty", "insert", "repeat");
  else if (v && typeof v === "object") ops.push("addKey", "addKey", "swapKeys");
  if (Array.isArray(s.parent)) ops.push("dupSelf");
  const op = pick(rng, ops);
  switch (op) {
    case "delete":
      remove(s);
      break;
    case "set":
      set(s, weird(rng));
      break;
    case "transplant": {
      const other = pick(rng, slots(root));
      set(s, structuredClone(get(other)));
      return `${op} ${where} <- ${String(other.key)}@${other.depth}`;
    }
    case "vocab":
      if (s.key === "role") set(s, pick(rng, ROLES));
      else if (s.key === "type") set(s, pick(rng, TYPES));
      else if (s.key === "model") set(s, pick(rng, MODELS));
      else set(s, pick(rng, [...ROLES, ...TYPES, ...MODELS]));
      return `${op} ${where} = ${JSON.stringify(get(s))}`;
    case "dup":
      if (v.length) v.splice(int(rng, v.length), 0, structuredClone(pick(rng, v)));
      break;
    case "shuffle":
      shuffle(rng, v);
      break;
    case "reverse":
      v.reverse();
      break;
    case "empty":
      v.length = 0;
      break;
    case "insert":
      v.splice(int(rng, v.length + 1), 0, weird(rng));
      break;
    case "repeat":
      if (v.length) {
        const item = pick(rng, v);
        const n = JSON.stringify(item).length > 10_000 ? 3 : 50;
        for (let i = 0; i < n; i++) v.push(structuredClone(item));
      }
      break;
    case "addKey": {
      const key = chance(rng, 0.8) ? pick(rng, KEYS) : `k${int(rng, 1000)}`;
      // an own __proto__ key, as JSON.parse makes it, not a prototype change
      Object.defineProperty(v, key, {
        value: weird(rng),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return `${op} ${where}.${key}`;
    }
    case "swapKeys": {
      const keys = Object.keys(v);
      if (keys.length >= 2) {
        const a = pick(rng, keys);
        const b = pick(rng, keys);
        [v[a], v[b]] = [v[b], v[a]];
        return `${op} ${where} ${a}<->${b}`;
      }
      break;
    }
    case "dupSelf":
      (s.parent as Json[]).splice(s.key as number, 0, structuredClone(v));
      break;
  }
  return `${op} ${where}`;
}

function serialize(text: string): Buffer {
  return Buffer.from(
    text.replace(/"\\u0000DEEP:(array|object):(\d+)\\u0000"/g, (_m, kind: string, n: string) => {
      const depth = Number(n);
      return kind === "array"
        ? "[".repeat(depth) + "]".repeat(depth)
        : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    }),
  );
}

/** One mutation of the bytes on the wire. */
function mutateBytes(rng: Rng, body: Buffer): { body: Buffer; what: string } {
  const at = int(rng, body.length + 1);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(rng, 256)));
  switch (int(rng, 10)) {
    case 0:
      return { body: body.subarray(0, at), what: `truncate@${at}` };
    case 1:
      return {
        body: Buffer.concat([body.subarray(0, at), bytes(1 + int(rng, 16)), body.subarray(at)]),
        what: `garbage@${at}`,
      };
    case 2: {
      const out = Buffer.from(body);
      if (out.length) out[Math.min(at, out.length - 1)] = pick(rng, [0xff, 0xfe, 0xc0, 0x80, 0xed, 0x00]);
      return { body: out, what: `badbyte@${at}` };
    }
    case 3: {
      // invalid UTF-8 inside a string value: after the first quote past the offset
      const q = body.indexOf(0x22, at);
      const pos = q < 0 ? at : q + 1;
      const bad = pick(rng, [[0xc3, 0x28], [0xe2, 0x82], [0xf0, 0x90, 0x80], [0xed, 0xa0, 0x80], [0xff]]);
      return {
        body: Buffer.concat([body.subarray(0, pos), Buffer.from(bad), body.subarray(pos)]),
        what: `badutf8@${pos}`,
      };
    }
    case 4:
      return { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]), what: "bom" };
    case 5:
      return {
        body: Buffer.concat([
          body,
          Buffer.from(pick(rng, ["}", "]", " x", "\n{}", "\u0000", ",", body.toString()])),
        ]),
        what: "trailing",
      };
    case 6:
      return { body: Buffer.alloc(0), what: "empty" };
    case 7:
      return {
        body: Buffer.from(pick(rng, ["null", "[]", "0", '""', "true", "{}", " ", "\n", "{", '{"model"'])),
        what: "replaced",
      };
    case 8: {
      // a key repeated: the last one wins in JSON.parse
      const text = body.toString();
      return {
        body: Buffer.from(text.replace(/^\{/, `{"model":${JSON.stringify(pick(rng, MODELS))},`)),
        what: "dupkey",
      };
    }
    default:
      return {
        body: Buffer.concat([body.subarray(0, at), Buffer.from("\\u"), body.subarray(at)]),
        what: `escape@${at}`,
      };
  }
}

/**
 * Which gateway a case goes to: the plain one; one with a master key (the case presents the right key, a wrong
 * one or none); one with a 64 KB body limit, so that 413s happen too.
 */
type Target = "plain" | "keyed" | "small";
type KeyUse = "right" | "wrong" | "missing";
const MASTER_KEY = "sk-fuzz-master-key";

interface Case {
  index: number;
  target: Target;
  key?: KeyUse;
  base: string;
  path: string;
  dialect: Dialect;
  headers: Record<string, string>;
  body: Buffer;
  /** The body as sent, when it is still the JSON the mutations made (no byte-level damage). */
  json: Json;
  mutations: string[];
}

const CONTENT_TYPES = [
  "text/plain",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "application/x-www-form-urlencoded",
  "application/octet-stream",
  "multipart/form-data; boundary=x",
  "",
];

function makeCase(seed: number, index: number): Case {
  const rng = caseRng(seed, index);
  const r = rng();
  const family = r < 0.45 ? ANTHROPIC_BASES : r < 0.9 ? OPENAI_BASES : COUNT_BASES;
  const base = pick(rng, family);
  let path = base.path;
  if (chance(rng, 0.04)) path = path === "/v1/chat/completions" ? "/v1/messages" : "/v1/chat/completions";
  const dialect = dialectOf(path);
  const box = { root: structuredClone(base.body) };
  const mutations: string[] = [];
  const n = 1 + int(rng, 3);
  for (let i = 0; i < n; i++) mutations.push(mutateTree(rng, box));
  const text = JSON.stringify(box.root) ?? "null";
  let body = serialize(text);
  // deep values are spliced into the text: the tree no longer says what was sent
  let json: Json = text.includes("\\u0000DEEP:") ? undefined : box.root;
  if (chance(rng, 0.15)) {
    const m = mutateBytes(rng, body);
    body = m.body;
    mutations.push(m.what);
    json = undefined;
  }
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (dialect === "anthropic") headers["anthropic-version"] = "2023-06-01";
  const t = rng();
  const target: Target = t < 0.1 ? "keyed" : t < 0.2 ? "small" : "plain";
  let key: KeyUse | undefined;
  if (target === "keyed") {
    key = pick(rng, ["right", "right", "wrong", "missing"] as const);
    const value =
      key === "right"
        ? MASTER_KEY
        : pick(rng, ["sk-wrong", "", `${MASTER_KEY}x`, MASTER_KEY.slice(1), MASTER_KEY.toUpperCase()]);
    if (key !== "missing") {
      if (chance(rng, 0.5)) headers["x-api-key"] = value;
      else headers.authorization = `Bearer ${value}`;
    }
  }
  if (chance(rng, 0.05)) {
    const type = pick(rng, CONTENT_TYPES);
    if (type) headers["content-type"] = type;
    else delete headers["content-type"];
    mutations.push(`content-type=${JSON.stringify(type)}`);
    json = undefined;
  }
  return {
    index,
    target,
    ...(key ? { key } : {}),
    base: base.name,
    path,
    dialect,
    headers,
    body,
    json,
    mutations,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// checking the answers
// ---------------------------------------------------------------------------------------------------------------

const ANTHROPIC_ERROR_TYPE: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  413: "request_too_large",
};
const OPENAI_ERROR_CODE: Record<number, Array<string | null>> = {
  400: [null, "context_length_exceeded"],
  401: ["invalid_api_key"],
  404: ["model_not_found"],
  413: ["request_too_large"],
};
const ALLOWED = new Set([200, 400, 404, 413]);
const SERVED = ["claude-mock", "mock-model", "test-model"];

function checkError(dialect: Dialect, status: number, body: Json): void {
  if (dialect === "anthropic") {
    assert.deepEqual(Object.keys(body).sort(), ["error", "type"], "anthropic error keys");
    assert.equal(body.type, "error");
    assert.equal(body.error.type, ANTHROPIC_ERROR_TYPE[status], "error.type for the status");
    assert.equal(typeof body.error.message, "string");
    assert.ok(body.error.message.length > 0, "empty message");
  } else {
    assert.deepEqual(Object.keys(body), ["error"], "openai error keys");
    const e = body.error;
    assert.deepEqual(Object.keys(e).sort(), ["code", "message", "param", "type"], "openai error fields");
    assert.equal(typeof e.message, "string");
    assert.ok(e.message.length > 0, "empty message");
    assert.equal(e.type, "invalid_request_error");
    assert.ok(e.param === null || typeof e.param === "string", "param");
    assert.ok(OPENAI_ERROR_CODE[status]?.includes(e.code), `code ${e.code} for ${status}`);
  }
}

const BLOCK_TYPES = new Set(["text", "tool_use", "thinking", "redacted_thinking"]);

function checkMessage(body: Json): void {
  assert.equal(body.type, "message");
  assert.equal(body.role, "assistant");
  assert.match(body.id, /^msg_/);
  assert.equal(typeof body.model, "string");
  assert.ok(Array.isArray(body.content), "content");
  for (const b of body.content) {
    assert.ok(BLOCK_TYPES.has(b.type), `block type ${b.type}`);
    if (b.type === "text") assert.equal(typeof b.text, "string");
    if (b.type === "tool_use") {
      assert.match(b.id, /^[a-zA-Z0-9_-]+$/);
      assert.equal(typeof b.name, "string");
      assert.ok(b.input && typeof b.input === "object", "tool_use input");
    }
  }
  assert.equal(typeof body.stop_reason, "string");
  assert.ok(
    Number.isInteger(body.usage?.input_tokens) && Number.isInteger(body.usage?.output_tokens),
    "usage",
  );
}

function checkCompletion(body: Json): void {
  assert.equal(body.object, "chat.completion");
  assert.match(body.id, /^chatcmpl-/);
  assert.equal(body.choices?.length, 1);
  const c = body.choices[0];
  assert.equal(c.message.role, "assistant");
  assert.ok(c.message.content === null || typeof c.message.content === "string", "content");
  for (const t of c.message.tool_calls ?? []) {
    assert.equal(t.type, "function");
    assert.equal(typeof t.function.name, "string");
    JSON.parse(t.function.arguments);
  }
  assert.equal(typeof c.finish_reason, "string");
  assert.ok(Number.isInteger(body.usage?.prompt_tokens), "usage");
}

/**
 * A stream the gateway opened before it had an answer (keep-alive pings: the prompt was slow to
 * count on a busy machine, or the request waited for a place), which then refused the request:
 * nothing but its opening, then one error in the dialect, of a client fault (the 400 it would
 * have been), never a server's. Returns false for a stream that ends otherwise.
 */
function refusedInStream(dialect: Dialect, events: Array<{ event?: string; data: Json }>): boolean {
  if (dialect === "anthropic") {
    const last = events.at(-1);
    if (last?.event !== "error") return false;
    const before = events.slice(0, -1).map((e) => e.event);
    assert.ok(
      before.every((e) => e === "message_start" || e === "ping"),
      `an error after content: ${before.join(",")}`,
    );
    assert.equal(before[0], "message_start", "the stream opened with message_start");
    checkError(dialect, 400, last.data);
    return true;
  }
  const data = events.filter((e) => e.data !== "[DONE]");
  const last = data.at(-1)?.data;
  if (!last || typeof last !== "object" || !("error" in last)) return false;
  for (const e of data.slice(0, -1)) {
    assert.equal(e.data.object, "chat.completion.chunk");
    assert.ok(
      e.data.choices.every((c: Json) => !c.finish_reason && !c.delta?.content && !c.delta?.tool_calls),
      `an error after content: ${JSON.stringify(e.data)}`,
    );
  }
  checkError(dialect, 400, last);
  return true;
}

interface Outcome {
  status: number | "timeout" | "error";
  failure?: string;
}

async function runCase(gatewayUrl: string, c: Case): Promise<Outcome> {
  /** A keyed gateway without the right key refuses before anything else. */
  const refused = c.target === "keyed" && c.key !== "right";
  let status: number;
  let type: string;
  let text: string;
  try {
    // undici's own request, not fetch: the same HTTP/1.1 on the wire, without the web streams
    // fetch builds around every request and answer
    const res = await request(`${gatewayUrl}${c.path}`, {
      method: "POST",
      headers: c.headers,
      body: c.body,
      dispatcher: client,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    status = res.statusCode;
    type = String(res.headers["content-type"] ?? "");
    text = await res.body.text();
  } catch (e) {
    const err = e as Error & { code?: string };
    const timeout = err.code === "UND_ERR_HEADERS_TIMEOUT" || err.code === "UND_ERR_BODY_TIMEOUT";
    return {
      status: timeout ? "timeout" : "error",
      failure: timeout
        ? `no answer within ${REQUEST_TIMEOUT_MS} ms`
        : `request failed: ${err.message} ${String(err.cause ?? "")}`,
    };
  }
  /** The request body, when it is known to have arrived as this object. */
  const sent = c.json && typeof c.json === "object" && !Array.isArray(c.json) ? c.json : undefined;
  /** Whether the request asked for a stream, when that is known. */
  const asked = sent ? sent.stream === true : undefined;
  try {
    if (refused) assert.equal(status, 401, `status ${status} without the right key`);
    else assert.ok(ALLOWED.has(status), `status ${status}`);
    if (status !== 200) {
      assert.match(type, /^application\/json/, "content-type of an error");
      checkError(c.dialect, status, JSON.parse(text));
      if (status === 404) {
        assert.match(text, /model/, "a 404 is about the model");
        if (sent) assert.ok(!SERVED.includes(sent.model), "a 404 for a model that is served");
      }
    } else if (c.path.endsWith("/count_tokens")) {
      const body = JSON.parse(text);
      assert.deepEqual(Object.keys(body), ["input_tokens"]);
      assert.ok(Number.isInteger(body.input_tokens) && body.input_tokens >= 0, "input_tokens");
    } else if (type.startsWith("text/event-stream")) {
      if (asked !== undefined) assert.equal(asked, true, "a stream for a request that did not ask for one");
      const events = parseSse(text);
      if (refusedInStream(c.dialect, events)) {
        // opened early (the answer was slow to start: keep-alive), then refused: checked there
      } else if (c.dialect === "anthropic") checkAnthropicStream(events);
      else checkOpenAIStream(events);
    } else {
      assert.match(type, /^application\/json/, "content-type of an answer");
      if (asked !== undefined) assert.notEqual(asked, true, "no stream for a request that asked for one");
      const body = JSON.parse(text);
      if (c.dialect === "anthropic") checkMessage(body);
      else checkCompletion(body);
      if (sent) assert.equal(body.model, sent.model, "the answer names the model asked for");
    }
  } catch (e) {
    return { status, failure: `${(e as Error).message}\n    answer: ${type} ${text.slice(0, 400)}` };
  }
  return { status };
}

// ---------------------------------------------------------------------------------------------------------------
// the run
// ---------------------------------------------------------------------------------------------------------------

const REPLIES: ScriptedReply[] = [
  { text: "Hello from the fake backend.", chunkSize: 16 },
  { reasoning: "Thinking it over.", text: "Done.", chunkSize: 16 },
  { text: "Let me look.", toolCalls: [{ name: "read", arguments: { path: "hello.txt" } }], chunkSize: 32 },
  { text: "Cut", finishReason: "length", chunkSize: 16 },
  {
    toolCalls: [
      { name: "get_weather", arguments: { city: "Paris" } },
      { name: "exec", arguments: {} },
    ],
    chunkSize: 64,
  },
];

const CONFIG = (url: string, server = "") => `
${server}
backends:
  fake:
    kind: openai-compat
    url: "${url}"
    flavor: llamacpp
models:
  claude-mock: { backend: fake, model: "fake-model" }
  mock-model: { backend: fake, model: "fake-model" }
  test-model: { backend: fake, model: "fake-model" }
`;

/** The fuzz's HTTP client: kept-alive connections to the three gateways. */
const client = new Agent({ keepAliveTimeout: 10_000 });
let fake: FakeServer;
let gw: RunningGateway;
let keyed: RunningGateway;
let small: RunningGateway;
const rejections: unknown[] = [];
const exceptions: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);
const onException = (err: unknown) => exceptions.push(err);

before(async () => {
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  fake = await startOpenAICompatFake({ flavor: "llamacpp" });
  let n = 0;
  fake.setReply(() => REPLIES[n++ % REPLIES.length]!);
  gw = await startGateway(CONFIG(fake.url));
  keyed = await startGateway(CONFIG(fake.url, `server:\n  master_key: ${MASTER_KEY}`));
  small = await startGateway(CONFIG(fake.url, "server:\n  body_limit_mb: 0.0625"));
});

after(async () => {
  await Promise.all([gw?.close(), keyed?.close(), small?.close()]);
  await client.close();
  await fake?.close();
  process.off("unhandledRejection", onRejection);
  process.off("uncaughtException", onException);
});

test("fuzz: mutated requests to both surfaces get well-formed answers", async (t) => {
  console.log(`fuzz seed ${SEED} — reproduce with FUZZ_SEED=${SEED} (one case: FUZZ_ONLY=<index>)`);
  const started = performance.now();
  const histogram = new Map<string, number>();
  const failures: Array<{ c: Case; outcome: Outcome }> = [];
  const indices = ONLY === undefined ? Array.from({ length: COUNT }, (_, i) => i) : [ONLY];
  let next = 0;
  let done = 0;
  let outOfTime = false;

  const worker = async () => {
    for (;;) {
      if (performance.now() - started > BUDGET_MS) {
        outOfTime = true;
        return;
      }
      const index = indices[next++];
      if (index === undefined) return;
      const c = makeCase(SEED, index);
      const url = { plain: gw, keyed, small }[c.target].url;
      const outcome = await runCase(url, c);
      done++;
      // nothing here reads what the fake recorded: 10,000 cases of it held ~300 MB (peak RSS 700 → 400 MB)
      fake.requests.length = 0;
      const where = `${c.dialect}${c.path.endsWith("count_tokens") ? "/count_tokens" : ""}`;
      const key = `${where}${c.target === "plain" ? "" : ` (${c.target}${c.key ? `, ${c.key} key` : ""})`} ${outcome.status}`;
      histogram.set(key, (histogram.get(key) ?? 0) + 1);
      if (outcome.failure) {
        failures.push({ c, outcome });
        if (DUMP) {
          mkdirSync(DUMP, { recursive: true });
          writeFileSync(`${DUMP}/case-${c.index}.body`, c.body);
          const { body: _b, json: _j, ...meta } = c;
          writeFileSync(`${DUMP}/case-${c.index}.json`, JSON.stringify({ ...meta, outcome }, null, 2));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = Math.round(performance.now() - started);

  const lines = [...histogram.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `  ${k}: ${v}`);
  const byStatus = new Map<string, number>();
  for (const [k, v] of histogram) {
    const status = k.split(" ").at(-1)!;
    byStatus.set(status, (byStatus.get(status) ?? 0) + v);
  }
  console.log(
    `fuzz: ${done} requests in ${elapsed} ms${outOfTime ? " (time budget reached)" : ""}; by status: ${JSON.stringify(Object.fromEntries(byStatus))}\n${lines.join("\n")}`,
  );
  t.diagnostic(`seed ${SEED}, ${done} requests, ${JSON.stringify(Object.fromEntries(byStatus))}`);

  if (failures.length) {
    const shown = VERBOSE ? failures : failures.slice(0, 12);
    const report = shown
      .map(
        ({ c, outcome }) =>
          `#${c.index} ${c.base} → ${c.target} ${c.path} [${c.mutations.join("; ")}]: ${outcome.status}\n    ${outcome.failure}`,
      )
      .join("\n");
    const kinds = new Map<string, number>();
    for (const f of failures) {
      const k = (f.outcome.failure ?? "").split("\n")[0]!.slice(0, 80);
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    assert.fail(
      `${failures.length} of ${done} fuzz cases failed (seed ${SEED}); kinds: ${JSON.stringify(Object.fromEntries(kinds))}\n${report}`,
    );
  }
  assert.equal(done, indices.length, `only ${done} of ${indices.length} cases ran in the time budget`);
});

test("after the fuzz the gateway still serves normal requests and nothing escaped", async () => {
  const a = await fetch(`${gw.url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify({
      model: "claude-mock",
      max_tokens: 32,
      messages: [{ role: "user", content: "Hi" }],
    }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  assert.equal(a.status, 200);
  checkMessage(await a.json());
  const o = await fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "mock-model", stream: true, messages: [{ role: "user", content: "Hi" }] }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  assert.equal(o.status, 200);
  checkOpenAIStream(parseSse(await o.text()));
  for (const g of [gw, keyed, small]) assert.ok(g.server.listening, "the gateways still listen");

  // Unknown model names must not become metric labels: a client could grow the registry without bound.
  const metrics = await (
    await fetch(`${gw.url}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  ).text();
  const models = new Set([...metrics.matchAll(/model="([^"]*)"/g)].map((m) => m[1]));
  for (const m of models) assert.ok([...SERVED, "other"].includes(m!), `metric label model="${m}"`);
  // nor invented fields and block types: what a stage changed is labelled from a closed list
  const reshaped = [...metrics.matchAll(/^clawbridge_reshaped_total\{what="([^"]*)"\}/gm)].map((m) => m[1]!);
  if (ONLY === undefined) assert.ok(reshaped.length > 0, "the fuzz's requests were reshaped");
  for (const what of reshaped)
    assert.ok((NOTE_SUBJECTS as readonly string[]).includes(what), `metric label what="${what}"`);

  assert.deepEqual(rejections.map(String), [], "unhandled promise rejections");
  assert.deepEqual(exceptions.map(String), [], "uncaught exceptions");
});
