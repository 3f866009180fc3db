/**
 * /metrics after real requests: time to first token and duration histograms by model and
 * backend, token counters, and labels bounded to what the gateway serves (a client's made-up model
 * names become `other`).
 * Run: node --import tsx --test test/server/metrics-latency.test.ts
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { type RunningGateway, startGateway } from "../helpers.js";

describe("latency and token metrics", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  let text: string;

  before(async () => {
    fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      reply: { text: "Four words of answer.", usage: { prompt: 13, completion: 4 } },
    });
    gw = await startGateway(`
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: llamacpp }
models:
  test-model: { backend: b, model: "fake-model" }
`);
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "none", maxRetries: 0 });
    for (const stream of [false, true, true]) {
      const r = await client.chat.completions.create({
        model: "test-model",
        messages: [{ role: "user", content: "hi" }],
        stream,
        ...(stream ? { stream_options: { include_usage: true } } : {}),
      } as any);
      if (stream) for await (const _ of r as any);
    }
    // names no one serves: each is a 404, and none of them may become a label
    for (let i = 0; i < 5; i++)
      await client.chat.completions
        .create({ model: `made-up-${i}`, messages: [{ role: "user", content: "hi" }] })
        .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    text = await (await fetch(`${gw.url}/metrics`)).text();
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  test("the histograms count every generation by model and backend", () => {
    assert.match(text, /# TYPE clawbridge_time_to_first_token_seconds histogram/);
    assert.match(text, /# TYPE clawbridge_request_duration_seconds histogram/);
    assert.match(text, /clawbridge_time_to_first_token_seconds_count\{model="test-model",backend="b"\} 3\n/);
    assert.match(text, /clawbridge_request_duration_seconds_count\{model="test-model",backend="b"\} 3\n/);
    assert.match(
      text,
      /clawbridge_time_to_first_token_seconds_bucket\{model="test-model",backend="b",le="\+Inf"\} 3\n/,
    );
    // the failed ones: never sent, under one bounded label
    assert.match(text, /clawbridge_request_duration_seconds_count\{model="other",backend="none"\} 5\n/);
  });

  test("token counters: input, output, and the old prompt counter still there", () => {
    assert.match(text, /clawbridge_tokens_total\{model="test-model",backend="b",direction="input"\} 39\n/);
    assert.match(text, /clawbridge_tokens_total\{model="test-model",backend="b",direction="output"\} 12\n/);
    assert.match(text, /clawbridge_prompt_tokens_total\{model="test-model",from="evaluated"\} 39\n/);
  });

  test("labels stay bounded: no client-chosen model name appears", () => {
    assert.doesNotMatch(text, /made-up/);
  });
});
