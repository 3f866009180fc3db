/**
 * A client's stop sequence that ended the answer is reported as Anthropic's
 * `stop_reason: "stop_sequence"` with the sequence, where the server says which one stopped it
 * (vLLM's `stop_reason`, llama.cpp's native `stop_type`/`stopping_word`); where it does not
 * (Ollama's `done_reason`, llama.cpp's OpenAI fields say "stop" for the end of a turn and a stop
 * sequence alike) nothing is guessed: `end_turn`, `stop_sequence: null`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { ChatChunkDecoder } from "../../src/backends/openai-compat/decode.js";
import type { Event } from "../../src/ir/types.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { oneBackend, type RunningGateway, startGateway } from "../helpers.js";

const SERVERS = [
  {
    name: "vLLM",
    says: true,
    kind: "openai-compat",
    model: "fake-model",
    extra: "    flavor: vllm",
    start: () => startOpenAICompatFake({ flavor: "vllm" }),
  },
  {
    name: "llama.cpp",
    says: false,
    kind: "openai-compat",
    model: "fake-model",
    extra: "    flavor: llamacpp",
    start: () => startOpenAICompatFake({ flavor: "llamacpp" }),
  },
  {
    name: "Ollama",
    says: false,
    kind: "ollama",
    model: "qwen2.5:7b",
    extra: "",
    start: () => startOllamaFake({ models: [{ name: "qwen2.5:7b" }] }),
  },
];

for (const s of SERVERS)
  describe(`stop sequences → ${s.name}`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    before(async () => {
      fake = await s.start();
      gw = await startGateway(oneBackend(s.kind, fake.url, s.model, s.extra));
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    test(s.says ? "reported with the sequence" : "not guessed: end_turn", async () => {
      fake.setReply({ text: "Step one done.", stopSequence: "STEP 2" });
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "unused", maxRetries: 0 });
      const params = {
        model: "test-model",
        max_tokens: 100,
        stop_sequences: ["STEP 2", "STEP 3"],
        messages: [{ role: "user" as const, content: "Do step one" }],
      };
      const created = await anthropic.messages.create(params);
      const streamed = await anthropic.messages.stream(params).finalMessage();
      for (const m of [created, streamed]) {
        assert.deepEqual(m.content, [{ type: "text", text: "Step one done." }]);
        assert.equal(m.stop_reason, s.says ? "stop_sequence" : "end_turn");
        assert.equal(m.stop_sequence, s.says ? "STEP 2" : null);
      }
      // the OpenAI dialect has one reason for both
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const c = await openai.chat.completions.create({
        model: "test-model",
        stop: ["STEP 2"],
        messages: [{ role: "user", content: "Do step one" }],
      });
      assert.equal(c.choices[0]!.finish_reason, "stop");
    });
  });

test("llama.cpp's native fields (its __verbose object) name the stopping word; stop_reason numbers are tokens", () => {
  const decode = (chunks: unknown[]) => {
    const d = new ChatChunkDecoder("t");
    const out: Event[] = [];
    for (const c of chunks) d.push(JSON.stringify(c), out);
    d.end(out);
    return out.find((e) => e.type === "stop");
  };
  const choice = (delta: unknown, finish: string | null, extra = {}) => ({
    id: "x",
    model: "m",
    choices: [{ index: 0, delta, finish_reason: finish, ...extra }],
  });
  assert.deepEqual(
    decode([
      { ...choice({ content: "ok" }, null), __verbose: { stop_type: "word", stopping_word: "</s>" } },
      choice({}, "stop"),
    ]),
    { type: "stop", reason: "stop_sequence", stopSequence: "</s>" },
  );
  assert.deepEqual(
    decode([
      { ...choice({ content: "ok" }, null), __verbose: { stop_type: "eos", stopping_word: "" } },
      choice({}, "stop"),
    ]),
    { type: "stop", reason: "end_turn" },
  );
  assert.deepEqual(decode([choice({ content: "ok" }, "stop", { stop_reason: 128009 })]), {
    type: "stop",
    reason: "end_turn",
  });
  // a cut answer stays cut, whatever else is said
  assert.deepEqual(decode([choice({ content: "ok" }, "length", { stop_reason: "x" })]), {
    type: "stop",
    reason: "max_tokens",
  });
});
