import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { request } from "undici";
import { BACKENDS, toolResultIn } from "../backends/cases.js";
import type { FakeServer } from "../fakes/script.js";
import {
  checkAnthropicStream,
  checkOpenAIStream,
  parseSse,
  type RunningGateway,
  startGateway,
} from "../helpers.js";

/** Real OpenClaw requests (bodies as captured), replayed unchanged. */
const CAPTURES = [
  { file: "anthropic-messages.custom.turn1.json", path: "/v1/messages", dialect: "anthropic" },
  { file: "anthropic-messages.custom.after-tool-result.json", path: "/v1/messages", dialect: "anthropic" },
  { file: "openai-completions.turn1.json", path: "/v1/chat/completions", dialect: "openai" },
  { file: "openai-completions.after-tool-result.json", path: "/v1/chat/completions", dialect: "openai" },
] as const;

const load = (file: string) => readFileSync(new URL(`../fixtures/openclaw/${file}`, import.meta.url), "utf8");

for (const backend of BACKENDS) {
  describe(`OpenClaw captures → clawbridge → ${backend.kind}`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    before(async () => {
      fake = await backend.start();
      // The captures name the models "claude-mock" and "mock-model": serve both names.
      gw = await startGateway(`
backends:
  b:
    kind: ${backend.kind}
    url: "${fake.url}"
${backend.extra ?? ""}
models:
  claude-mock: { backend: b, model: "${backend.model}" }
  mock-model: { backend: b, model: "${backend.model}" }
`);
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    for (const cap of CAPTURES) {
      test(cap.file, async () => {
        const raw = load(cap.file);
        const body = JSON.parse(raw);
        const afterTool = cap.file.includes("after-tool-result");
        fake.setReply(
          afterTool
            ? { text: "The secret word is PAPAYA-42." }
            : { text: "Reading it.", toolCalls: [{ name: "read", arguments: { path: "hello.txt" } }] },
        );
        const res = await request(`${gw.url}${cap.path}`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-api-key": "sk-ant-whatever",
            "anthropic-version": "2023-06-01",
          },
          body: raw,
        });
        const text = await res.body.text();
        assert.equal(res.statusCode, 200, text);
        assert.match(String(res.headers["content-type"]), /text\/event-stream/);
        const events = parseSse(text);
        let stop: string;
        if (cap.dialect === "anthropic") {
          stop = checkAnthropicStream(events);
          assert.equal(stop, afterTool ? "end_turn" : "tool_use");
          const use = events.find((e) => e.data?.content_block?.type === "tool_use");
          if (!afterTool) assert.equal(use?.data.content_block.name, "read");
        } else {
          stop = checkOpenAIStream(events);
          assert.equal(stop, afterTool ? "stop" : "tool_calls");
          // include_usage was asked: a usage chunk precedes [DONE]
          assert.ok(events.at(-2)?.data.usage, "usage chunk");
        }

        // What the backend received: the whole system prompt, every tool, the history.
        const sent = backend.chats(fake).at(-1)!.body;
        const systemIn =
          cap.dialect === "anthropic"
            ? body.system.map((b: any) => b.text).join("\n\n")
            : body.messages[0].content;
        const systemOut = backend.kind === "anthropic" ? sent.system : sent.messages[0].content;
        assert.equal(systemOut, systemIn);
        assert.equal(sent.tools.length, body.tools.length);
        assert.ok(
          !JSON.stringify(sent).includes("cache_control"),
          "cache_control is not sent to the backend",
        );
        if (afterTool) {
          const result = toolResultIn(backend.kind, sent);
          assert.equal(result?.content.trim(), "The secret word is PAPAYA-42.");
          const wire = JSON.stringify(sent.messages);
          assert.ok(wire.includes("hello.txt"), "the assistant's tool call is in the history");
        }
        // the last user turn (OpenClaw's internal context block) is kept
        assert.ok(JSON.stringify(sent.messages.at(-1)).includes("OPENCLAW_INTERNAL_CONTEXT"));
      });
    }
  });
}
