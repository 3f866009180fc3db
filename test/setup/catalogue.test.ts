/**
 * The built-in catalogue and the pick by memory: the memory read from the GPU tools (fed their real
 * output formats), Apple's unified memory, or the RAM; the largest entry that fits with a 32k
 * window; the catalogue override for mirrors and tests.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fittingContext } from "../../src/context/window.js";
import {
  CATALOGUE,
  CatalogueError,
  entryUrl,
  loadCatalogue,
  type MachineMemory,
  memoryNeed,
  pickModel,
  readMemory,
} from "../../src/setup/catalogue.js";
import type { Probe } from "../../src/setup/gpu.js";

const GiB = 1024 ** 3;
const gpu = (gib: number): MachineMemory => ({
  bytes: gib * GiB,
  label: `${gib} GiB GPU`,
  source: "nvidia-smi: test",
  cpu: false,
});

describe("the catalogue", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("every built-in entry: a pinned Hugging Face file, its size, a SHA-256, 1.5B to 32B", () => {
    assert.ok(CATALOGUE.length >= 5);
    const ids = new Set<string>();
    for (const e of CATALOGUE) {
      assert.ok(!ids.has(e.id), `${e.id} twice`);
      ids.add(e.id);
      assert.match(e.sha256 ?? "", /^[0-9a-f]{64}$/, `${e.id}: sha256`);
      assert.ok(e.source.startsWith("hf:bartowski/"), e.source);
      assert.ok(e.source.endsWith(`/${e.file}`), `${e.id}: the file is the source's`);
      assert.match(e.file, /-Q4_K_M\.gguf$/);
      assert.ok(e.sizeBytes > 0.9e9 && e.sizeBytes < 21e9, `${e.id}: ${e.sizeBytes}`);
      assert.ok(e.trainedContext >= 32768);
    }
    const urls = CATALOGUE.map((e) => entryUrl(e, {}));
    assert.equal(
      urls.find((u) => u.includes("Coder-7B")),
      "https://huggingface.co/bartowski/Qwen2.5-Coder-7B-Instruct-GGUF/resolve/1f629da0c8bed16b9e50cee91c70693650e66c35/Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf",
    );
    // the smallest offered and the largest
    assert.ok(CATALOGUE.some((e) => e.id.includes("1.5b")));
    assert.ok(CATALOGUE.some((e) => e.id.includes("32b")));
  });

  test("the URLs point wherever CLAWBRIDGE_CATALOGUE_BASE (else HF_ENDPOINT) says", () => {
    const e = CATALOGUE[0]!;
    const at = (env: NodeJS.ProcessEnv) => new URL(entryUrl(e, env)).origin;
    assert.equal(at({ CLAWBRIDGE_CATALOGUE_BASE: "http://127.0.0.1:9/" }), "http://127.0.0.1:9");
    assert.equal(at({ HF_ENDPOINT: "http://127.0.0.1:8/" }), "http://127.0.0.1:8");
    assert.equal(
      at({ CLAWBRIDGE_CATALOGUE_BASE: "http://127.0.0.1:9", HF_ENDPOINT: "http://127.0.0.1:8" }),
      "http://127.0.0.1:9",
    );
    assert.match(
      entryUrl(e, { CLAWBRIDGE_CATALOGUE_BASE: "http://127.0.0.1:9" }),
      /\/resolve\/[0-9a-f]{40}\//,
    );
  });

  test("CLAWBRIDGE_CATALOGUE replaces the list; a broken file is a clear error", () => {
    const dir = mkdtempSync(join(tmpdir(), "clawbridge-cat-"));
    dirs.push(dir);
    const file = join(dir, "catalogue.json");
    const entry = {
      id: "mirror-model",
      quant: "Q4_K_M",
      file: "mirror.gguf",
      source: "http://127.0.0.1:1/mirror.gguf",
      sizeBytes: 1000,
      trainedContext: 4096,
      kvBytesPerToken: 10,
    };
    writeFileSync(file, JSON.stringify([entry]));
    assert.deepEqual(loadCatalogue({ CLAWBRIDGE_CATALOGUE: file }), [entry]);
    assert.equal(loadCatalogue({}).length, CATALOGUE.length);
    writeFileSync(file, JSON.stringify([{ ...entry, sha256: "abc" }]));
    assert.throws(
      () => loadCatalogue({ CLAWBRIDGE_CATALOGUE: file }),
      (e: unknown) => e instanceof CatalogueError && /0\.sha256: 64 hex digits/.test(e.message),
    );
    writeFileSync(file, "{ not json");
    assert.throws(() => loadCatalogue({ CLAWBRIDGE_CATALOGUE: file }), /cannot read the catalogue/);
  });
});

describe("the pick by memory", () => {
  const picked = (m: MachineMemory) => pickModel(m, CATALOGUE).entry?.id;

  test("several memory sizes → the largest entry that fits with a 32k window", () => {
    const expected: Array<[number, string | undefined]> = [
      [2, undefined],
      [3, "qwen2.5-coder-1.5b-instruct"],
      [4, "qwen2.5-coder-3b-instruct"],
      [6, "qwen2.5-coder-3b-instruct"],
      [8, "qwen2.5-coder-7b-instruct"],
      [12, "qwen2.5-coder-7b-instruct"],
      [16, "qwen2.5-coder-14b-instruct"],
      [24, "qwen2.5-coder-14b-instruct"],
      [32, "qwen2.5-coder-32b-instruct"],
      [80, "qwen2.5-coder-32b-instruct"],
    ];
    assert.deepEqual(
      expected.map(([g]) => [g, picked(gpu(g))]),
      expected,
    );
    // what "fits" means: the engine's own window arithmetic gives at least 32k beside the weights
    for (const [g, id] of expected) {
      const e = CATALOGUE.find((c) => c.id === id);
      if (e) assert.ok(fittingContext(g * GiB, e.sizeBytes, e.kvBytesPerToken) >= 32768, `${g}: ${id}`);
      if (e) assert.ok(memoryNeed(e) <= g * GiB);
    }
  });

  test("the choice explained in one line; nothing that fits says what the smallest needs", () => {
    const p = pickModel(gpu(12), CATALOGUE);
    assert.equal(
      p.why,
      "qwen2.5-coder-7b-instruct Q4_K_M: the largest catalogue model that fits 12 GiB (nvidia-smi: test) — 4.4 GiB of weights + 1.8 GiB of KV cache for a 32k window + buffers = 6.6 GiB",
    );
    assert.ok(!p.why.includes("\n"));
    const none = pickModel(gpu(2), CATALOGUE);
    assert.equal(none.entry, undefined);
    assert.match(
      none.why,
      /no catalogue model fits 2 GiB .*the smallest, qwen2\.5-coder-1\.5b-instruct, needs 2\.3 GiB/,
    );
  });

  test("a listed-only entry is never offered, though it would fit", () => {
    const llama = CATALOGUE.find((e) => e.offered === false);
    assert.ok(llama);
    assert.ok(memoryNeed(llama) < 12 * GiB);
    assert.notEqual(picked(gpu(12)), llama.id);
    assert.equal(pickModel(gpu(80), [llama]).entry, undefined);
  });

  test("the memory read: NVIDIA's largest GPU, AMD, Apple unified memory, else 3/4 of the RAM", () => {
    const tools =
      (answers: Record<string, string>): Probe =>
      (cmd) =>
        answers[cmd];
    const nv = readMemory(
      tools({ "nvidia-smi": "12288, NVIDIA GeForce RTX 3060\n8192, NVIDIA T400\n" }),
      "linux",
    );
    assert.deepEqual(nv, {
      bytes: 12 * GiB,
      label: "12 GiB GPU",
      source: "nvidia-smi: NVIDIA GeForce RTX 3060",
      cpu: false,
    });
    assert.equal(picked(nv), "qwen2.5-coder-7b-instruct");
    const amd = readMemory(
      tools({
        "rocm-smi": `device,VRAM Total Memory (B),VRAM Total Used Memory (B)\ncard0,${24 * GiB},1000\n`,
      }),
      "linux",
    );
    assert.equal(amd.label, "24 GiB GPU");
    assert.equal(picked(amd), "qwen2.5-coder-14b-instruct");
    const mac = readMemory(tools({ uname: "arm64\n", sysctl: `${32 * GiB}\n` }), "darwin");
    assert.deepEqual(mac, {
      bytes: 24 * GiB,
      label: "24 GiB of unified memory",
      source: "Apple silicon unified memory (3/4 of RAM)",
      cpu: false,
    });
    const cpu = readMemory(tools({}), "linux", 16 * GiB);
    assert.deepEqual(cpu, {
      bytes: 12 * GiB,
      label: "16 GiB of RAM",
      source: "no GPU found: 3/4 of 16 GiB RAM, run by the CPU",
      cpu: true,
    });
    assert.equal(picked(cpu), "qwen2.5-coder-7b-instruct");
    assert.equal(picked(readMemory(tools({}), "linux", 4 * GiB)), "qwen2.5-coder-1.5b-instruct");
  });
});
