/**
 * Context windows that match reality (issue 4): fake servers that behave like Ollama (cuts a prompt past its
 * num_ctx silently), llama.cpp (refuses past n_ctx), TinyGrad (a fixed window that cannot be asked), vLLM and
 * LM Studio, driven through both surfaces with the official SDKs. Below the window: answered. At it (prompt + the
 * output asked for = the window): answered. Above it: the overflow error agent clients compact on.
 * Run: node --import tsx --test test/context/context.test.ts
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { pino } from "pino";
import { createDispatcher } from "../../src/backends/http/client.js";
import { parseConfig } from "../../src/config/load.js";
import { messageTokens, rawTokens } from "../../src/context/estimate.js";
import { DROPPED_NOTE, dropRounds } from "../../src/context/fit.js";
import { chooseWindow, fittingContext } from "../../src/context/window.js";
import type { Message } from "../../src/ir/types.js";
import { buildGateway } from "../../src/server/app.js";
import { anthropicSurface } from "../../src/surfaces/anthropic/index.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, RecordedRequest } from "../fakes/script.js";
import { chatTokens as chatTokensOf } from "../fakes/tokenizer.js";
import type { RunningGateway } from "../helpers.js";

// ---------------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------------

interface LoggedGateway extends RunningGateway {
  /** Every log line the gateway wrote, parsed. */
  lines: Array<Record<string, any>>;
}

/** A gateway whose log the test can read: warnings are what the user sees. */
async function startLogged(yaml: string): Promise<LoggedGateway> {
  const lines: Array<Record<string, any>> = [];
  const log = pino({ level: "debug" }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const dispatcher = createDispatcher();
  const gw = buildGateway({ config: parseConfig(yaml, "test.yaml", {}), dispatcher, log });
  await gw.router.discover();
  const url = await gw.listen("127.0.0.1", 0);
  return {
    ...gw,
    url,
    lines,
    close: async () => {
      await gw.close();
      await dispatcher.close();
    },
  };
}

/** Deterministic English-like text: words from syllables, commas and full stops. */
function prose(words: number, seed = 1): string {
  const syllables = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "ta",
    "shi",
    "po",
    "ven",
    "dor",
    "al",
    "is",
    "un",
    "er",
    "ex",
  ];
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s;
  };
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    let w = "";
    for (let k = 0, n = 1 + (next() % 3); k < n; k++) w += syllables[next() % syllables.length];
    const mark = next() % 12;
    out.push(mark === 0 ? `${w}.` : mark === 1 ? `${w},` : w);
  }
  return out.join(" ");
}

/** Code-like text: more punctuation per character than prose. */
function code(lines: number, seed = 1): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++)
    out.push(
      `  const v${i + seed} = items.filter((x) => x.id !== ${i * 7}).map((x) => ({ ...x, n: ${i} }));`,
    );
  return `function step${seed}(items) {\n${out.join("\n")}\n  return items;\n}`;
}

const WINDOW = 4096;

interface Kind {
  name: string;
  start(): Promise<FakeServer>;
  backend: string;
  model: string;
  /** Settings on the model's target. */
  target: string;
  chats(f: FakeServer): RecordedRequest[];
  /** The output limit as the backend received it. */
  maxTokens(r: RecordedRequest): number | undefined;
}

const openaiChats = (f: FakeServer) => f.requests.filter((r) => r.path === "/v1/chat/completions");

const KINDS: Kind[] = [
  {
    name: "llama.cpp (refuses past n_ctx; the window from /props)",
    start: () => startOpenAICompatFake({ flavor: "llamacpp", contextLength: WINDOW }),
    backend: "kind: openai-compat\n    flavor: llamacpp",
    model: "fake-model",
    target: "",
    chats: openaiChats,
    maxTokens: (r) => r.body.max_tokens,
  },
  {
    name: "Ollama (cuts silently past num_ctx; the window from config)",
    start: () => startOllamaFake({ models: [{ name: "qwen2.5:7b", contextLength: 32768 }] }),
    backend: "kind: ollama",
    model: "qwen2.5:7b",
    target: `, context_window: ${WINDOW}`,
    chats: (f) => f.requests.filter((r) => r.path === "/api/chat"),
    maxTokens: (r) => r.body.options?.num_predict,
  },
  {
    name: "TinyGrad (a fixed window it cannot report; from config)",
    start: () => startOpenAICompatFake({ flavor: "tinygrad", contextLength: WINDOW, models: ["tiny"] }),
    backend: "kind: openai-compat\n    flavor: tinygrad",
    model: "tiny",
    target: `, context_window: ${WINDOW}`,
    chats: openaiChats,
    maxTokens: (r) => r.body.max_tokens,
  },
];

function yamlFor(kind: Kind, url: string, extraTarget = kind.target): string {
  return `
backends:
  b:
    ${kind.backend}
    url: "${url}"
    discover: false
models:
  m: { backend: b, model: "${kind.model}"${extraTarget} }
`;
}

/** count_tokens for an Anthropic body. */
async function countTokens(gw: { url: string }, body: Record<string, unknown>): Promise<number> {
  const res = await fetch(`${gw.url}/v1/messages/count_tokens`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { input_tokens: number }).input_tokens;
}

const SYSTEM = "You are a careful assistant. Answer briefly and cite the lines you used.";

/** An Anthropic body whose prompt is about `target` tokens by count_tokens (searched on the word count). */
async function bodyOfAbout(gw: { url: string }, target: number, seed = 3) {
  const make = (words: number) => ({
    model: "m",
    system: SYSTEM,
    messages: [{ role: "user" as const, content: prose(words, seed) }],
  });
  let lo = 1;
  let hi = target * 2;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((await countTokens(gw, make(mid))) <= target) lo = mid;
    else hi = mid;
  }
  const body = make(lo);
  return { body, tokens: await countTokens(gw, body) };
}

/** The same request in the OpenAI dialect. */
function asOpenAI(body: { system: string; messages: Array<{ role: "user"; content: string }> }, max: number) {
  return {
    model: "m",
    max_tokens: max,
    messages: [{ role: "system" as const, content: body.system }, ...body.messages],
  };
}

function expectAnthropicOverflow(e: unknown, prompt: number, max: number): true {
  assert.ok(e instanceof Anthropic.BadRequestError, String(e));
  assert.equal(e.status, 400);
  const err = (e.error as any)?.error;
  assert.equal(err?.type, "invalid_request_error");
  // the standard words first (clients match them); a first turn of ours also names the setting to raise
  assert.match(
    err?.message,
    new RegExp(
      `^prompt is too long: ${prompt} tokens > ${max} maximum(\\. '.+' is served with a \\d+-token window.*(num_ctx|context_window|vram_gb|larger context).*)?$`,
    ),
  );
  return true;
}

function expectOpenAIOverflow(e: unknown, prompt: number, max: number): true {
  assert.ok(e instanceof OpenAI.BadRequestError, String(e));
  assert.equal(e.status, 400);
  assert.equal(e.code, "context_length_exceeded");
  assert.equal(e.type, "invalid_request_error");
  assert.match(
    e.message,
    new RegExp(
      `This model's maximum context length is ${max} tokens\\. However, your messages resulted in ${prompt} tokens`,
    ),
  );
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// below / at / above, per kind, through both SDKs
// ---------------------------------------------------------------------------------------------------------------

for (const kind of KINDS) {
  describe(`${kind.name}: below, at and above the window`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    let anthropic: Anthropic;
    let openai: OpenAI;
    before(async () => {
      fake = await kind.start();
      fake.setReply({ text: "Fine." });
      gw = await startLogged(yamlFor(kind, fake.url));
      anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      // a few answers first, so the estimate is calibrated where the server reports its counts
      for (let i = 0; i < 3; i++) {
        await anthropic.messages.create({
          model: "m",
          max_tokens: 50,
          system: SYSTEM,
          messages: [{ role: "user", content: prose(400 + i * 200, 10 + i) }],
        });
      }
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    test("the window in use is the served one, told to clients in /v1/models", async () => {
      const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as any;
      assert.equal(models.data.find((m: any) => m.id === "m")?.context_window, WINDOW);
    });

    test("below the window: answered on both surfaces", async () => {
      const { body } = await bodyOfAbout(gw, 1500);
      const a = await anthropic.messages.create({ ...body, max_tokens: 100 });
      assert.deepEqual(a.content, [{ type: "text", text: "Fine." }]);
      const o = await openai.chat.completions.create(asOpenAI(body, 100));
      assert.equal(o.choices[0]?.message.content, "Fine.");
      const sent = kind.chats(fake).at(-1)!;
      assert.equal(kind.maxTokens(sent), 100);
      assert.ok(sent.prompt!.tokens < WINDOW, "the server took the whole prompt");
    });

    test("at the window (prompt + max_tokens = window): answered on both surfaces", async () => {
      const { body } = await bodyOfAbout(gw, WINDOW - 300);
      let tokens = await countTokens(gw, body);
      const a = await anthropic.messages.create({ ...body, max_tokens: WINDOW - tokens });
      assert.deepEqual(a.content, [{ type: "text", text: "Fine." }]);
      let sent = kind.chats(fake).at(-1)!;
      assert.equal(kind.maxTokens(sent), WINDOW - tokens, "max_tokens passed unchanged");
      assert.ok(sent.prompt!.tokens <= WINDOW - 1, `the server took it whole (${sent.prompt!.tokens})`);
      if (kind.name.startsWith("llama.cpp")) assert.equal(sent.prompt!.tokens, tokens, "counted exactly");

      tokens = await countTokens(gw, body);
      const o = await openai.chat.completions.create({ ...asOpenAI(body, WINDOW - tokens), stream: true });
      let text = "";
      for await (const c of o) text += c.choices[0]?.delta.content ?? "";
      assert.equal(text, "Fine.");
      sent = kind.chats(fake).at(-1)!;
      assert.equal(kind.maxTokens(sent), WINDOW - tokens);
    });

    test("above the window: the overflow error clients compact on, and nothing sent to the server", async () => {
      const { body, tokens } = await bodyOfAbout(gw, WINDOW - 300);
      const before = kind.chats(fake).length;
      const max = WINDOW - tokens + 1; // one token more than fits
      await assert.rejects(anthropic.messages.create({ ...body, max_tokens: max }), (e) =>
        expectAnthropicOverflow(e, tokens, WINDOW - max),
      );
      await assert.rejects(anthropic.messages.create({ ...body, max_tokens: max, stream: true }), (e) =>
        expectAnthropicOverflow(e, tokens, WINDOW - max),
      );
      const now = await countTokens(gw, body);
      await assert.rejects(openai.chat.completions.create(asOpenAI(body, WINDOW - now + 1)), (e) =>
        expectOpenAIOverflow(e, now, now - 1),
      );
      await assert.rejects(
        openai.chat.completions.create({ ...asOpenAI(body, WINDOW - now + 1), stream: true }),
        (e) => expectOpenAIOverflow(e, now, now - 1),
      );
      // a prompt larger than the whole window, with no output limit asked (OpenAI): refused too
      const { body: huge, tokens: hugeTokens } = await bodyOfAbout(gw, WINDOW + 2000, 5);
      const reserve = WINDOW / 8;
      await assert.rejects(
        openai.chat.completions.create({ model: "m", messages: asOpenAI(huge, 1).messages }),
        (e) => expectOpenAIOverflow(e, hugeTokens, WINDOW - reserve),
      );
      assert.equal(kind.chats(fake).length, before, "refused before the server saw it");
    });

    test("the output limit is clamped to what is left of the window", async () => {
      const { body, tokens } = await bodyOfAbout(gw, 2500);
      const a = await anthropic.messages.create({ ...body, max_tokens: 8000 });
      assert.equal(a.stop_reason, "end_turn");
      const sent = kind.chats(fake).at(-1)!;
      assert.equal(kind.maxTokens(sent), WINDOW - tokens);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Ollama: num_ctx always sent, silent truncation caught, memory budget
// ---------------------------------------------------------------------------------------------------------------

describe("Ollama: num_ctx", () => {
  test("always sent, and never Ollama's own default: chosen from config, memory, Modelfile or 32k", async () => {
    const fake = await startOllamaFake({
      models: [
        { name: "qwen2.5:7b", contextLength: 32768 },
        { name: "big", contextLength: 262144 },
        { name: "small", contextLength: 8192 },
        { name: "tuned", numCtx: 12288 },
      ],
      reply: { text: "ok" },
    });
    const gw = await startLogged(`
backends:
  o: { kind: ollama, url: "${fake.url}" }
models:
  configured: { backend: o, model: "qwen2.5:7b", num_ctx: 20000 }
`);
    try {
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const want: Record<string, number> = {
        configured: 20000,
        "qwen2.5:7b": 20000, // the model 'configured' names: one model, one num_ctx
        "big:latest": 32768, // no memory budget stated: 32k
        "small:latest": 8192, // trained for less: its maximum
        "tuned:latest": 12288, // the Modelfile's num_ctx
      };
      for (const [model, numCtx] of Object.entries(want)) {
        await anthropic.messages.create({
          model,
          max_tokens: 10,
          messages: [{ role: "user", content: "hi" }],
        });
        const sent = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!;
        assert.equal(sent.body.options.num_ctx, numCtx, model);
      }
      const chosen = gw.lines.filter((l) => l.msg === "num_ctx chosen");
      assert.ok(chosen.length >= 4, "what was chosen is said");
      assert.match(chosen.find((l) => l.model === "qwen2.5:7b")!.why, /no memory budget stated/);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("from a memory budget: the largest window that fits, where the client's would kill the server", async () => {
    const GiB = 1024 ** 3;
    const fake = await startOllamaFake({
      models: [{ name: "qwen2.5:7b", contextLength: 131072 }],
      memoryBytes: 8 * GiB,
      reply: { text: "ok" },
    });
    const forced = await startLogged(`
backends:
  o: { kind: ollama, url: "${fake.url}", discover: false }
models:
  m: { backend: o, model: "qwen2.5:7b", context_window: 131072 }
`);
    const budget = await startLogged(`
backends:
  o: { kind: ollama, url: "${fake.url}", discover: false, vram_gb: 8 }
models:
  m: { backend: o, model: "qwen2.5:7b" }
`);
    try {
      const req = { model: "m", max_tokens: 10, messages: [{ role: "user" as const, content: "hi" }] };
      // 131072 tokens of KV cache (16 GiB) beside 4.6 GiB of weights: the server cannot load it
      await assert.rejects(
        new Anthropic({ baseURL: forced.url, apiKey: "x", maxRetries: 0 }).messages.create(req),
        /requires more system memory/,
      );
      const ok = await new Anthropic({ baseURL: budget.url, apiKey: "x", maxRetries: 0 }).messages.create(
        req,
      );
      assert.equal(ok.stop_reason, "end_turn");
      const sent = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!;
      const numCtx = sent.body.options.num_ctx;
      assert.equal(numCtx, fittingContext(8 * GiB, 4920753328, 131072));
      assert.ok(numCtx >= 16384 && numCtx < 131072, String(numCtx));
      const told = budget.router.models().find((m) => m.id === "m")!;
      assert.equal(told.contextWindow, numCtx);
      assert.equal(told.context?.source, "memory");
      assert.match(
        told.context!.why,
        /largest that fits: model 4\.6 GiB \+ KV cache 128 KiB\/token in the 8\.0 GiB/,
      );
    } finally {
      await forced.close();
      await budget.close();
      await fake.close();
    }
  });

  test("a prompt the server cut silently is caught: a warning, a counter, and the window learned", async () => {
    // The config claims 16384, but the model was trained for 8192: Ollama caps num_ctx there and cuts longer
    // prompts from the front without a word to the client.
    const fake = await startOllamaFake({
      models: [{ name: "qwen2.5:7b", contextLength: 8192 }],
      reply: { text: "?" },
    });
    const gw = await startLogged(`
backends:
  o: { kind: ollama, url: "${fake.url}", discover: false }
models:
  m: { backend: o, model: "qwen2.5:7b", context_window: 16384 }
`);
    try {
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      for (let i = 0; i < 3; i++)
        await anthropic.messages.create({
          model: "m",
          max_tokens: 20,
          messages: [{ role: "user", content: prose(1500, 20 + i) }],
        });
      assert.ok(
        gw.lines.some((l) =>
          /num_ctx 16384 is more than the 8192 tokens the model was trained for/.test(l.msg),
        ),
        "the disagreement is warned of at start",
      );
      const big = {
        model: "m",
        max_tokens: 50,
        system: SYSTEM,
        messages: [{ role: "user" as const, content: prose(9000, 7) }],
      };
      const answer = await anthropic.messages.create(big);
      assert.equal(answer.stop_reason, "end_turn"); // the server did answer...
      const sent = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!;
      assert.ok(sent.prompt!.tokens > 8192 && sent.prompt!.window === 8192, "...having cut the prompt");
      const warning = gw.lines.find((l) => /cut the prompt silently/.test(l.msg));
      assert.ok(warning, "the user is told in the log");
      assert.equal(warning.level, 40);
      assert.equal(warning.counted, 8192);
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      assert.match(metrics, /prompt_truncated/);
      // the window is now what the server really took: the next long prompt gets the overflow error
      assert.equal(gw.router.models().find((m) => m.id === "m")?.contextWindow, 8192);
      await assert.rejects(anthropic.messages.create(big), (e) => {
        assert.ok(e instanceof Anthropic.BadRequestError);
        assert.match(e.message, /prompt is too long: \d+ tokens > \d+ maximum/);
        return true;
      });
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// what servers say past their window, reworded; LM Studio's empty answer
// ---------------------------------------------------------------------------------------------------------------

describe("overflows the server found: reworded the way clients recognise", () => {
  test("llama.cpp's exceed_context_size_error (config claimed more than n_ctx)", async () => {
    const fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      contextLength: 4096,
      reply: { text: "x" },
    });
    const gw = await startLogged(yamlFor(KINDS[0]!, fake.url, ", context_window: 16384"));
    try {
      assert.ok(
        gw.lines.some((l) => /context_window 16384 from config, but the server reports 4096/.test(l.msg)),
      );
      const prompt = prose(5000, 9);
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      await assert.rejects(
        anthropic.messages.create({
          model: "m",
          max_tokens: 10,
          messages: [{ role: "user", content: prompt }],
        }),
        (e) => {
          const served = openaiChats(fake).at(-1)!.prompt!.tokens;
          return expectAnthropicOverflow(e, served, 4096);
        },
      );
      // learned: the next one is refused by clawbridge, in OpenAI's words
      assert.equal(gw.router.models().find((m) => m.id === "m")?.contextWindow, 4096);
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      const before = openaiChats(fake).length;
      await assert.rejects(
        openai.chat.completions.create({
          model: "m",
          max_tokens: 10,
          messages: [{ role: "user", content: prompt }],
        }),
        (e) => e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded",
      );
      assert.equal(openaiChats(fake).length, before);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("vLLM: max_model_len discovered; its own 400 reworded when the config claims more", async () => {
    const fake = await startOpenAICompatFake({
      flavor: "vllm",
      contextLength: 4096,
      models: ["v"],
      reply: { text: "x" },
    });
    const gw = await startLogged(`
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: vllm, discover: false }
models:
  m: { backend: b, model: v }
  wrong: { backend: b, model: v, context_window: 32768 }
`);
    try {
      const models = gw.router.models();
      assert.equal(models.find((m) => m.id === "m")?.contextWindow, 4096);
      assert.equal(models.find((m) => m.id === "m")?.context?.servedFrom, "/v1/models max_model_len");
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      const content = prose(6000, 4);
      await assert.rejects(
        openai.chat.completions.create({ model: "wrong", messages: [{ role: "user", content }] }),
        (e) => {
          const served = openaiChats(fake).at(-1)!.prompt!.tokens;
          return expectOpenAIOverflow(e, served, 4096);
        },
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("LM Studio's 200 with an empty stream past its loaded context becomes an overflow error", async () => {
    const fake = await startOpenAICompatFake({
      flavor: "lmstudio",
      contextLength: 4096,
      models: ["q"],
      reply: { text: "x" },
    });
    const gw = await startLogged(`
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: lmstudio, discover: false }
models:
  m: { backend: b, model: q }
  wrong: { backend: b, model: q, context_window: 32768 }
`);
    try {
      const m = gw.router.models().find((x) => x.id === "m")!;
      assert.equal(m.contextWindow, 4096, "its loaded context, from /api/v0/models");
      const content = prose(8000, 2);
      for (const stream of [false, true]) {
        await assert.rejects(
          new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 }).messages.create({
            model: "wrong",
            max_tokens: 100,
            messages: [{ role: "user", content }],
            stream,
          }),
          (e) => {
            assert.ok(e instanceof Anthropic.BadRequestError, String(e));
            assert.match(e.message, /prompt is too long for backend b: it answered with an empty stream/);
            return true;
          },
        );
      }
      await assert.rejects(
        new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 }).chat.completions.create({
          model: "wrong",
          messages: [{ role: "user", content }],
        }),
        (e) => e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded",
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("TinyGrad without a configured window: unknown, and the user is told to set it", async () => {
    const fake = await startOpenAICompatFake({ flavor: "tinygrad", contextLength: 4096, models: ["tiny"] });
    const gw = await startLogged(yamlFor(KINDS[2]!, fake.url, ""));
    try {
      const m = gw.router.models().find((x) => x.id === "m")!;
      assert.equal(m.contextWindow, undefined);
      assert.equal(m.context?.source, "unknown");
      assert.ok(gw.lines.some((l) => /set context_window to its --max_context/.test(l.msg)));
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// fit by dropping the oldest turns
// ---------------------------------------------------------------------------------------------------------------

/** A long agent conversation: turns with tool calls and their results. */
function conversation(turns: number) {
  const messages: Anthropic.MessageParam[] = [];
  for (let i = 0; i < turns; i++) {
    messages.push({ role: "user", content: `Step ${i}: ${prose(120, i + 1)}` });
    messages.push({
      role: "assistant",
      content: [
        { type: "text", text: `Reading part ${i}.` },
        { type: "tool_use", id: `toolu_${i}`, name: "read", input: { path: `part${i}.txt` } },
      ],
    });
    messages.push({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: `toolu_${i}`, content: code(6, i) }],
    });
    messages.push({ role: "assistant", content: `Part ${i} read.` });
  }
  messages.push({ role: "user", content: "Now sum it all up." });
  return messages;
}

const READ_TOOL = {
  name: "read",
  description: "Read a file",
  input_schema: { type: "object" as const, properties: { path: { type: "string" } }, required: ["path"] },
};

describe("fit_policy: drop-oldest", () => {
  for (const kind of [KINDS[0]!, KINDS[1]!]) {
    test(`${kind.name.split(" ")[0]}: answered with the oldest turns dropped, tool pairs intact, system kept`, async () => {
      const fake = await kind.start();
      fake.setReply({ text: "Summed." });
      const extra = kind.target ? `${kind.target}, fit_policy: drop-oldest` : ", fit_policy: drop-oldest";
      const gw = await startLogged(yamlFor(kind, fake.url, extra));
      try {
        const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
        // a few shorter sessions first: where the server does not count, the estimate learns from its reports
        for (let i = 1; i <= 4; i++)
          await anthropic.messages.create({
            model: "m",
            max_tokens: 20,
            system: SYSTEM,
            tools: [READ_TOOL],
            messages: conversation(i),
          });
        const messages = conversation(12);
        const full = await countTokens(gw, { model: "m", system: SYSTEM, tools: [READ_TOOL], messages });
        assert.ok(full > WINDOW, `the conversation (${full}) is longer than the window`);
        const answer = await anthropic.messages.create({
          model: "m",
          max_tokens: 200,
          system: SYSTEM,
          tools: [READ_TOOL],
          messages,
        });
        assert.deepEqual(answer.content, [{ type: "text", text: "Summed." }]);
        const sent = kind.chats(fake).at(-1)!;
        const wire: any[] = sent.body.messages;
        assert.equal(wire[0].role, "system");
        assert.equal(wire[0].content, SYSTEM);
        assert.equal(wire.at(-1).content, "Now sum it all up.");
        assert.ok(wire.length < messages.length, "turns were dropped");
        assert.ok(JSON.stringify(wire).includes("Step 0:"), "the task (the first user message) kept");
        assert.ok(!JSON.stringify(wire).includes("Step 1:"), "the oldest rounds went first");
        assert.ok(JSON.stringify(wire).includes(DROPPED_NOTE), "a note where turns were removed");
        assert.ok(sent.prompt!.tokens <= WINDOW - 200, `it fits (${sent.prompt!.tokens})`);
        // every tool result has its call before it, and every call its result after it
        const calls = new Set<string>();
        const results = new Set<string>();
        for (const m of wire) {
          for (const c of m.tool_calls ?? []) calls.add(c.id ?? c.function?.arguments);
          if (m.role === "tool") results.add(m.tool_call_id ?? m.content);
        }
        if (kind.name.startsWith("llama.cpp")) {
          assert.deepEqual([...results].sort(), [...calls].sort());
          assert.ok(calls.size > 0, "some tool pairs kept");
        } else {
          const callCount = wire.filter((m) => m.tool_calls?.length).length;
          const resultCount = wire.filter((m) => m.role === "tool").length;
          assert.equal(resultCount, callCount);
        }
        assert.equal(wire.find((m) => m.role !== "system").role, "user", "starts with a user turn");
        const said = gw.lines.find((l) => /oldest message\(s\) dropped to fit the window/.test(l.msg));
        assert.ok(said && said.level === 40, "said so in the log");
      } finally {
        await gw.close();
        await fake.close();
      }
    });
  }

  test("dropRounds keeps the task, drops whole rounds from the oldest, and keeps the last turn whole", () => {
    const m = (role: Message["role"], ...parts: Message["parts"]): Message => ({ role, parts });
    const text = (t: string) => ({ type: "text" as const, text: t });
    const messages: Message[] = [
      m("user", text("a".repeat(400))),
      m("assistant", { type: "toolCall", id: "c1", name: "read", input: {} }),
      m("user", { type: "toolResult", toolCallId: "c1", content: [text("r".repeat(400))] }, text("and then")),
      m("assistant", text("ok")),
      m("user", text("last")),
    ];
    const cut = dropRounds(messages, messageTokens, 50, 1)!;
    // the call's round (the call and its result, and the words after it) goes whole; the task stays
    assert.deepEqual(cut.messages[0]!.parts, [...messages[0]!.parts, text(DROPPED_NOTE)]);
    assert.deepEqual(cut.messages.slice(1), messages.slice(3));
    assert.equal(cut.dropped, 2);
    assert.equal(
      dropRounds(messages, messageTokens, 100_000, 1),
      undefined,
      "cannot free more than there is",
    );
  });

  test("dropRounds: the cut stays where it was while the conversation grows by less than a step", () => {
    const m = (role: Message["role"], t: string): Message => ({ role, parts: [{ type: "text", text: t }] });
    const history: Message[] = [m("user", "the task")];
    const cuts: number[] = [];
    for (let turn = 0; turn < 40; turn++) {
      history.push(
        m("assistant", `answer ${turn} ${"x".repeat(200)}`),
        m("user", `more ${turn} ${"y".repeat(200)}`),
      );
      const total = history.reduce((s, x) => s + messageTokens(x), 0);
      const over = total - 2000;
      if (over <= 0) continue;
      const cut = dropRounds(history, messageTokens, over, 1000)!;
      assert.ok(cut, `turn ${turn} fits`);
      assert.deepEqual(cut.messages[0]!.parts[0], { type: "text", text: "the task" });
      cuts.push(cut.dropped);
    }
    const moves = cuts.filter((d, i) => i > 0 && d !== cuts[i - 1]).length;
    assert.ok(cuts.length > 20, "most turns needed a cut");
    assert.ok(moves <= cuts.length / 4, `the cut moved on ${moves} of ${cuts.length} turns`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// counting: exact where the server tokenizes, calibrated elsewhere
// ---------------------------------------------------------------------------------------------------------------

/** Requests of many shapes: prose, code, tools, tool calls and results, several turns, non-ASCII. */
function corpus(n: number, offset = 0): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (let k = 0; k < n; k++) {
    const i = k + offset;
    const shape = i % 5;
    const base: Record<string, any> = { model: "m", max_tokens: 20 };
    if (shape === 0) base.messages = [{ role: "user", content: prose(200 + (i % 7) * 150, i) }];
    else if (shape === 1) {
      base.system = `${SYSTEM} ${prose(300, i)}`;
      base.messages = [{ role: "user", content: `Review this:\n${code(10 + (i % 5) * 8, i)}` }];
    } else if (shape === 2) {
      base.tools = [READ_TOOL, { ...READ_TOOL, name: "write", description: prose(40, i) }];
      base.messages = conversation(1 + (i % 3));
    } else if (shape === 3) {
      base.system = SYSTEM;
      base.messages = [
        { role: "user", content: prose(150, i) },
        { role: "assistant", content: prose(100, i + 1) },
        { role: "user", content: `Übersetze bitte: ${prose(120, i + 2)} — danke! 日本語も。` },
      ];
    } else {
      base.messages = [
        {
          role: "user",
          content: `{"rows": ${JSON.stringify(Array.from({ length: 20 + i }, (_, j) => ({ id: j, name: `n${j}`, ok: j % 2 === 0 })))}}`,
        },
      ];
    }
    out.push(base);
  }
  return out;
}

describe("count_tokens", () => {
  test("agrees with llama.cpp's own count within 2% (the server tokenizes with its chat template)", async (t) => {
    const fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      contextLength: 32768,
      reply: { text: "ok" },
    });
    const gw = await startLogged(yamlFor(KINDS[0]!, fake.url));
    try {
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      let worst = 0;
      for (const body of corpus(15)) {
        const counted = await countTokens(gw, body);
        await anthropic.messages.create(body as any);
        const served = openaiChats(fake).at(-1)!.prompt!.tokens;
        worst = Math.max(worst, Math.abs(counted - served) / served);
      }
      t.diagnostic(
        `count_tokens vs llama.cpp's count over 15 requests: worst error ${(worst * 100).toFixed(2)}%`,
      );
      assert.ok(worst <= 0.02, `worst error ${worst}`);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("elsewhere an estimate calibrated from the counts the server reports (Ollama)", async (t) => {
    const fake = await startOllamaFake({
      models: [{ name: "qwen2.5:7b", contextLength: 32768 }],
      reply: { text: "ok" },
    });
    const gw = await startLogged(yamlFor(KINDS[1]!, fake.url, ""));
    try {
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const warmup = corpus(10);
      const held = corpus(25, 100);
      const raw: number[] = [];
      for (const body of held) raw.push(await countTokens(gw, body)); // before any answer: uncalibrated
      for (const body of warmup) await anthropic.messages.create(body as any);
      const errors: number[] = [];
      const rawErrors: number[] = [];
      for (const [i, body] of held.entries()) {
        const counted = await countTokens(gw, body);
        await anthropic.messages.create(body as any);
        const served = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.prompt!.tokens;
        errors.push((counted - served) / served);
        rawErrors.push((raw[i]! - served) / served);
      }
      const mean = (xs: number[]) => xs.reduce((a, x) => a + Math.abs(x), 0) / xs.length;
      const worst = (xs: number[]) => Math.max(...xs.map(Math.abs));
      const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
      t.diagnostic(
        `estimate vs Ollama's prompt_eval_count over ${held.length} requests: uncalibrated mean ${pct(mean(rawErrors))}, worst ${pct(worst(rawErrors))}; calibrated mean ${pct(mean(errors))}, worst ${pct(worst(errors))}`,
      );
      assert.ok(mean(errors) < mean(rawErrors), "calibration helps");
      assert.ok(mean(errors) < 0.15, `calibrated mean error ${pct(mean(errors))}`);
      const { calibration } = gw.router.resolve("m")[0]!.state;
      assert.ok(calibration.samples >= 10);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("a template's fixed cost, learned from small requests, does not inflate the large one that follows", async (t) => {
    // Qwen 2.5's template puts its own system prompt in front of a conversation that has none: ~20 tokens on
    // every request. A client's small requests come first (a title, a quota check), then the agent's real prompt.
    const fake = await startOllamaFake({
      models: [
        {
          name: "qwen2.5:7b",
          contextLength: 32768,
          defaultSystem: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        },
      ],
      reply: { text: "ok" },
    });
    const gw = await startLogged(yamlFor(KINDS[1]!, fake.url, ", context_window: 32768"));
    try {
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const served = () => fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.prompt!.tokens;
      const ratios: number[] = [];
      for (let i = 0; i < 12; i++) {
        const small = {
          model: "m",
          max_tokens: 20,
          messages: [
            {
              role: "user" as const,
              content: `Give this conversation a title. ${prose(8 + (i % 4) * 3, i)}`,
            },
          ],
        };
        const counted = await countTokens(gw, small);
        await anthropic.messages.create(small);
        ratios.push(served() / counted);
      }
      assert.ok(
        ratios[0]! > 1.5,
        `the template's own prompt is a large share of a small request (served/estimated ${ratios[0]})`,
      );
      const { calibration } = gw.router.resolve("m")[0]!.state;
      assert.ok(calibration.samples >= 5, "the small requests were learned from");
      const big = {
        model: "m",
        max_tokens: 50,
        system: SYSTEM,
        messages: [{ role: "user" as const, content: prose(12_000, 5) }],
      };
      const counted = await countTokens(gw, big);
      const answer = await anthropic.messages.create(big);
      assert.equal(answer.stop_reason, "end_turn", "the large request is served, not refused as too long");
      const error = (counted - served()) / served();
      t.diagnostic(
        `after 12 small requests (served/estimated ${ratios[0]!.toFixed(2)} at first, ${ratios.at(-1)!.toFixed(2)} at last): the ${served()}-token request estimated at ${counted} (${(error * 100).toFixed(1)}%)`,
      );
      assert.ok(Math.abs(error) < 0.15, `estimate of the large request off by ${(error * 100).toFixed(1)}%`);
      assert.ok(ratios.at(-1)! < 1.15 && ratios.at(-1)! > 0.85, "the small requests are estimated well too");
      assert.equal(
        gw.lines.find((l) => /cut the prompt silently/.test(l.msg)),
        undefined,
        "an honest count is not taken for a cut prompt",
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("the estimate is cheap: well under 0.2 ms for a 150 KB request", (t) => {
    const capture = JSON.parse(readCapture("anthropic-messages.custom.after-tool-result.json")) as Record<
      string,
      any
    >;
    // OpenClaw's request, its history repeated to 150 KB
    const messages = [...capture.messages];
    while (JSON.stringify({ ...capture, messages }).length < 150_000)
      messages.unshift(...capture.messages.slice(0, 2));
    const req = anthropicSurface.decode({ ...capture, messages });
    const size = JSON.stringify({ ...capture, messages }).length;
    // the best of 40 batches: the machine may be busy with other tests
    const best = (fn: () => unknown) => {
      let ms = Number.POSITIVE_INFINITY;
      for (let k = 0; k < 40; k++) {
        const started = performance.now();
        for (let i = 0; i < 25; i++) fn();
        ms = Math.min(ms, (performance.now() - started) / 25);
      }
      return ms;
    };
    const each = best(() => rawTokens(req));
    const stringify = best(() => JSON.stringify(req));
    t.diagnostic(
      `estimate of a ${Math.round(size / 1024)} KB request (${req.messages.length} messages): ${(each * 1000).toFixed(1)} µs; JSON.stringify of it: ${(stringify * 1000).toFixed(1)} µs`,
    );
    assert.ok(each < 0.2, `${each} ms`);
  });
});

function readCapture(file: string): string {
  return readFileSync(new URL(`../fixtures/openclaw/${file}`, import.meta.url), "utf8");
}

// ---------------------------------------------------------------------------------------------------------------
// window resolution and `clawbridge models`
// ---------------------------------------------------------------------------------------------------------------

describe("the window: configured beats served, with a warning", () => {
  test("chooseWindow: fixed-window servers", () => {
    const d = { name: "x", contextWindow: 8192, contextFrom: "/props n_ctx (per slot)" };
    const served = chooseWindow({ discovered: d, perRequest: false });
    assert.equal(served.window, 8192);
    assert.equal(served.info.source, "server");
    const configured = chooseWindow({ discovered: d, perRequest: false, configuredWindow: 32768 });
    assert.equal(configured.window, 32768);
    assert.match(
      configured.info.warnings[0]!,
      /context_window 32768 from config, but the server reports 8192/,
    );
    assert.equal(chooseWindow({ perRequest: false }).window, undefined);
  });

  test("config: fit_policy, reserve_output_tokens, vram_gb; a wrong fit_policy names the line", () => {
    const c = parseConfig(
      `
backends:
  o: { kind: ollama, url: "http://127.0.0.1:11434", vram_gb: 12.5 }
models:
  m: { backend: o, model: q, fit_policy: drop-oldest, reserve_output_tokens: 2048, num_ctx: 8192 }
`,
      "c.yaml",
      {},
    );
    assert.equal(c.backends[0]?.memoryBytes, Math.round(12.5 * 1024 ** 3));
    const t = c.models[0]!.targets[0]!;
    assert.deepEqual([t.fitPolicy, t.reserveOutputTokens, t.numCtx], ["drop-oldest", 2048, 8192]);
    assert.throws(
      () =>
        parseConfig(
          `backends:\n  o: { kind: ollama, url: "http://x:1" }\nmodels:\n  m: { backend: o, model: q, fit_policy: trim }\n`,
          "c.yaml",
          {},
        ),
      /c\.yaml:4: models\.m/,
    );
  });

  test("LiteLLM model_info.max_input_tokens states the window", async () => {
    const fake = await startOpenAICompatFake({ flavor: "llamacpp", contextLength: 8192 });
    const gw = await startLogged(`
model_list:
  - model_name: m
    litellm_params: { model: llamafile/fake-model, api_base: "${fake.url}/v1" }
    model_info: { max_input_tokens: 16384 }
`);
    try {
      const m = gw.router.models().find((x) => x.id === "m")!;
      assert.equal(m.contextWindow, 16384);
      assert.equal(m.context?.configured, 16384);
      assert.equal(m.context?.served, 8192);
      assert.ok(gw.lines.some((l) => /from config, but the server reports 8192/.test(l.msg)));
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("clawbridge models: served, configured, told, num_ctx and OpenClaw's 16k, as a table and JSON", async () => {
    const { listModels } = await import("../../src/cli/models.js");
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const ollama = await startOllamaFake({ models: [{ name: "qwen2.5:7b", contextLength: 32768 }] });
    const llama = await startOpenAICompatFake({ flavor: "llamacpp", contextLength: 8192 });
    const file = join(mkdtempSync(join(tmpdir(), "cb-")), "clawbridge.yaml");
    writeFileSync(
      file,
      `
backends:
  o: { kind: ollama, url: "${ollama.url}", discover: false }
  l: { kind: openai-compat, url: "${llama.url}", flavor: llamacpp, discover: false }
models:
  agent: { backend: o, model: "qwen2.5:7b" }
  small: { backend: l, model: fake-model }
  claimed: { backend: l, model: fake-model, context_window: 32768 }
`,
    );
    try {
      const lines: string[] = [];
      assert.equal(await listModels({ config: file, json: true }, (s) => lines.push(s)), 0);
      const rows = JSON.parse(lines.join("\n")).models as any[];
      const row = (id: string) => rows.find((r) => r.model === id);
      assert.deepEqual(
        [row("agent").told, row("agent").numCtx, row("agent").openclawOk, row("agent").trained],
        [32768, 32768, true, 32768],
      );
      assert.deepEqual(
        [row("small").served, row("small").told, row("small").openclawOk],
        [8192, 8192, false],
      );
      assert.deepEqual(
        [row("claimed").served, row("claimed").configured, row("claimed").told],
        [8192, 32768, 32768],
      );
      assert.match(row("claimed").warnings[0], /server reports 8192/);
      const table: string[] = [];
      await listModels({ config: file }, (s) => table.push(s));
      const text = table.join("\n");
      assert.match(text, /MODEL +BACKEND +SERVED +CONFIGURED +TOLD CLIENTS +NUM_CTX +OPENCLAW ≥16K/);
      assert.match(text, /small \(fake-model\) +l +8192 +- +8192 +- +NO/);
      assert.match(text, /warning: context_window 32768 from config/);
    } finally {
      await ollama.close();
      await llama.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// the fakes themselves, past their window (what the tests above rely on)
// ---------------------------------------------------------------------------------------------------------------

describe("fake servers past their window, as the real ones behave", () => {
  const post = (url: string, body: unknown) =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const long = [{ role: "user", content: prose(3000, 1) }];
  const short = [{ role: "user", content: "Hello there" }];

  test("llama.cpp: /apply-template + /tokenize count what /v1/chat/completions counts; 400 past n_ctx", async () => {
    const fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      contextLength: 2048,
      reply: { text: "hi" },
    });
    try {
      const { prompt } = (await (
        await post(`${fake.url}/apply-template`, { messages: short })
      ).json()) as any;
      assert.match(prompt, /^<\|start_header_id\|>user<\|end_header_id\|>\n\nHello there<\|eot_id\|>/);
      const tok = (await (
        await post(`${fake.url}/tokenize`, { content: prompt, add_special: true, parse_special: true })
      ).json()) as any;
      const chat = (await (
        await post(`${fake.url}/v1/chat/completions`, { messages: short, stream: false })
      ).json()) as any;
      assert.equal(chat.usage.prompt_tokens, tok.tokens.length);
      const over = await post(`${fake.url}/v1/chat/completions`, { messages: long, stream: true });
      assert.equal(over.status, 400);
      const err = ((await over.json()) as any).error;
      assert.equal(err.type, "exceed_context_size_error");
      assert.equal(err.n_ctx, 2048);
      assert.equal(
        err.message,
        `request (${err.n_prompt_tokens} tokens) exceeds the available context size (2048 tokens), try increasing it`,
      );
    } finally {
      await fake.close();
    }
  });

  test("vLLM: 400 past max_model_len, and past it with max_tokens", async () => {
    const fake = await startOpenAICompatFake({ flavor: "vllm", contextLength: 2048, models: ["v"] });
    try {
      const over = await post(`${fake.url}/v1/chat/completions`, { model: "v", messages: long });
      assert.equal(over.status, 400);
      assert.match(
        ((await over.json()) as any).error.message,
        /^This model's maximum context length is 2048 tokens\. However, your request has \d+ input tokens\./,
      );
      const asked = await post(`${fake.url}/v1/chat/completions`, {
        model: "v",
        messages: short,
        max_tokens: 4000,
      });
      assert.equal(asked.status, 400);
      assert.match(
        ((await asked.json()) as any).error.message,
        /'max_tokens' or 'max_completion_tokens' is too large: 4000/,
      );
    } finally {
      await fake.close();
    }
  });

  test("LM Studio: 200 and an empty stream; TinyGrad: a crash", async () => {
    const lm = await startOpenAICompatFake({ flavor: "lmstudio", contextLength: 2048, models: ["q"] });
    const tiny = await startOpenAICompatFake({ flavor: "tinygrad", contextLength: 2048, models: ["t"] });
    try {
      const empty = await post(`${lm.url}/v1/chat/completions`, { model: "q", messages: long, stream: true });
      assert.equal(empty.status, 200);
      assert.equal(await empty.text(), "");
      const crash = await post(`${tiny.url}/v1/chat/completions`, { model: "t", messages: long });
      assert.equal(crash.status, 500);
      assert.match(await crash.text(), /AssertionError: prompt of \d+ tokens does not fit max_context 2048/);
    } finally {
      await lm.close();
      await tiny.close();
    }
  });

  test("Ollama: cuts silently at the num_ctx in effect (the request's, else its default), capped at the trained context", async () => {
    const fake = await startOllamaFake({ models: [{ name: "q", contextLength: 8192 }], defaultNumCtx: 2048 });
    try {
      const chat = async (options: Record<string, unknown>) =>
        (await (
          await post(`${fake.url}/api/chat`, { model: "q", messages: long, stream: false, options })
        ).json()) as any;
      const full = chatTokensOf(long);
      assert.ok(full > 2048 && full < 8192, String(full));
      assert.equal((await chat({})).prompt_eval_count, 2048, "Ollama's own default");
      assert.equal((await chat({ num_ctx: 4096 })).prompt_eval_count, full > 4096 ? 4096 : full);
      assert.equal(
        (await chat({ num_ctx: 32768 })).prompt_eval_count,
        full,
        "capped at 8192, the prompt fits",
      );
      assert.equal(fake.requests.at(-1)?.prompt?.window, 8192);
    } finally {
      await fake.close();
    }
  });
});
