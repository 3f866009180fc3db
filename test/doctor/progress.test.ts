/**
 * `clawbridge doctor` as it runs: each check printed when it is made, not all at the end; the
 * probes go to the models clients are served under aliases, every discovered one with --all.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runDoctor } from "../../src/doctor/doctor.js";
import { startOllamaFake } from "../fakes/ollama.js";

const dir = mkdtempSync(join(tmpdir(), "cb-doctor-progress-"));
const configFor = (port: number) => {
  const p = join(dir, `c${port}.yaml`);
  // discovery on (the default): gemma3 is served under its own name, qwen2.5:7b under the alias main
  writeFileSync(
    p,
    `server: { port: 4998 }\nbackends:\n  b:\n    kind: ollama\n    url: "http://127.0.0.1:${port}"\nmodels:\n  main: { backend: b, model: "qwen2.5:7b" }\n`,
  );
  return p;
};
const noOpenclaw = join(dir, "no-openclaw.json");

describe("clawbridge doctor as it runs", () => {
  test("the first check is printed before a slow probe has finished", async () => {
    const SLOW_MS = 3000;
    const fake = await startOllamaFake({
      models: [{ name: "qwen2.5:7b" }],
      reply: { text: "1 2 3", fault: { kind: "delayFirstByte", ms: SLOW_MS } },
    });
    const child = spawn(
      process.execPath,
      [
        "--import",
        import.meta.resolve("tsx"),
        fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url)),
        "doctor",
        "--config",
        configFor(fake.port),
        "--openclaw-config",
        noOpenclaw,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      let out = "";
      let exited = false;
      child.on("close", () => {
        exited = true;
      });
      const seen = new Promise<{ out: string; chats: number }>((resolve) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d;
          if (/^\.\.\. {3}probing model main/m.test(out))
            resolve({ out, chats: fake.requests.filter((r) => r.path === "/api/chat").length });
        });
      });
      const early = await seen;
      assert.match(early.out, /^ok {4}configuration: /m, "the first check came first");
      assert.doesNotMatch(early.out, /model main: streaming/, "the probe has not finished");
      assert.equal(exited, false);
      await new Promise((r) => child.on("close", r));
      assert.match(out, /^ok {4}model main: streaming: first token after [3-9]\.\d\d s/m);
      assert.ok(
        out.indexOf("configuration") < out.indexOf("probing model main"),
        "checks in the order they ran",
      );
      assert.match(out, /\n\d+ failed, \d+ warning\(s\), \d+ checks\n$/);
    } finally {
      child.kill();
      await fake.close();
    }
  });

  test("probes only the aliased models, every discovered one with --all", async () => {
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }, { name: "gemma3" }] });
    try {
      const probed = async (all: boolean) => {
        fake.requests.length = 0;
        const checks = await runDoctor({
          config: configFor(fake.port),
          openclawConfig: noOpenclaw,
          probe: true,
          probeAll: all,
          probeTimeoutMs: 10_000,
        });
        const models = new Set(
          fake.requests.filter((r) => r.path === "/api/chat").map((r) => r.body.model as string),
        );
        return {
          models: [...models].sort(),
          ids: checks.map((c) => c.id).filter((id) => id.includes(":stream")),
        };
      };
      const aliased = await probed(false);
      assert.deepEqual(aliased.models, ["qwen2.5:7b"]);
      assert.deepEqual(aliased.ids, ["model:main:stream"]);
      const all = await probed(true);
      assert.deepEqual(all.models, ["gemma3:latest", "qwen2.5:7b"]);
      assert.deepEqual(all.ids.sort(), [
        "model:gemma3:latest:stream",
        "model:main:stream",
        "model:qwen2.5:7b:stream",
      ]);
    } finally {
      await fake.close();
    }
  });
});
