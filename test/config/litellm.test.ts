import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { parseConfig } from "../../src/config/load.js";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer } from "../fakes/script.js";
import { redirectingDispatcher, type RunningGateway, startGateway } from "../helpers.js";

const FILE = `model_list:
  - model_name: local
    litellm_params: { model: ollama/qwen2.5:7b, api_base: "http://127.0.0.1:11434", timeout: 90 }
  - model_name: azure-gpt
    litellm_params:
      model: azure/gpt-4o
      api_base: https://example.openai.azure.com
  - model_name: bedrock-claude
    litellm_params: { model: bedrock/anthropic.claude-3-sonnet }
router_settings:
  routing_strategy: latency-based-routing
  num_retries: 3
  timeout: 120
  allowed_fails: 2
  cooldown_time: 45
  model_group_alias: { qwen: local }
  fallbacks: [{ local: [azure-gpt] }]
  redis_host: cache.lan
`;

describe("a LiteLLM config with entries clawbridge cannot serve", () => {
  const c = parseConfig(FILE, "litellm.yaml", {});

  test("each unsupported entry is skipped with a warning naming it, its line and the providers served", () => {
    const skipped = c.warnings.filter((w) => w.includes("is skipped"));
    assert.equal(skipped.length, 2);
    assert.match(
      skipped[0]!,
      /^litellm\.yaml:6: model_list\.1 \(azure-gpt\): 'azure\/gpt-4o' is skipped — clawbridge serves the providers .*ollama\//,
    );
    assert.match(
      skipped[1]!,
      /^litellm\.yaml:9: model_list\.2 \(bedrock-claude\): 'bedrock\/anthropic\.claude-3-sonnet' is skipped/,
    );
    assert.deepEqual(
      c.models.map((m) => m.alias),
      ["local", "qwen"],
    );
    // a fallback to a skipped entry is left out, and said so
    assert.deepEqual(c.fallbacks, {});
    assert.ok(
      c.warnings.some((w) =>
        /^litellm\.yaml:17: router_settings\.fallbacks: azure-gpt skipped above/.test(w),
      ),
    );
  });

  test("router_settings it can honour are mapped: timeout, allowed_fails, cooldown_time, model_group_alias", () => {
    assert.deepEqual(c.timeouts, { totalMs: 120_000 });
    assert.deepEqual(c.models[0]!.targets[0]!.timeouts, { totalMs: 90_000 });
    assert.deepEqual(c.backends[0]!.breaker, { failures: 2, cooldownMs: 45_000 });
    assert.equal(c.models[1]!.targets, c.models[0]!.targets);
  });

  test("the others are listed as ignored, each on its line, with why where it matters", () => {
    const ignored = c.warnings.filter((w) => w.includes("is ignored"));
    assert.deepEqual(
      ignored.map((w) => w.split(" is ignored")[0]),
      [
        "litellm.yaml:11: router_settings.routing_strategy",
        "litellm.yaml:12: router_settings.num_retries",
        "litellm.yaml:18: router_settings.redis_host",
      ],
    );
    assert.match(ignored[1]!, /tries a model's replicas, then its fallbacks, each once/);
  });

  describe("and the rest is served", () => {
    let fake: FakeServer;
    let gw: RunningGateway;
    before(async () => {
      fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }] });
      gw = await startGateway(c, { dispatcher: redirectingDispatcher(fake.port) });
    });
    after(async () => {
      await gw.close();
      await fake.close();
    });

    test("the OpenAI SDK is answered under the entry's name and its group alias", async () => {
      fake.setReply({ text: "served" });
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      for (const model of ["local", "qwen"]) {
        const r = await client.chat.completions.create({
          model,
          messages: [{ role: "user", content: "hi" }],
        });
        assert.equal(r.choices[0]?.message.content, "served");
      }
      const err = await client.chat.completions
        .create({ model: "azure-gpt", messages: [{ role: "user", content: "hi" }] })
        .catch((e: unknown) => e);
      assert.ok(err instanceof OpenAI.NotFoundError, String(err));
    });
  });
});
