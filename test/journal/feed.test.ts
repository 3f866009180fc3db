/**
 * The live feed a dashboard builds on: a request in flight shows with its phase as it moves
 * (loading → reading the prompt → generating), and its entry comes when it is done.
 * Run: node --import tsx --test test/journal/feed.test.ts
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LiveRequest, RequestEntry } from "../../src/journal/entry.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { startGateway } from "../helpers.js";

test("a streaming request's phases, the in-flight snapshot, and its entry when done", async () => {
  // no headers for 300 ms (a model loading), then a chunk every 30 ms
  const fake = await startOpenAICompatFake({
    flavor: "llamacpp",
    reply: { text: "a few words of answer", chunkSize: 3, fault: { kind: "slowLoad", ms: 300, chunkMs: 30 } },
  });
  const gw = await startGateway(`
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: llamacpp }
models:
  test-model: { backend: b, model: "fake-model" }
`);
  try {
    const phases: string[] = [];
    const snapshots: LiveRequest[][] = [];
    let done: RequestEntry | undefined;
    gw.feed.on("update", (r) => {
      if (phases.at(-1) !== r.phase) phases.push(r.phase);
      if (r.phase === "loading") snapshots.push(gw.feed.inFlight());
    });
    gw.feed.on("done", (e) => {
      done = e;
    });
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "test-model",
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    assert.match(await res.text(), /\[DONE\]/);
    for (let i = 0; i < 50 && !done; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(phases, ["received", "loading", "reading the prompt", "generating"]);
    assert.equal(snapshots[0]!.length, 1);
    assert.equal(snapshots[0]![0]!.model, "test-model");
    assert.equal(snapshots[0]![0]!.backend, "b");
    assert.equal(done?.id, snapshots[0]![0]!.id);
    assert.equal(done?.status, 200);
    assert.deepEqual(gw.feed.inFlight(), [], "nothing in flight once it is done");
    const at = Object.fromEntries(done!.timeline.map((t) => [t.event, t.ms]));
    assert.ok(at.headers! >= 250, `the head came after the load: ${JSON.stringify(done!.timeline)}`);
    assert.ok(at["first token"]! >= at.headers!);
    assert.ok(at.done! >= at["first token"]!);
  } finally {
    await gw.close();
    await fake.close();
  }
});
