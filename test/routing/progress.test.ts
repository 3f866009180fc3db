/**
 * Prompt progress (llama.cpp `return_progress`): a prompt that takes longer to read than the fixed
 * first-token limit, visibly progressing, is not cut off, and the client's stream is kept alive
 * with it; one whose reading stops still is, with an error that says where it stopped.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { checkAnthropicStream, checkOpenAIStream, parseSse, startGateway } from "../helpers.js";

/** The fixed first-token limit: far shorter than the prompt takes to read. */
const FIRST_TOKEN_MS = 300;

function config(url: string): string {
  return `
backends:
  b:
    kind: openai-compat
    url: "${url}"
    flavor: llamacpp
    breaker: { failures: 0 }
    timeouts: { connect_ms: 1000, load_ms: 2000, first_token_ms: ${FIRST_TOKEN_MS}, idle_ms: 2000, total_ms: 20000 }
models:
  test-model: { backend: b, model: "fake-model" }
`;
}

/** A prompt of some 1,500 tokens (the fake's tokenizer: a word is a token). */
const LONG = "word ".repeat(1500);

async function post(
  url: string,
  dialect: "anthropic" | "openai",
  stream: boolean,
  content = LONG,
): Promise<Response> {
  const anthropic = dialect === "anthropic";
  return fetch(`${url}${anthropic ? "/v1/messages" : "/v1/chat/completions"}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(anthropic ? { "anthropic-version": "2023-06-01" } : {}),
    },
    body: JSON.stringify({
      model: "test-model",
      max_tokens: 50,
      stream,
      messages: [{ role: "user", content }],
    }),
  });
}

describe("prompt progress (llama.cpp)", () => {
  test("a prompt read slower than first_token_ms but visibly progressing is answered; the stream is kept alive", async () => {
    // 8 batches of 200 tokens, 150 ms each: some 1.2 s of reading against a 300 ms limit
    const fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      promptReading: { batch: 200, batchMs: 150 },
      reply: { text: "Read it all." },
    });
    // the stream opens on its own only after 10 s of silence: what keeps it alive here is the progress
    const gw = await startGateway(config(fake.url), { keepAliveAfterMs: 10_000, pingIntervalMs: 10_000 });
    const shown: string[] = [];
    gw.feed.on("update", (r) => {
      if (r.progress) shown.push(r.progress);
    });
    try {
      const a = await post(gw.url, "anthropic", true);
      assert.equal(a.status, 200);
      const aText = await a.text();
      const aEvents = parseSse(aText);
      assert.match(shown[0]!, /^reading the prompt 0\/1,5\d\d$/, "the live feed shows the 0 % report");
      assert.ok(
        shown.some((w) => /^reading the prompt 1,400\/1,5\d\d$/.test(w)),
        `and how far it came (${shown.join("; ")})`,
      );
      const pings = aEvents.filter((e) => e.event === "ping").length;
      assert.ok(pings >= 5, `Anthropic client got a ping per progress report (${pings})`);
      assert.equal(checkAnthropicStream(aEvents), "end_turn");
      const text = aEvents
        .filter((e) => e.data?.delta?.type === "text_delta")
        .map((e) => e.data.delta.text)
        .join("");
      assert.equal(text, "Read it all.");

      const o = await post(gw.url, "openai", true, `Another task. ${LONG}`);
      assert.equal(o.status, 200);
      const oText = await o.text();
      const comments = oText.match(/^: keep-alive$/gm)?.length ?? 0;
      assert.ok(comments >= 5, `OpenAI client got keep-alive comments (${comments})`);
      const chunks = parseSse(oText);
      assert.equal(checkOpenAIStream(chunks), "stop");
      const said = chunks.map((c) => c.data?.choices?.[0]?.delta?.content ?? "").join("");
      assert.equal(said, "Read it all.");

      // a client that does not stream waits it out as well
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      const r = await client.chat.completions.create({
        model: "test-model",
        messages: [{ role: "user", content: `A third task. ${LONG}` }],
      });
      assert.equal(r.choices[0]!.message.content, "Read it all.");

      // the gateway asked for progress
      const sent = fake.requests.filter((r) => r.path === "/v1/chat/completions");
      assert.ok(sent.every((r) => (r.body as { return_progress?: unknown }).return_progress === true));
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("a prompt whose reading stops is cut off by the first-token limit, with where it stopped", async () => {
    const fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      promptReading: { batch: 200, batchMs: 100, stallAfter: 3 },
    });
    const gw = await startGateway(config(fake.url), { keepAliveAfterMs: 10_000, pingIntervalMs: 10_000 });
    try {
      const started = performance.now();
      const a = await post(gw.url, "anthropic", true);
      assert.equal(a.status, 200, "opened by the progress");
      const events = parseSse(await a.text());
      const err = events.find((e) => e.event === "error");
      assert.ok(err, "an error event ends the stream");
      assert.equal(err.data.error.type, "timeout_error");
      assert.match(err.data.error.message, /stopped reading the prompt at 400\/1,5\d\d tokens/);
      assert.match(err.data.error.message, /first_token_ms/);
      assert.ok(!events.some((e) => e.event === "message_stop"));
      assert.ok(performance.now() - started < 8000, "cut off, not left hanging");

      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      await assert.rejects(
        client.chat.completions.create({
          model: "test-model",
          messages: [{ role: "user", content: `Another task. ${LONG}` }],
        }),
        (e: InstanceType<typeof OpenAI.APIError>) => {
          assert.equal(e.status, 504);
          assert.match(e.message, /stopped reading the prompt at 4\d\d\/1,5\d\d tokens/);
          return true;
        },
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
