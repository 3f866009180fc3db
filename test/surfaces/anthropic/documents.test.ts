/**
 * Anthropic `document` blocks: a text document (source type text, or content given as a string
 * or as text blocks) reaches the model as text, its title first; a PDF is left out and noted.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { decodeAnthropicRequest } from "../../../src/surfaces/anthropic/decode.js";
import { BACKENDS } from "../../backends/cases.js";
import type { FakeServer } from "../../fakes/script.js";
import { oneBackend, type RunningGateway, startGateway } from "../../helpers.js";

const PDF = "JVBERi0xLjQKJcOkw7zDtsOfCg==";

const CONTENT: Anthropic.ContentBlockParam[] = [
  {
    type: "document",
    title: "notes.txt",
    source: { type: "text", media_type: "text/plain", data: "The launch is on Tuesday." },
  },
  { type: "document", source: { type: "content", content: "Budget: 40k." } },
  {
    type: "document",
    source: { type: "content", content: [{ type: "text", text: "Owner: Ana." }] },
    context: "from the wiki",
  },
  { type: "document", source: { type: "base64", media_type: "application/pdf", data: PDF } },
  { type: "text", text: "Summarise these." },
];

test("decoded: each text document as text, the PDF noted as left out", () => {
  for (const viaSchema of [false, true]) {
    const req = decodeAnthropicRequest(
      { model: "m", max_tokens: 10, messages: [{ role: "user", content: CONTENT }] },
      viaSchema,
    );
    const texts = req.messages[0]!.parts.map((p) => (p.type === "text" ? p.text : p.type));
    assert.deepEqual(texts, [
      "notes.txt",
      "The launch is on Tuesday.",
      "Budget: 40k.",
      "from the wiki",
      "Owner: Ana.",
      "Summarise these.",
    ]);
    assert.equal(req.ignored.length, 1);
    assert.match(req.ignored[0]!, /^messages\.0\.content\.3\(document: application\/pdf, left out/);
  }
});

test("a text document whose data is not a string is a 400 naming it", () => {
  assert.throws(
    () =>
      decodeAnthropicRequest({
        model: "m",
        max_tokens: 10,
        messages: [{ role: "user", content: [{ type: "document", source: { type: "text", data: 5 } }] }],
      }),
    /messages\.0\.content\.0\.source\.data/,
  );
});

for (const backend of BACKENDS.filter((b) => b.kind !== "anthropic"))
  describe(`text documents → clawbridge → ${backend.kind}`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    before(async () => {
      fake = await backend.start();
      gw = await startGateway(oneBackend(backend.kind, fake.url, backend.model, backend.extra));
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    test("the model reads the documents' text; the PDF does not reach it", async () => {
      fake.setReply({ text: "Launch Tuesday, 40k, Ana." });
      const client = new Anthropic({ baseURL: gw.url, apiKey: "unused", maxRetries: 0 });
      const msg = await client.messages.create({
        model: "test-model",
        max_tokens: 100,
        messages: [{ role: "user", content: CONTENT }],
      });
      assert.deepEqual(msg.content, [{ type: "text", text: "Launch Tuesday, 40k, Ana." }]);
      const wire = JSON.stringify(backend.chats(fake).at(-1)!.body.messages);
      for (const t of [
        "The launch is on Tuesday.",
        "Budget: 40k.",
        "Owner: Ana.",
        "notes.txt",
        "Summarise these.",
      ])
        assert.ok(wire.includes(t), t);
      assert.ok(!wire.includes(PDF), "the PDF is not sent");
    });
  });
