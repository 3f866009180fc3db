import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { emptyRequest } from "../helpers.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { oneBackend, startGateway } from "../helpers.js";
import type { Message } from "../../src/ir/types.js";
import { conversationKeys, SlotChooser } from "../../src/routing/conversations.js";

const user = (t: string): Message => ({ role: "user", parts: [{ type: "text", text: t }] });
const assistant = (t: string): Message => ({ role: "assistant", parts: [{ type: "text", text: t }] });

function prompt(...messages: Message[]) {
  return conversationKeys({ ...emptyRequest("m"), system: "You are an agent.", messages });
}

describe("SlotChooser", () => {
  test("a conversation goes back to its slot; a new one to the least recently used idle slot", () => {
    const slots = new SlotChooser(2);
    const a1 = slots.take(prompt(user("task A")));
    a1.release();
    const b1 = slots.take(prompt(user("task B")));
    b1.release();
    assert.notEqual(a1.slot, b1.slot, "B does not evict A");
    const a2 = slots.take(prompt(user("task A"), assistant("a"), user("more A")));
    const b2 = slots.take(prompt(user("task B"), assistant("b"), user("more B")));
    assert.equal(a2.slot, a1.slot);
    assert.equal(b2.slot, b1.slot);
    a2.release();
    b2.release();
    // a title request (shares only the system prompt) takes the least recently used slot: A's
    const title = slots.take(prompt(user("Write a title")));
    assert.equal(title.slot, a1.slot);
  });

  test("one slot: everything goes to it; resize follows the server's slot count", () => {
    const slots = new SlotChooser(1);
    assert.equal(slots.take(prompt(user("x"))).slot, 0);
    slots.resize(4);
    assert.equal(slots.size, 4);
  });
});

describe("llama.cpp: cache_prompt and id_slot per conversation", () => {
  test("two agents interleaved on two slots: every turn after the first reads only its new tokens", async () => {
    const fake = await startOpenAICompatFake({ flavor: "llamacpp", slots: 2, contextLength: 32768 });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "fake-model", "    flavor: llamacpp"),
    );
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      const history = ["A", "B"].map((c): OpenAI.ChatCompletionMessageParam[] => [
        { role: "system", content: "You are a coding agent." },
        { role: "user", content: `Task ${c}: ${"explain the build. ".repeat(60)}` },
      ]);
      for (let turn = 0; turn < 4; turn++)
        for (const h of history) {
          await client.chat.completions.create({ model: "test-model", messages: h });
          h.push(
            { role: "assistant", content: "Hello from the fake backend." },
            { role: "user", content: `step ${turn}` },
          );
        }
      const sent = fake.requests.filter((r) => r.path === "/v1/chat/completions");
      for (const r of sent) assert.equal(r.body.cache_prompt, true);
      assert.deepEqual(
        sent.map((r) => r.body.id_slot),
        [0, 1, 0, 1, 0, 1, 0, 1],
      );
      for (const [i, r] of sent.entries()) {
        if (i < 2) continue;
        const fresh = r.prompt!.tokens - r.cache!.cached;
        assert.ok(fresh < 30, `request ${i}: ${fresh} tokens read afresh of ${r.prompt!.tokens}`);
      }
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
