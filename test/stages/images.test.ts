/**
 * Images inside tool results (issue 17): Claude Code's Read on a PNG returns the image inside the tool_result.
 * A vision model gets it as an image in its wire's form; a model without vision gets a placeholder saying an
 * image was left out.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { PNG_1x1 } from "../backends/cases.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { startGateway } from "../helpers.js";

/** A Claude Code-shaped turn: it read a screenshot with its Read tool and sends the result back. */
function readPng(model: string) {
  return {
    model,
    max_tokens: 500,
    tools: [
      {
        name: "Read",
        description: "Reads a file",
        input_schema: { type: "object" as const, properties: { file_path: { type: "string" } } },
      },
    ],
    messages: [
      { role: "user" as const, content: "What is in shot.png?" },
      {
        role: "assistant" as const,
        content: [
          { type: "tool_use" as const, id: "toolu_01", name: "Read", input: { file_path: "/tmp/shot.png" } },
        ],
      },
      {
        role: "user" as const,
        content: [
          {
            type: "tool_result" as const,
            tool_use_id: "toolu_01",
            content: [
              {
                type: "image" as const,
                source: { type: "base64" as const, media_type: "image/png" as const, data: PNG_1x1 },
              },
            ],
          },
        ],
      },
    ],
  };
}

describe("images inside tool results", () => {
  test("Ollama: a vision model gets the PNG on the tool message; a model without vision a placeholder", async () => {
    const fake = await startOllamaFake({
      models: [
        { name: "qwen2.5vl:7b", capabilities: ["completion", "tools", "vision"] },
        { name: "qwen2.5-coder:7b", capabilities: ["completion", "tools"] },
      ],
      reply: { text: "A single pixel." },
    });
    const gw = await startGateway(`
backends:
  ol: { kind: ollama, url: "${fake.url}" }
models:
  seeing: { backend: ol, model: "qwen2.5vl:7b" }
  blind: { backend: ol, model: "qwen2.5-coder:7b" }
`);
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      const msg = await client.messages.create(readPng("seeing"));
      assert.deepEqual(msg.content, [{ type: "text", text: "A single pixel." }]);
      let sent = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body;
      const tool = sent.messages.find((m: any) => m.role === "tool");
      assert.deepEqual(tool.images, [PNG_1x1], "the image itself, raw base64, on the tool message");
      assert.equal(JSON.stringify(sent).includes("[image]"), false);

      await client.messages.create(readPng("blind"));
      sent = fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body;
      const blindTool = sent.messages.find((m: any) => m.role === "tool");
      assert.equal(blindTool.images, undefined);
      assert.match(blindTool.content, /an image was left out here: this model cannot see images/);
      assert.equal(JSON.stringify(sent).includes(PNG_1x1), false);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("OpenAI-compatible (llama.cpp): the PNG goes as an image_url in a user turn right after the tool results", async () => {
    const fake = await startOpenAICompatFake({ flavor: "llamacpp" });
    const gw = await startGateway(`
backends:
  l: { kind: openai-compat, url: "${fake.url}/v1", flavor: llamacpp }
models:
  seeing: { backend: l, model: "fake-model" }
`);
    try {
      fake.setReply({ text: "A single pixel." });
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      const msg = await client.messages.create(readPng("seeing"));
      assert.deepEqual(msg.content, [{ type: "text", text: "A single pixel." }]);
      const sent = fake.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.body;
      const roles = sent.messages.map((m: any) => m.role);
      const at = roles.indexOf("tool");
      assert.deepEqual(roles.slice(at), ["tool", "user"], "the image turn right after the tool result");
      assert.equal(typeof sent.messages[at].content, "string", "tool messages stay text");
      const image = sent.messages[at + 1].content.find((c: any) => c.type === "image_url");
      assert.equal(image.image_url.url, `data:image/png;base64,${PNG_1x1}`);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
