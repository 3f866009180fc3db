import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { startOllamaFake } from "../fakes/ollama.js";
import { oneBackend, runCli as run, startGateway } from "../helpers.js";

describe("clawbridge status", () => {
  test("backends with their health, queue and loaded models; the models served", async () => {
    const fake = await startOllamaFake({
      models: [{ name: "qwen2.5:14b" }, { name: "gemma3", loaded: false }],
    });
    const gw = await startGateway(oneBackend("ollama", fake.url, "qwen2.5:14b", "    discover: false"));
    try {
      const r = await run(["status", "--url", gw.url]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`clawbridge at ${gw.url}: ok`));
      assert.match(
        r.out,
        /backend b \(ollama\) http:\/\/127.0.0.1:\d+: up since \d\d:\d\d:\d\d; running 0\/\S+, waiting 0\+0; 2 model\(s\) listed; loaded: qwen2.5:14b\n/,
      );
      assert.match(r.out, /models: test-model/);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("says so when the gateway is not running", async () => {
    const r = await run(["status", "--url", "http://127.0.0.1:9"]);
    assert.equal(r.code, 1);
    assert.match(
      r.out,
      /clawbridge is not answering at http:\/\/127.0.0.1:9.*\nStart it with `clawbridge serve`/,
    );
  });
});
