/**
 * `GET /v1/models` and `/v1/models/{id}` with both SDKs, and how Claude names a config does not
 * list reach a model: a dated or other Claude id goes to the alias of its tier (opus, sonnet,
 * haiku) where the config has tier aliases, other names to the catch-all `*` or a 404 in the
 * client's dialect. `*` itself is never listed.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer } from "../fakes/script.js";
import { type RunningGateway, startGateway } from "../helpers.js";

function config(url: string, catchAll: boolean): string {
  return `
backends:
  local:
    kind: ollama
    url: "${url}"
    discover: false
models:
  claude-haiku-4-5: { backend: local, model: "small:1b" }
  claude-sonnet-4-5: { backend: local, model: "mid:7b" }
  claude-sonnet-4: { backend: local, model: "older:7b" }
  claude-opus-4-5: { backend: local, model: "big:32b" }
${catchAll ? '  "*": { backend: local, model: "mid:7b" }' : ""}
`;
}

for (const catchAll of [true, false])
  describe(`models and Claude names, ${catchAll ? "with" : "without"} a catch-all`, () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    let anthropic: Anthropic;
    let openai: OpenAI;
    before(async () => {
      fake = await startOllamaFake({
        models: ["small:1b", "mid:7b", "older:7b", "big:32b"].map((name) => ({ name })),
      });
      fake.setReply({ text: "ok" });
      gw = await startGateway(config(fake.url, catchAll));
      anthropic = new Anthropic({ baseURL: gw.url, apiKey: "unused", maxRetries: 0 });
      openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });
    const servedBy = () => fake.requests.filter((r) => r.path === "/api/chat").at(-1)!.body.model;
    const ALIASES = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-sonnet-4", "claude-opus-4-5"];

    test("the lists name the aliases, never '*'", async () => {
      const o = [];
      for await (const m of openai.models.list()) o.push(m.id);
      assert.deepEqual(o.sort(), [...ALIASES].sort());
      const a = [];
      for await (const m of anthropic.models.list()) a.push(m.id);
      assert.deepEqual(a.sort(), [...ALIASES].sort());
    });

    test("models.retrieve: a served id, in each SDK's shape", async () => {
      const o = await openai.models.retrieve("claude-sonnet-4-5");
      assert.equal(o.id, "claude-sonnet-4-5");
      assert.equal(o.object, "model");
      assert.equal(o.owned_by, "clawbridge/local");
      const a = await anthropic.models.retrieve("claude-opus-4-5");
      assert.equal(a.id, "claude-opus-4-5");
      assert.equal(a.type, "model");
      // a dated id is served by its tier: retrieving it answers as the name asked
      const dated = await anthropic.models.retrieve("claude-haiku-4-5-20251001");
      assert.equal(dated.id, "claude-haiku-4-5-20251001");
    });

    test("an unknown id: served by the catch-all, or a 404 in the client's dialect", async () => {
      if (catchAll) {
        assert.equal((await openai.models.retrieve("gpt-4o")).id, "gpt-4o");
        return;
      }
      await assert.rejects(openai.models.retrieve("gpt-4o"), (e: unknown) => {
        assert.ok(e instanceof OpenAI.NotFoundError);
        assert.match(String((e.error as any)?.message), /gpt-4o.*not served/);
        return true;
      });
      await assert.rejects(anthropic.models.retrieve("gpt-4o"), (e: unknown) => {
        assert.ok(e instanceof Anthropic.NotFoundError);
        assert.equal((e.error as any)?.error?.type, "not_found_error");
        return true;
      });
    });

    test("dated and unknown Claude names go to their tier's alias; other names to '*' or a 404", async () => {
      const cases: Array<[string, string]> = [
        ["claude-sonnet-4-5-20250929", "mid:7b"],
        ["claude-sonnet-4-20250514", "older:7b"],
        ["claude-3-5-haiku-20241022", "small:1b"],
        ["claude-haiku-4-5-20251001", "small:1b"],
        ["claude-opus-4-1-20250805", "big:32b"],
        ["claude-opus-5", "big:32b"],
      ];
      for (const [asked, model] of cases) {
        const msg = await anthropic.messages.create({
          model: asked,
          max_tokens: 10,
          messages: [{ role: "user", content: "hi" }],
        });
        assert.equal(msg.content[0]?.type === "text" && msg.content[0].text, "ok", asked);
        assert.equal(servedBy(), model, asked);
      }
      if (catchAll) {
        await anthropic.messages.create({
          model: "gpt-4o",
          max_tokens: 10,
          messages: [{ role: "user", content: "hi" }],
        });
        assert.equal(servedBy(), "mid:7b");
      } else
        await assert.rejects(
          anthropic.messages.create({
            model: "gpt-4o",
            max_tokens: 10,
            messages: [{ role: "user", content: "hi" }],
          }),
          Anthropic.NotFoundError,
        );
    });
  });
