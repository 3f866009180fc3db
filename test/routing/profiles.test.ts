/**
 * The model profile: made by one mapping from the target as the config file states it, read-only
 * once made; what is learned while serving goes to the model's state, beside it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseConfig } from "../../src/config/load.js";
import type { TargetConfig } from "../../src/config/types.js";
import type { Backend, ModelProfile } from "../../src/ir/contract.js";
import { ModelState } from "../../src/routing/model-state.js";
import { profileOf } from "../../src/routing/profiles.js";

/** Every setting a target may have. */
const CONFIG = `
backends:
  o: { kind: ollama, url: "http://127.0.0.1:11434", vram_gb: 8, timeouts: { idle_ms: 5000 } }
timeouts: { connect_ms: 2000 }
models:
  m:
    backend: o
    model: "qwen2.5:7b"
    timeouts: { total_ms: 60000 }
    context_window: 16384
    max_output_tokens: 2048
    drop_params: false
    supports_tools: true
    tool_mode: native
    tool_format: llama3
    strict_alternation: true
    keep_alive: 10m
    num_ctx: 12288
    fit_policy: drop-oldest
    reserve_output_tokens: 512
    temperature: 0.4
    top_p: 0.9
    top_k: 40
    extra_body: { options: { mirostat: 2 } }
    force_tool: read
`;

function made(): { profile: ModelProfile; target: TargetConfig } {
  const c = parseConfig(CONFIG, "c.yaml", {});
  const target = c.models[0]!.targets[0]!;
  const backend = { name: "o", kind: "ollama" } as Backend;
  const profile = profileOf("m", target, { backend, config: c.backends[0], timeouts: c.timeouts });
  return { profile, target };
}

describe("the model profile", () => {
  test("carries every setting of its target as the file states it, resolved where it must be", () => {
    const { profile, target } = made();
    const resolved = new Set(["backend", "timeouts", "contextWindow", "numCtx"]);
    const settings = Object.keys(target).filter((k) => !resolved.has(k));
    assert.equal(settings.length, 15, `the file's settings, camelCased: ${settings.join(", ")}`);
    for (const k of settings)
      assert.deepEqual(
        profile[k as keyof ModelProfile],
        target[k as keyof TargetConfig],
        `${k} reached the profile`,
      );
    // per request (Ollama): num_ctx is the window, the context_window stated is recorded beside it
    assert.equal(profile.numCtx, 12288);
    assert.equal(profile.contextWindow, 12288);
    assert.equal(profile.context?.configured, 16384);
    assert.equal(profile.memoryBytes, 8 * 1024 ** 3);
    assert.deepEqual(profile.timeouts, {
      connectMs: 2000,
      loadMs: 600_000,
      firstTokenMs: 300_000,
      idleMs: 5000,
      totalMs: 60_000,
    });
  });

  test("is frozen: nothing can change it after it is made", () => {
    const { profile } = made();
    assert.ok(Object.isFrozen(profile));
    assert.ok(Object.isFrozen(profile.context));
    assert.ok(Object.isFrozen(profile.timeouts));
    assert.throws(() => {
      (profile as { contextWindow?: number }).contextWindow = 1024;
    }, TypeError);
    assert.equal(profile.contextWindow, 12288);
  });
});

describe("the model's state: what is learned while serving", () => {
  test("a window the server took less of lowers the window in use, not the profile's", () => {
    const { profile } = made();
    const state = new ModelState(profile);
    assert.equal(state.window, 12288);
    const learned = state.learnWindow(4096, "the backend cut a prompt at 4096 tokens");
    assert.deepEqual(learned, {
      was: 12288,
      warning: "the backend cut a prompt at 4096 tokens: the window is 4096 from now on, not 12288",
    });
    assert.equal(state.window, 4096);
    assert.equal(state.context?.source, "truncation");
    assert.equal(state.context?.served, 4096);
    assert.equal(state.context?.configured, 16384, "what else was known stays");
    assert.equal(profile.contextWindow, 12288);
    assert.equal(state.learnWindow(8192, "more"), undefined, "never raised by what was learned");
    assert.equal(state.window, 4096);
    // discovery resolves the model again: what it says now stands
    state.resolved(profile);
    assert.equal(state.window, 12288);
    assert.equal(state.context?.source, "config");
  });

  test("a refusal of tools turns native tools into emulated ones and stays through discovery", () => {
    const { profile } = made();
    const state = new ModelState(profile);
    assert.equal(state.toolMode, "native");
    assert.equal(state.supportsTools, true);
    state.refuseTools();
    assert.equal(state.toolMode, "emulate");
    assert.equal(state.supportsTools, false);
    state.resolved(profile);
    assert.equal(state.toolMode, "emulate");
    assert.equal(profile.toolMode, "native");
  });

  test("a warning is said once per model", () => {
    const state = new ModelState(made().profile);
    assert.equal(state.firstTime("tools stripped"), true);
    assert.equal(state.firstTime("tools stripped"), false);
    assert.equal(new ModelState(made().profile).firstTime("tools stripped"), true);
  });
});
