/**
 * The Responses API's stored responses in the request journal's SQLite file (issue 20): a
 * conversation continued with `previous_response_id` or `item_reference` after the gateway
 * restarted, through the official SDK; `store: false` kept nowhere; the file's bounds; the
 * file readable by its user alone.
 * Run: node --import tsx --test test/journal/responses.test.ts
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { Journal } from "../../src/journal/journal.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { oneBackend, startGateway } from "../helpers.js";

const dir = () => mkdtempSync(join(tmpdir(), "cb-responses-"));
const msg = (id: string, text: string) => ({
  id,
  type: "message",
  role: "assistant",
  content: [{ type: "output_text", text }],
});

describe("stored responses in the journal's file", () => {
  test("a conversation goes on after the gateway restarts; store:false is kept nowhere", async () => {
    const path = join(dir(), "journal.db");
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }] });
    const config = oneBackend("ollama", fake.url, "qwen2.5:7b");
    const chats = () => fake.requests.filter((r) => r.path === "/api/chat");
    let journal = Journal.open({ path })!;
    let gw = await startGateway(config, { journal });
    let first: OpenAI.Responses.Response;
    let secret: OpenAI.Responses.Response;
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      fake.setReply({ text: "Paris is the capital." });
      first = await client.responses.create({ model: "test-model", input: "Capital of France?" });
      fake.setReply({ text: "Not kept." });
      secret = await client.responses.create({ model: "test-model", input: "A secret", store: false });
    } finally {
      await gw.close();
      journal.close();
    }
    // the file is its user's alone: it holds what clients asked
    assert.equal(statSync(path).mode & 0o777, 0o600);
    // one from before that rule (and its write-ahead log) is narrowed when opened
    chmodSync(path, 0o644);
    writeFileSync(`${path}-wal`, "");
    chmodSync(`${path}-wal`, 0o644);

    journal = Journal.open({ path })!;
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
    gw = await startGateway(config, { journal });
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      fake.setReply({ text: "About 2.1 million." });
      const second = await client.responses.create({
        model: "test-model",
        previous_response_id: first.id,
        input: "And its population?",
      });
      assert.equal(second.output_text, "About 2.1 million.");
      assert.deepEqual(
        chats()
          .at(-1)!
          .body.messages.map((m: any) => [m.role, m.content]),
        [
          ["user", "Capital of France?"],
          ["assistant", "Paris is the capital."],
          ["user", "And its population?"],
        ],
      );
      // an output item by reference (the AI SDK's way), also from before the restart
      fake.setReply({ text: "Yes." });
      await client.responses.create({
        model: "test-model",
        input: [
          { role: "user", content: "Capital of France?" },
          { type: "item_reference", id: first.output[0]!.id! },
          { role: "user", content: "Sure?" },
        ],
      });
      assert.equal(chats().at(-1)!.body.messages[1].content, "Paris is the capital.");
      // store:false: not continuable, before or after a restart
      const err = await client.responses
        .create({ model: "test-model", previous_response_id: secret.id, input: "more" })
        .catch((e: unknown) => e);
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.code, "previous_response_not_found");
      // the chain goes on from the response made after the restart, streamed
      fake.setReply({ text: "Good." });
      const third = await client.responses
        .stream({ model: "test-model", previous_response_id: second.id, input: "Thanks" })
        .finalResponse();
      assert.equal(third.output_text, "Good.");
      assert.equal(chats().at(-1)!.body.messages.length, 5);
    } finally {
      await gw.close();
      journal.close();
      await fake.close();
    }
    // what the file holds: the three stored responses (first, second, third) and the by-reference one
    const read = Journal.open({ path })!;
    try {
      assert.equal(read.responses!.count(), 4);
    } finally {
      read.close();
    }
  });

  test("read back before the write (the journal's next batch) and after; bounded by count, bytes and age", () => {
    const path = join(dir(), "journal.db");
    const journal = Journal.open({ path, maxMb: 1 })!;
    try {
      const store = journal.responses!;
      const put = (n: number, text: string) => {
        const items = [{ type: "message", role: "user", content: `q${n}` }, msg(`msg_${n}`, text)];
        const json = JSON.stringify(items);
        store.put(`resp_${n}`, json, [items[1]!], Buffer.byteLength(json));
      };
      put(1, "one");
      // queued, not yet written: read from the queue
      assert.equal(store.count(), 0);
      assert.deepEqual(store.get("resp_1")?.outputIds, ["msg_1"]);
      assert.equal((store.item("msg_1") as any).content[0].text, "one");
      journal.flush();
      assert.equal(store.count(), 1);
      assert.deepEqual(store.get("resp_1")?.items.length, 2);
      assert.equal((store.item("msg_1") as any).content[0].text, "one");
      assert.equal(store.get("resp_2"), undefined);
      assert.equal(store.item("msg_2"), undefined);

      // bytes: a quarter of the file's 1 MiB bound; 100 KB each, so the oldest go
      const big = "x".repeat(100_000);
      for (let n = 2; n <= 6; n++) put(n, big);
      journal.flush();
      journal.prune();
      assert.ok(store.count() <= 2, `${store.count()} kept`);
      assert.ok(store.get("resp_6"), "the newest is kept");
      assert.equal(store.get("resp_1"), undefined, "the oldest went first");
      assert.equal(store.item("msg_1"), undefined, "with its items");

      // one larger than the whole bound is not kept at all
      put(7, "y".repeat(400_000));
      journal.flush();
      assert.equal(store.get("resp_7"), undefined);
      assert.ok(store.get("resp_6"));

      // age: the journal's limit (14 days by default)
      journal.prune(Date.now() + 15 * 86_400_000);
      assert.equal(store.count(), 0);
      assert.equal(store.item("msg_6"), undefined);
    } finally {
      journal.close();
    }
  });
});
