/**
 * The tool-call corpus end to end: each answer is scripted into a fake local backend, streamed
 * in a random chunking, and read back through both surfaces, streaming and not, with the
 * official SDKs. Calls written as text must reach the client as real calls (with the text
 * around them and stop reason tool use); answers that are not calls must reach it unchanged.
 * The rescue rate and the false-positive count are printed.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startOllamaFake } from "../../fakes/ollama.js";
import { startOpenAICompatFake } from "../../fakes/openai-compat.js";
import type { FakeServer } from "../../fakes/script.js";
import {
  CORPUS,
  CORPUS_TOOLS,
  type CorpusCase,
  type ExpectedCall,
  prng,
  words,
} from "../../fixtures/tool-corpus.js";
import {
  checkAnthropicStream,
  checkOpenAIStream,
  oneBackend,
  parseSse,
  type RunningGateway,
  startGateway,
} from "../../helpers.js";

interface LocalBackend {
  name: string;
  kind: string;
  model: string;
  extra?: string;
  start(): Promise<FakeServer>;
}

const BACKENDS: LocalBackend[] = [
  {
    name: "ollama",
    kind: "ollama",
    model: "qwen2.5:7b",
    start: () =>
      startOllamaFake({
        models: [{ name: "qwen2.5:7b", capabilities: ["completion", "tools", "thinking"] }],
      }),
  },
  {
    name: "llama.cpp",
    kind: "openai-compat",
    model: "fake-model",
    extra: "    flavor: llamacpp",
    start: () => startOpenAICompatFake({ flavor: "llamacpp" }),
  },
  {
    // text only: tools are emulated, reasoning comes inside <think> in the text
    name: "tinygrad",
    kind: "openai-compat",
    model: "fake-model",
    extra: "    flavor: tinygrad",
    start: () => startOpenAICompatFake({ flavor: "tinygrad" }),
  },
];

/** What a client ended up with, whatever its surface. */
interface Seen {
  calls: ExpectedCall[];
  /** Text blocks, in order. */
  texts: string[];
  thinking: string;
  stop: "tool_use" | "end_turn" | "max_tokens" | string;
}

const ANTHROPIC_TOOLS = CORPUS_TOOLS.map((t) => ({
  name: t.name,
  description: t.description ?? "",
  input_schema: t.inputSchema as Anthropic.Tool.InputSchema,
}));
const OPENAI_TOOLS = CORPUS_TOOLS.map((t) => ({
  type: "function" as const,
  function: { name: t.name, description: t.description ?? "", parameters: t.inputSchema },
}));
const MESSAGES = [{ role: "user" as const, content: "Help me with this, using the tools." }];

function fromAnthropic(msg: Anthropic.Message): Seen {
  const seen: Seen = { calls: [], texts: [], thinking: "", stop: msg.stop_reason ?? "" };
  for (const b of msg.content) {
    if (b.type === "text") seen.texts.push(b.text);
    else if (b.type === "thinking") seen.thinking += b.thinking;
    else if (b.type === "tool_use")
      seen.calls.push({ name: b.name, input: b.input as Record<string, unknown> });
  }
  return seen;
}

const FINISH: Record<string, string> = { tool_calls: "tool_use", stop: "end_turn", length: "max_tokens" };

function fromOpenAI(
  content: string | null | undefined,
  reasoning: string | undefined,
  calls: Array<{ name: string; arguments: string }>,
  finish: string | null | undefined,
): Seen {
  return {
    calls: calls.map((c) => ({ name: c.name, input: JSON.parse(c.arguments) })),
    texts: content ? [content] : [],
    thinking: reasoning ?? "",
    stop: FINISH[finish ?? ""] ?? String(finish),
  };
}

type Run = (anthropic: Anthropic, openai: OpenAI) => Promise<Seen>;

const RUNS: Record<string, Run> = {
  "anthropic, not streamed": async (a) =>
    fromAnthropic(
      await a.messages.create({
        model: "test-model",
        max_tokens: 1024,
        tools: ANTHROPIC_TOOLS,
        messages: MESSAGES,
      }),
    ),
  "anthropic, streamed": async (a) =>
    fromAnthropic(
      await a.messages
        .stream({ model: "test-model", max_tokens: 1024, tools: ANTHROPIC_TOOLS, messages: MESSAGES })
        .finalMessage(),
    ),
  "openai, not streamed": async (_a, o) => {
    const res = await o.chat.completions.create({
      model: "test-model",
      tools: OPENAI_TOOLS,
      messages: MESSAGES,
    });
    const choice = res.choices[0]!;
    const message = choice.message as typeof choice.message & { reasoning_content?: string };
    const calls = (message.tool_calls ?? []).flatMap((t) => (t.type === "function" ? [t.function] : []));
    return fromOpenAI(message.content, message.reasoning_content, calls, choice.finish_reason);
  },
  "openai, streamed": async (_a, o) => {
    // assembled by hand from the chunks, as a client without the SDK's helper does
    const stream = await o.chat.completions.create({
      model: "test-model",
      tools: OPENAI_TOOLS,
      messages: MESSAGES,
      stream: true,
    });
    let content = "";
    let reasoning = "";
    let finish: string | null | undefined;
    const calls: Array<{ name: string; arguments: string }> = [];
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      const delta = choice.delta as typeof choice.delta & { reasoning_content?: string };
      content += delta.content ?? "";
      reasoning += delta.reasoning_content ?? "";
      for (const tc of delta.tool_calls ?? []) {
        calls[tc.index] ??= { name: "", arguments: "" };
        calls[tc.index]!.name += tc.function?.name ?? "";
        calls[tc.index]!.arguments += tc.function?.arguments ?? "";
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    return fromOpenAI(content, reasoning, calls, finish);
  },
};

/** Checks what the client saw against the case. */
function check(c: CorpusCase, seen: Seen, label: string): void {
  if (c.format === "none") {
    assert.deepEqual(seen.calls, [], `${label}: a call where there is none`);
    assert.equal(seen.stop, "end_turn", label);
    // unchanged: byte for byte where there is no reasoning to move between blocks
    if (!c.reasoning) assert.deepEqual(seen.texts, [c.text], label);
    assert.equal(
      words(`${seen.thinking} ${seen.texts.join(" ")}`),
      words(`${c.reasoning ?? ""} ${c.text}`),
      label,
    );
    return;
  }
  assert.deepEqual(seen.calls, c.calls, `${label}: calls`);
  assert.equal(seen.stop, c.finishReason === "length" ? "max_tokens" : "tool_use", `${label}: stop reason`);
  assert.equal(words(`${seen.thinking} ${seen.texts.join(" ")}`), words(c.visible ?? ""), `${label}: text`);
}

const tally = { positive: 0, rescued: 0, negative: 0, falsePositiveRuns: 0, falsePositiveCalls: 0 };
const rand = prng(20261120);

for (const backend of BACKENDS) {
  describe(`tool corpus through ${backend.name}`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    let anthropic: Anthropic;
    let openai: OpenAI;
    before(async () => {
      fake = await backend.start();
      gw = await startGateway(oneBackend(backend.kind, fake.url, backend.model, backend.extra));
      anthropic = new Anthropic({ baseURL: gw.url, apiKey: "unused", maxRetries: 0 });
      openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    for (const c of CORPUS) {
      // drawn when the suite is defined, so the chunking does not depend on the run's order
      const chunkSizes = Object.keys(RUNS).map(() => 1 + Math.floor(rand() * 12));
      test(`${c.id} (${c.format})`, async () => {
        const failures: unknown[] = [];
        for (const [i, [name, run]] of Object.entries(RUNS).entries()) {
          fake.setReply({
            text: c.text,
            ...(c.reasoning ? { reasoning: c.reasoning } : {}),
            ...(c.finishReason ? { finishReason: c.finishReason } : {}),
            chunkSize: chunkSizes[i]!,
          });
          const label = `${backend.name}, ${name}, chunks of ${chunkSizes[i]}`;
          const seen = await run(anthropic, openai);
          if (c.format === "none") {
            tally.negative++;
            if (seen.calls.length) tally.falsePositiveRuns++;
            tally.falsePositiveCalls += seen.calls.length;
          } else tally.positive++;
          try {
            check(c, seen, label);
            if (c.format !== "none") tally.rescued++;
          } catch (e) {
            failures.push(e); // every path is tried, so the tally counts them all
          }
        }
        // the streams' grammar, read raw: blocks opened and closed in order around rescued calls
        const expected = c.format === "none" ? ["end_turn", "stop"] : ["tool_use", "tool_calls"];
        if (c.finishReason === "length") expected.splice(0, 2, "max_tokens", "length");
        fake.setReply({
          text: c.text,
          ...(c.reasoning ? { reasoning: c.reasoning } : {}),
          ...(c.finishReason ? { finishReason: c.finishReason } : {}),
          chunkSize: 3,
        });
        const raw = await rawStreams(gw.url);
        try {
          assert.equal(checkAnthropicStream(raw.anthropic), expected[0]);
          assert.equal(checkOpenAIStream(raw.openai), expected[1]);
        } catch (e) {
          failures.push(e);
        }
        if (failures.length) throw failures[0];
      });
    }
  });
}

/** Both surfaces' SSE streams for the corpus request, parsed but otherwise as sent. */
async function rawStreams(url: string) {
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200);
    return parseSse(await res.text());
  };
  const anthropic = await post(
    "/v1/messages",
    { model: "test-model", max_tokens: 1024, tools: ANTHROPIC_TOOLS, messages: MESSAGES, stream: true },
    { "anthropic-version": "2023-06-01" },
  );
  const openai = await post("/v1/chat/completions", {
    model: "test-model",
    tools: OPENAI_TOOLS,
    messages: MESSAGES,
    stream: true,
  });
  return { anthropic, openai };
}

after(() => {
  const rate = tally.positive ? (100 * tally.rescued) / tally.positive : 0;
  const formats = new Set(CORPUS.map((c) => c.format));
  console.log(
    `tool corpus: ${CORPUS.length} answers (${CORPUS.filter((c) => c.format !== "none").length} with calls in ` +
      `${formats.size - 1} formats, ${CORPUS.filter((c) => c.format === "none").length} without) × ` +
      `${BACKENDS.length} backends × ${Object.keys(RUNS).length} client paths: ` +
      `rescue rate ${tally.rescued}/${tally.positive} (${rate.toFixed(1)}%), ` +
      `false positives ${tally.falsePositiveCalls} call(s) in ${tally.falsePositiveRuns}/${tally.negative} runs`,
  );
});
