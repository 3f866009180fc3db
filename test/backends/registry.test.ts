/**
 * A backend kind of the test's own, registered from here and nowhere else: configured through
 * the normal config file, served end to end to the official SDKs, and reaching everything a kind
 * declares (its own config fields, its default places, discovery, the LiteLLM import).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { z } from "zod";
import type { BackendOptions } from "../../src/backends/kind.js";
import { defineKind } from "../../src/backends/kind.js";
import {
  kindNames,
  kindOf,
  kinds,
  litellmProviders,
  registerKind,
  unregisterKind,
} from "../../src/backends/registry.js";
import { parseConfig } from "../../src/config/load.js";
import type { Backend, DiscoveredModel, SendContext, WireCaps } from "../../src/ir/contract.js";
import type { Event, Request } from "../../src/ir/types.js";
import { type RunningGateway, startGateway } from "../helpers.js";

interface ParrotSettings {
  greeting?: string;
  places?: number;
}

/** Text only, in one string per message, temperature and nothing else. */
const CAPS: WireCaps = {
  tools: false,
  toolHistory: false,
  images: false,
  imageUrls: false,
  stringContentOnly: true,
  strictAlternation: false,
  thinkingHistory: false,
  jsonSchema: false,
  sampling: new Set(["temperature"]),
};

/** An in-process model that repeats the last user turn after its greeting. */
class ParrotBackend implements Backend {
  readonly kind = "test-parrot";
  readonly name: string;
  readonly baseUrl: string;
  readonly caps = CAPS;
  readonly concurrency: number;
  readonly greeting: string;
  /** What it was sent, as the stages left it. */
  readonly seen: Request[] = [];

  constructor(o: BackendOptions<ParrotSettings>) {
    this.name = o.name;
    this.baseUrl = o.baseUrl;
    this.greeting = o.settings.greeting ?? "hello";
    this.concurrency = o.settings.places ?? 1;
  }

  async *send(req: Request, ctx: SendContext): AsyncGenerator<Event[]> {
    this.seen.push(req);
    const last =
      req.messages
        .at(-1)
        ?.parts.map((p) => (p.type === "text" ? p.text : ""))
        .join("") ?? "";
    yield [{ type: "start", model: ctx.profile.model }];
    yield [
      { type: "textDelta", text: `${this.greeting}, ` },
      { type: "textDelta", text: last },
    ];
    yield [
      { type: "usage", usage: { inputTokens: 3 + last.length, outputTokens: 2 } },
      { type: "stop", reason: "end_turn" },
    ];
  }

  async discover(): Promise<DiscoveredModel[]> {
    return [{ name: "parrot-1", contextWindow: 8192, contextFrom: "the parrot", tools: false }];
  }
}

const parrotKind = defineKind<ParrotSettings>({
  kind: "test-parrot",
  label: "Parrot",
  fields: {
    greeting: z.string().min(1).optional(),
    places: z.number().int().positive().optional(),
  },
  inProcessUrl: "parrot://in-process",
  create: (o) => new ParrotBackend(o),
  litellm: { parrot: { defaultBase: "parrot://in-process" } },
});

const CONFIG = `
backends:
  p:
    kind: test-parrot
    greeting: ahoy
    places: 3
models:
  claude-sonnet-4-5: { backend: p, model: parrot-1, temperature: 0.3 }
`;

describe("a backend kind registered from a test", () => {
  let gw: RunningGateway;
  before(async () => {
    registerKind(parrotKind);
    gw = await startGateway(CONFIG);
  });
  after(async () => {
    await gw?.close();
    unregisterKind("test-parrot");
  });

  test("its config validates: its own fields are its settings, no url is asked, others are refused", () => {
    const c = parseConfig(CONFIG, "c.yaml", {});
    const b = c.backends[0]!;
    assert.equal(b.kind, "test-parrot");
    assert.equal(b.url, "parrot://in-process");
    assert.deepEqual(b.settings, { greeting: "ahoy", places: 3 });
    assert.throws(
      () => parseConfig("backends:\n  p: { kind: test-parrot, flavor: vllm }\n", "c.yaml", {}),
      /^ConfigError: c\.yaml:2: backends\.p\.flavor: a setting of kind openai-compat, not of kind test-parrot$/,
    );
    assert.throws(
      () => parseConfig("backends:\n  p: { kind: test-parrot, places: 0 }\n", "c.yaml", {}),
      /c\.yaml:2: backends\.p\.places: /,
    );
    // and a built-in kind does not take the parrot's fields
    assert.throws(
      () => parseConfig("backends:\n  o: { kind: ollama, url: 'http://x', greeting: hi }\n", "c.yaml", {}),
      /c\.yaml:2: backends\.o\.greeting: a setting of kind test-parrot, not of kind ollama/,
    );
  });

  test("served end to end: the Anthropic SDK streams its answer, the OpenAI SDK gets it whole", async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
    const stream = anthropic.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 50,
      messages: [{ role: "user", content: "polly wants a cracker" }],
    });
    const text: string[] = [];
    stream.on("text", (t) => text.push(t));
    const message = await stream.finalMessage();
    assert.equal(text.join(""), "ahoy, polly wants a cracker");
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.usage.output_tokens, 2);

    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
    const done = await openai.chat.completions.create({
      model: "claude-sonnet-4-5",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hello there" },
      ],
    });
    assert.equal(done.choices[0]?.message.content, "ahoy, hello there");
    assert.equal(done.choices[0]?.finish_reason, "stop");

    // the stages read its wire's caps and the profile: the system prompt folded, the profile's temperature set
    const backend = gw.router.backends.get("p") as ParrotBackend;
    const last = backend.seen.at(-1)!;
    assert.equal(last.system, "be brief");
    assert.equal(last.sampling.temperature, 0.3);
  });

  test("its backend's default places, its discovered models and windows reach routing", async () => {
    assert.equal(gw.router.resilience("p")!.queue.limit, 3);
    const served = gw.router.models();
    assert.deepEqual(
      served.map((m) => [m.id, m.source, m.contextWindow]),
      [
        ["claude-sonnet-4-5", "config", 8192],
        ["parrot-1", "discovered", 8192],
      ],
    );
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
    const own = await openai.chat.completions.create({
      model: "parrot-1",
      messages: [{ role: "user", content: "by its own name" }],
    });
    assert.equal(own.choices[0]?.message.content, "ahoy, by its own name");
  });

  test("its LiteLLM prefix imports, and the registry lists it after the built-in kinds", () => {
    const c = parseConfig(
      "model_list:\n  - model_name: pet\n    litellm_params: { model: parrot/parrot-1 }\n",
      "litellm.yaml",
      {},
    );
    assert.deepEqual(
      c.backends.map((b) => [b.kind, b.url]),
      [["test-parrot", "parrot://in-process"]],
    );
    assert.equal(c.models[0]?.targets[0]?.model, "parrot-1");
    assert.equal(litellmProviders().get("parrot")?.kind, "test-parrot");
    assert.equal(kinds().at(-1), kindOf("test-parrot"));
    assert.ok(kindNames().includes("test-parrot"));
  });

  test("a kind's name is taken once; a kind taken out no longer validates", () => {
    assert.throws(() => registerKind(parrotKind), /registered already/);
    unregisterKind("test-parrot");
    try {
      assert.throws(
        () => parseConfig("backends:\n  p: { kind: test-parrot }\n", "c.yaml", {}),
        /c\.yaml:2: backends\.p\.kind: 'test-parrot' is not allowed: one of ollama, openai-compat, anthropic, embedded$/,
      );
    } finally {
      registerKind(parrotKind);
    }
  });
});
