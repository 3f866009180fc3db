import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { loadConfigFile } from "../../src/config/load.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { makeTinyGguf } from "../fixtures/tiny-gguf.js";

const dir = mkdtempSync(join(tmpdir(), "cb-init-cli-"));

const init = (args: string[], env: NodeJS.ProcessEnv = {}) => run(["init", "--yes", ...args], env);

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  const { CLAWBRIDGE_CONFIG: _, ...rest } = process.env;
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...rest, ...env },
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const code = await new Promise<number>((r) => child.on("exit", r));
  return { code, out };
}

describe("init: what the user reads and what is written", () => {
  let llama: FakeServer;
  let ollama: FakeServer;
  before(async () => {
    llama = await startOpenAICompatFake({ flavor: "llamacpp", models: ["qwen2.5-7b-instruct"] });
    ollama = await startOllamaFake({ models: [{ name: "qwen2.5:14b" }] });
  });
  after(async () => {
    await llama.close();
    await ollama.close();
  });

  test("--url host:port with no scheme, a llama.cpp on a port not its own: identified with its flavor; a catch-all is written", async () => {
    const host = new URL(llama.url).host;
    const output = join(dir, "llama.yaml");
    const r = await init(["--url", host, "--vram", "24", "--output", output]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`${host}: llama\\.cpp`));
    const cfg = parse(readFileSync(output, "utf8"));
    assert.deepEqual(cfg.backends, {
      llamacpp: { kind: "openai-compat", url: `http://${host}/v1`, flavor: "llamacpp" },
    });
    // a dated Claude id (claude-sonnet-4-5-20250929) is served by the catch-all, not a 404
    assert.deepEqual(cfg.models["*"], cfg.models["claude-sonnet-4-5"]);
    assert.match(r.out, /\* +→ qwen2\.5-7b-instruct on llamacpp/);
    const loaded = loadConfigFile(output);
    assert.equal(loaded.backends[0]?.settings?.flavor, "llamacpp");
  });

  test("a small --vram writes a config with a warning, exit 0", async () => {
    const output = join(dir, "small.yaml");
    const r = await init(["--url", ollama.url, "--vram", "1", "--output", output]);
    assert.equal(r.code, 0, r.out);
    assert.match(
      r.out,
      /WARNING: no model fits 1 GiB with OpenClaw's 16k window; the config uses the smallest, qwen2\.5:14b, which will spill out of GPU memory and run slowly/,
    );
    assert.match(r.out, /wrote .*small\.yaml \(see the WARNING above\)/);
    const cfg = parse(readFileSync(output, "utf8"));
    assert.deepEqual(cfg.models["claude-haiku-4-5"], {
      backend: "ollama",
      model: "qwen2.5:14b",
      context_window: 16384,
    });
    assert.equal(loadConfigFile(output).models.length, 4);
  });

  test("with no server answering, the GGUF files on disk are proposed, to run in-process", async () => {
    const models = join(dir, "models");
    mkdirSync(models, { recursive: true });
    writeFileSync(join(models, "tiny-q4.gguf"), makeTinyGguf({ seed: 9 }));
    const empty = join(dir, "no-ollama");
    mkdirSync(empty, { recursive: true });
    const output = join(dir, "disk.yaml");
    const r = await init(["--vram", "8", "--output", output], {
      CLAWBRIDGE_MODELS: models,
      OLLAMA_MODELS: empty,
    });
    if (/found \S+ \((ollama|openai-compat)\)/.test(r.out)) return; // a real server runs on this machine's default ports
    assert.match(r.out, /No model server answered; 1 GGUF model\(s\) on disk, run in-process:/);
    assert.match(r.out, /tiny-q4/);
    assert.ok(existsSync(output), r.out);
    const cfg = parse(readFileSync(output, "utf8"));
    assert.equal(cfg.backends.local.kind, "embedded");

    // and `models` and `doctor`, with no config file, see what `serve` would run
    const env = { CLAWBRIDGE_MODELS: models, OLLAMA_MODELS: empty };
    const listed = await run(["models", "--json"], env);
    assert.equal(listed.code, 0, listed.out);
    assert.ok(
      JSON.parse(listed.out).models.some((m: { model: string }) => m.model === "tiny-q4"),
      listed.out,
    );
    const doctor = await run(["doctor", "--no-probe", "--openclaw-config", join(dir, "none.json")], env);
    assert.match(doctor.out, /ok +backend local \(in-process GGUF models\): 1 model\(s\) found on disk/);
    assert.match(doctor.out, /model tiny-q4: context window: 2048 tokens/);
  });
});
