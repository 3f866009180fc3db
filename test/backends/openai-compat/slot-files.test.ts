/**
 * llama.cpp slot files (`--slot-save-path`): a conversation evicted from the server's only slot is
 * saved before the other takes it, and restored when it returns, so its turn reads only its new
 * tokens; a server started without it refuses once (501) and is never asked again.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { startOpenAICompatFake } from "../../fakes/openai-compat.js";
import type { FakeServer, RecordedRequest } from "../../fakes/script.js";
import { oneBackend, startGateway } from "../../helpers.js";

type Msg = OpenAI.Chat.ChatCompletionMessageParam;

const SYSTEM = `You are a coding agent. ${"Follow the rules of the project. ".repeat(40)}`;
const chats = (f: FakeServer): RecordedRequest[] =>
  f.requests.filter((r) => r.path === "/v1/chat/completions");
const slotCalls = (f: FakeServer) =>
  f.requests.filter((r) => r.path.startsWith("/slots/")).map((r) => `${r.path} ${JSON.stringify(r.body)}`);

async function twoConversations(fake: FakeServer) {
  const gw = await startGateway(oneBackend("openai-compat", fake.url, "fake-model", "    flavor: llamacpp"));
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
  const turn = async (messages: Msg[]) => {
    const r = await client.chat.completions.create({ model: "test-model", messages });
    messages.push({ role: "assistant", content: r.choices[0]!.message.content! });
  };
  const a: Msg[] = [
    { role: "system", content: SYSTEM },
    { role: "user", content: `Task A: ${"refactor the parser ".repeat(60)}` },
  ];
  const b: Msg[] = [
    { role: "system", content: SYSTEM },
    { role: "user", content: `Task B: ${"write the docs ".repeat(60)}` },
  ];
  return { gw, a, b, turn };
}

describe("llama.cpp slot files", () => {
  test("an evicted conversation is saved, and restored when it returns", async () => {
    const fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      slots: 1,
      slotSavePath: true,
      contextLength: 32768,
    });
    const { gw, a, b, turn } = await twoConversations(fake);
    try {
      await turn(a);
      assert.deepEqual(slotCalls(fake), [], "nothing to save on an empty slot");
      await turn(b); // takes A's slot: A is saved first
      const [save] = slotCalls(fake);
      assert.match(save!, /^\/slots\/0\?action=save \{"filename":"clawbridge-\d\.bin"\}$/);
      const file = JSON.parse(save!.slice(save!.indexOf(" ") + 1)).filename;
      const aTokens = chats(fake)[0]!.prompt!.tokens;

      a.push({ role: "user", content: "Now run the tests." });
      await turn(a); // B is saved, A restored, then A's turn
      const calls = slotCalls(fake);
      assert.equal(calls.length, 3, calls.join("\n"));
      assert.match(calls[1]!, /action=save/);
      assert.notEqual(JSON.parse(calls[1]!.slice(calls[1]!.indexOf(" ") + 1)).filename, file, "B's own file");
      assert.equal(calls[2], `/slots/0?action=restore {"filename":"${file}"}`);
      const third = chats(fake).at(-1)!;
      assert.ok(
        third.cache!.cached >= aTokens - 1,
        `A's prefix came back (${third.cache!.cached} of ${aTokens})`,
      );
      assert.ok(third.prompt!.tokens - third.cache!.cached < 40, "A read only its new tokens");

      b.push({ role: "user", content: "Go on." });
      await turn(b);
      const fourth = chats(fake).at(-1)!;
      assert.ok(fourth.cache!.cached >= chats(fake)[1]!.prompt!.tokens - 1, "B's prefix came back too");
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("a server without --slot-save-path refuses once and is not asked again", async () => {
    const fake = await startOpenAICompatFake({ flavor: "llamacpp", slots: 1, contextLength: 32768 });
    const { gw, a, b, turn } = await twoConversations(fake);
    try {
      await turn(a);
      await turn(b);
      a.push({ role: "user", content: "Now run the tests." });
      await turn(a);
      b.push({ role: "user", content: "Go on." });
      await turn(b);
      const calls = fake.requests.filter((r) => r.path.startsWith("/slots/"));
      assert.equal(calls.length, 1, "one try");
      assert.equal(chats(fake).length, 4, "every turn answered");
      assert.equal(a.at(-1)!.content, b.at(-1)!.content);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
