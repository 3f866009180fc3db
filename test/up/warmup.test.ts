/**
 * Warming the real prefix: after the backend's server starts again (a new, empty prompt cache),
 * the last conversations' latest requests are replayed with max_tokens 1, so each one's next turn
 * reads only its new tokens.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { silentLogger } from "../../src/log.js";
import { warmConversations } from "../../src/up/warmup.js";
import { listenOn } from "../fakes/core.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, RecordedRequest } from "../fakes/script.js";
import { oneBackend, startGateway } from "../helpers.js";

type Msg = OpenAI.Chat.ChatCompletionMessageParam;

const SYSTEM = `You are a coding agent. ${"Follow the rules of the project. ".repeat(60)}`;

/** A fake llama-server on `port` (0: any), as `up` would start it again: nothing in its cache. */
async function llamaServer(port = 0): Promise<FakeServer> {
  listenOn.port = port;
  try {
    return await startOpenAICompatFake({
      flavor: "llamacpp",
      slots: 2,
      contextLength: 32768,
      reply: { text: "Done." },
    });
  } finally {
    listenOn.port = 0;
  }
}

const chats = (f: FakeServer): RecordedRequest[] =>
  f.requests.filter((r) => r.path === "/v1/chat/completions");

describe("warming the real prefix after a restart", () => {
  test("the last conversations are replayed; the next turn reads only its new tokens", async () => {
    let fake = await llamaServer();
    const port = Number(new URL(fake.url).port);
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "fake-model", "    flavor: llamacpp"),
    );
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 2 });
    const turn = async (messages: Msg[]) => {
      const r = await client.chat.completions.create({ model: "test-model", messages });
      return r.choices[0]!.message.content!;
    };
    try {
      const a: Msg[] = [
        { role: "system", content: SYSTEM },
        { role: "user", content: `Task A: ${"refactor the parser ".repeat(40)}` },
      ];
      a.push({ role: "assistant", content: await turn(a) });
      a.push({ role: "user", content: `Tool output for A: ${"line of output ".repeat(80)}` });
      a.push({ role: "assistant", content: await turn(a) });
      const b: Msg[] = [
        { role: "system", content: SYSTEM },
        { role: "user", content: `Task B: ${"write the docs ".repeat(40)}` },
      ];
      b.push({ role: "assistant", content: await turn(b) });
      // a title request (background work) is not one of the conversations kept
      await client.chat.completions.create({
        model: "test-model",
        max_tokens: 20,
        messages: [{ role: "user", content: "Write a 3-word title for: refactor the parser" }],
      });

      // the server starts again: a new process, nothing in its cache
      await fake.close();
      fake = await llamaServer(port);
      const backend = gw.router.backends.get("b")!;
      backend.forget?.();
      const recent = gw.router.recentConversations("b");
      assert.equal(recent.length, 2, "A and B, not the title request");
      const warmed = await warmConversations(recent, silentLogger, new AbortController().signal);
      assert.deepEqual(
        warmed.map((w) => [w.messages, w.error]),
        [
          [3, undefined],
          [1, undefined],
        ],
        "A's latest request (3 messages after the system prompt) then B's (1), both answered",
      );
      const replays = chats(fake);
      assert.equal(replays.length, 2);
      for (const r of replays) assert.equal(r.body.max_tokens, 1, "one token asked for");
      assert.notEqual(replays[0]!.cache!.slot, replays[1]!.cache!.slot, "each on a slot of its own");
      assert.equal(replays[0]!.cache!.cached, 0, "the new server had nothing cached");

      // A's next turn: its prefix is in the cache, only the new messages are read
      a.push({ role: "user", content: "Now run the tests." });
      await turn(a);
      const next = chats(fake).at(-1)!;
      const warmTokens = replays[0]!.prompt!.tokens;
      assert.ok(
        next.cache!.cached >= warmTokens - 1,
        `turn 3 of A found the warmed prompt in the cache (${next.cache!.cached} of ${warmTokens})`,
      );
      const read = next.prompt!.tokens - next.cache!.cached;
      assert.ok(read < 30, `only the new tokens were read: ${read} of ${next.prompt!.tokens}`);
      // B too, on its own slot
      b.push({ role: "user", content: "Go on." });
      await turn(b);
      const nextB = chats(fake).at(-1)!;
      assert.ok(nextB.cache!.cached >= replays[1]!.prompt!.tokens - 1);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
