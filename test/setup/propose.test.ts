import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import type { DiscoveredModel } from "../../src/ir/contract.js";
import type { BackendConfig } from "../../src/config/types.js";
import { detectGpuMemory } from "../../src/setup/gpu.js";
import { fitTable, largestFit, proposeAliases } from "../../src/setup/propose.js";
import { startOllamaFake } from "../fakes/ollama.js";

const GiB = 1024 ** 3;
const ollama: BackendConfig = {
  name: "ollama",
  kind: "ollama",
  url: "http://127.0.0.1:11434",
  discover: true,
};
const model = (name: string, gib: number, extra: Partial<DiscoveredModel> = {}): DiscoveredModel => ({
  name,
  sizeBytes: gib * GiB,
  kvBytesPerToken: 131072, // 128 KiB per token: 2 GiB at 16k
  trainedContext: 131072,
  windowPerRequest: true,
  tools: true,
  ...extra,
});

describe("init: what fits, and which model serves which tier", () => {
  test("weights + KV cache against the memory: the largest standard window that fits", () => {
    assert.equal(largestFit(model("m", 4), 8 * GiB), 16384); // 4 + 0.5 + 2 ≤ 8 < 4 + 0.5 + 4
    assert.equal(largestFit(model("m", 4), 24 * GiB), 131072);
    assert.equal(
      largestFit(model("m", 4, { trainedContext: 32768 }), 80 * GiB),
      32768,
      "never past the trained window",
    );
    assert.equal(largestFit(model("m", 9), 8 * GiB), 0, "does not fit at all");
    assert.equal(largestFit({ name: "x" }, 8 * GiB), undefined, "size unknown");
  });

  test("haiku gets the smallest usable model, opus the largest, sonnet the middle; tool-less and too-big ones are passed over", () => {
    const cands = [
      model("qwen2.5:32b", 19),
      model("qwen2.5:3b", 2),
      model("qwen2.5:14b", 9),
      model("deepseek-r1:8b", 5, { tools: false }),
      model("llama3.3:70b", 40),
    ].map((m) => ({ backend: ollama, model: m }));
    const rows = fitTable(cands, 24 * GiB);
    assert.equal(rows.find((r) => r.model === "llama3.3:70b")!.fits, 0);
    assert.match(rows.find((r) => r.model === "deepseek-r1:8b")!.note, /no native tools/);
    const aliases = proposeAliases(cands, rows);
    assert.deepEqual(
      aliases.map((a) => [a.alias, a.model, a.contextWindow]),
      [
        ["claude-haiku-4-5", "qwen2.5:3b", 131072],
        ["claude-sonnet-4-5", "qwen2.5:14b", 65536],
        ["claude-opus-4-5", "qwen2.5:32b", 16384],
      ],
    );
  });

  test("GPU memory from nvidia-smi (the largest card), rocm-smi, or Apple's unified memory", () => {
    const nv = detectGpuMemory(
      (cmd) => (cmd === "nvidia-smi" ? "8192, RTX 4060\n24576, RTX 4090\n" : undefined),
      "linux",
    );
    assert.deepEqual(nv, { bytes: 24576 * 1024 * 1024, source: "nvidia-smi: RTX 4090" });
    const amd = detectGpuMemory(
      (cmd) =>
        cmd === "rocm-smi"
          ? "device,VRAM Total Memory (B),VRAM Total Used Memory (B)\ncard0,17163091968,123\n"
          : undefined,
      "linux",
    );
    assert.equal(amd?.bytes, 17163091968);
    const mac = detectGpuMemory(
      (cmd) => ({ uname: "arm64\n", sysctl: String(32 * GiB) })[cmd as "uname"],
      "darwin",
    );
    assert.equal(mac?.bytes, 24 * GiB);
    assert.equal(
      detectGpuMemory(() => undefined, "linux"),
      undefined,
    );
  });

  test("clawbridge init --yes against a running Ollama writes a config that loads", async () => {
    const fake = await startOllamaFake({
      models: [{ name: "qwen2.5:14b" }, { name: "gemma3", capabilities: ["completion"] }],
    });
    const dir = mkdtempSync(join(tmpdir(), "cb-init-"));
    const out = join(dir, "clawbridge.yaml");
    try {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "src/cli/main.ts",
          "init",
          "--url",
          fake.url,
          "--vram",
          "12",
          "--yes",
          "--output",
          out,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let text = "";
      child.stdout.on("data", (d) => {
        text += d;
      });
      child.stderr.on("data", (d) => {
        text += d;
      });
      const code = await new Promise((r) => child.on("exit", r));
      assert.equal(code, 0, text);
      assert.match(text, /found ollama \(ollama\) at/);
      assert.match(text, /gemma3.*no native tools: emulated/);
      const cfg = parse(readFileSync(out, "utf8"));
      assert.deepEqual(cfg.backends.ollama, { kind: "ollama", url: fake.url, vram_gb: 12 });
      // both models weigh the same; the one with tools serves every tier, with the window that fits 12 GiB
      for (const tier of ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"])
        assert.deepEqual(cfg.models[tier], {
          backend: "ollama",
          model: "qwen2.5:14b",
          context_window: 32768,
        });
      const { loadConfigFile } = await import("../../src/config/load.js");
      // the three tiers and the catch-all "*"
      assert.equal(loadConfigFile(out).models.length, 4);
    } finally {
      await fake.close();
    }
  });
});
