import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { emptyRequest } from "../helpers.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { oneBackend, startGateway } from "../helpers.js";
import type { Message } from "../../src/ir/types.js";
import type { ModelProfile } from "../../src/ir/contract.js";
import { conversationKeys, RecentConversations, SlotChooser } from "../../src/routing/conversations.js";

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

  test("background work keeps to a slot of its own; a new conversation takes it before a live one", () => {
    const slots = new SlotChooser(2);
    const a = slots.take(prompt(user("task A")));
    a.release();
    const titles = [0, 1, 2].map((i) => {
      const t = slots.take(prompt(user(`Write a title for conversation ${i}`)), true);
      t.release();
      return t.slot;
    });
    assert.ok(
      titles.every((s) => s !== a.slot),
      "no title evicts A",
    );
    const a2 = slots.take(prompt(user("task A"), assistant("a"), user("more A")));
    a2.release();
    assert.equal(a2.slot, a.slot);
    // a second conversation takes background's slot, not A's; background then has to share
    const b = slots.take(prompt(user("task B")));
    b.release();
    assert.equal(b.slot, titles[0]);
    const t = slots.take(prompt(user("Write a title")), true);
    t.release();
    assert.equal(t.slot, a.slot, "every slot holds a conversation: the least recently used");
  });

  test("a conversation whose slot background work took goes where it reads least", () => {
    const system = "Rules of the agent. ".repeat(250); // 5,000 characters, shared by both conversations
    const turn = (task: string, ...rest: Message[]) =>
      conversationKeys({ ...emptyRequest("m"), system, messages: [user(task), ...rest] });
    const slots = new SlotChooser(2);
    const a = slots.take(turn("task A"));
    a.release();
    const b = slots.take(turn("task B"));
    b.release();
    slots.take(prompt(user("Write a title")), true).release(); // every slot holds a conversation: A's goes
    // A's messages are short beside the system prompt: on B's slot it reads only them (B loses as little)
    const a2 = slots.take(turn("task A", assistant("a"), user("more A")));
    a2.release();
    assert.equal(a2.slot, b.slot);
    // with messages longer than the system prompt, evicting B costs more than reading all of A afresh
    const long = "a long tool result ".repeat(600);
    const slots2 = new SlotChooser(2);
    slots2.take(turn("task A", assistant(long))).release();
    const b3 = slots2.take(turn("task B", assistant(long)));
    b3.release();
    slots2.take(prompt(user("Write a title")), true).release();
    const a3 = slots2.take(turn("task A", assistant(long), user("more A")));
    assert.notEqual(a3.slot, b3.slot, "B keeps its slot");
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

  test("an agent and its title requests on two slots: the titles never evict the agent's prompt", async () => {
    const fake = await startOpenAICompatFake({ flavor: "llamacpp", slots: 2, contextLength: 32768 });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "fake-model", "    flavor: llamacpp"),
    );
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      const tools: OpenAI.ChatCompletionTool[] = [
        { type: "function", function: { name: "read", parameters: { type: "object", properties: {} } } },
      ];
      const h: OpenAI.ChatCompletionMessageParam[] = [
        { role: "system", content: "You are a coding agent." },
        { role: "user", content: `Task: ${"explain the build. ".repeat(60)}` },
      ];
      for (let turn = 0; turn < 3; turn++) {
        await client.chat.completions.create({ model: "test-model", messages: h, tools });
        h.push({ role: "assistant", content: "Working on it." }, { role: "user", content: `step ${turn}` });
        // background lane: no tools, a short output limit; two in a row (a title, a summary)
        for (const ask of ["Write a five-word title", "Summarise in one line"])
          await client.chat.completions.create({
            model: "test-model",
            max_tokens: 20,
            messages: [{ role: "user", content: `${ask} for: ${"the build ".repeat(40)} ${turn}` }],
          });
      }
      const sent = fake.requests.filter((r) => r.path === "/v1/chat/completions");
      const agent = sent.filter((r) => Array.isArray(r.body.tools));
      const titles = sent.filter((r) => !Array.isArray(r.body.tools));
      assert.equal(agent.length, 3);
      assert.equal(new Set(agent.map((r) => r.cache!.slot)).size, 1);
      assert.ok(
        titles.every((r) => r.cache!.slot !== agent[0]!.cache!.slot),
        "titles on the other slot",
      );
      for (const r of agent.slice(1)) {
        const fresh = r.prompt!.tokens - r.cache!.cached;
        assert.ok(fresh < 30, `${fresh} tokens read afresh of ${r.prompt!.tokens}`);
      }
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("cache_affinity: false sends no id_slot: the server picks the slot itself", async () => {
    const fake = await startOpenAICompatFake({ flavor: "llamacpp", slots: 2 });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "fake-model", "    flavor: llamacpp\n    cache_affinity: false"),
    );
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "k", maxRetries: 0 });
      await client.chat.completions.create({
        model: "test-model",
        messages: [{ role: "user", content: "hi" }],
      });
      const sent = fake.requests.filter((r) => r.path === "/v1/chat/completions");
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.body.id_slot, undefined);
      assert.equal(sent[0]!.body.cache_prompt, undefined);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("RecentConversations", () => {
  const profile = {} as ModelProfile;
  const req = (system: string, ...messages: Message[]) => ({ ...emptyRequest("m"), system, messages });
  const long = "You are an agent. ".repeat(4000);

  test("a conversation's later turn replaces its earlier one; others are kept apart, the last four", () => {
    const recent = new RecentConversations();
    recent.note(req(long, user("task A")), profile);
    recent.note(req(long, user("task B")), profile);
    recent.note(req(long, user("task A"), assistant("a"), user("more A")), profile);
    assert.deepEqual(
      recent.list().map((c) => c.req.messages.length),
      [1, 3],
      "B, then A's latest turn",
    );
    // another system prompt of the same length is another conversation (its ends differ)
    recent.note(req(`${long.slice(0, -3)}Go.`, user("task A")), profile);
    assert.equal(recent.list().length, 3);
    for (const t of ["C", "D", "E"]) recent.note(req(long, user(`task ${t}`)), profile);
    assert.equal(recent.list().length, 4);
    assert.deepEqual(
      recent.list().map((c) => (c.req.messages[0]!.parts[0] as { text: string }).text),
      ["task A", "task C", "task D", "task E"],
    );
  });
});
