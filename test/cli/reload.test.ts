/**
 * Reloading the config of a running gateway, the real CLI (`node dist/cli/main.js serve`): SIGHUP
 * and `clawbridge reload` serve a new alias while a stream started before goes on unharmed; an
 * invalid config is refused with its file:line and the old one kept.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { startOllamaFake } from "../fakes/ollama.js";
import { listenUrl } from "../helpers.js";

const CLI = "dist/cli/main.js";
const TEXT = "The quick brown fox jumps over the lazy dog. ".repeat(20);

const config = (port: number, aliases: string) =>
  `backends:\n  b:\n    kind: ollama\n    url: "http://127.0.0.1:${port}"\n    discover: false\nmodels:\n${aliases}`;
const MAIN = `  main: { backend: b, model: "qwen2.5:7b" }\n`;
const SECOND = `  second: { backend: b, model: "gemma3" }\n`;
// line 9 names a backend that does not exist
const BROKEN = `${MAIN}${SECOND}  third: { backend: nope, model: "gemma3" }\n`;

function run(args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
}

/** Resolves with the CLI's exit code and everything it printed. */
async function exit(child: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  child.stderr!.on("data", (d) => {
    err += d;
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { code, out, err };
}

async function until(ms: number, what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A gateway of the real CLI on a config file, with its JSON log (stderr) gathered. */
async function gateway(port: number) {
  assert.ok(existsSync(CLI), `${CLI}: run \`npm run build\` first (the unit suite runs after it)`);
  const file = join(mkdtempSync(join(tmpdir(), "cb-reload-")), "clawbridge.yaml");
  writeFileSync(file, config(port, MAIN));
  const child = run(["serve", "--config", file, "--port", "0"]);
  const log: string[] = [];
  child.stderr!.on("data", (d: Buffer) => log.push(String(d)));
  const { url } = await listenUrl(child);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });
  const served = async () =>
    (await client.models.list()).data.map((m) => m.id).sort((a, b) => a.localeCompare(b));
  return { child, file, url, client, served, log: () => log.join("") };
}

/** A long stream of `main`, started: its first text has arrived; resolves with the whole answer. */
async function longStream(client: OpenAI): Promise<Promise<{ text: string; finish: string | null }>> {
  const stream = await client.chat.completions.create({
    model: "main",
    stream: true,
    messages: [{ role: "user", content: "tell me a long story" }],
  });
  const it = stream[Symbol.asyncIterator]();
  let text = "";
  let finish: string | null = null;
  for (;;) {
    const first = await it.next();
    assert.ok(!first.done, "the stream ended before any text");
    text += first.value.choices[0]?.delta.content ?? "";
    if (text) break;
  }
  return (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) return { text, finish };
      text += r.value.choices[0]?.delta.content ?? "";
      finish = r.value.choices[0]?.finish_reason ?? finish;
    }
  })();
}

describe("reload", () => {
  test("SIGHUP: a new alias is served while a stream started before finishes unharmed; an invalid config is refused with file:line", async () => {
    const fake = await startOllamaFake({
      models: [{ name: "qwen2.5:7b" }, { name: "gemma3" }],
      // about 2.5 s of stream: 900 characters, 4 a chunk, 10 ms apart
      reply: { text: TEXT, fault: { kind: "delayBetweenChunks", ms: 10 } },
    });
    const gw = await gateway(fake.port);
    try {
      assert.deepEqual(await gw.served(), ["main"]);
      const since = async () => ((await (await fetch(`${gw.url}/health`)).json()) as any).backends[0].since;
      const upSince = await since();
      const streaming = await longStream(gw.client);

      writeFileSync(gw.file, config(fake.port, MAIN + SECOND));
      gw.child.kill("SIGHUP");
      await until(5000, "second served", async () => (await gw.served()).includes("second"));
      const r = await gw.client.chat.completions.create({
        model: "second",
        messages: [{ role: "user", content: "hi" }],
      });
      assert.equal(r.choices[0]?.message.content, TEXT);
      assert.equal(fake.requests.at(-1)?.body.model, "gemma3");
      assert.equal(
        await since(),
        upSince,
        "the backend, configured alike, keeps its state across the reload",
      );

      const done = await streaming;
      assert.equal(done.text, TEXT, "the stream started before the reload is whole");
      assert.equal(done.finish, "stop");
      assert.match(gw.log(), /"msg":"config reloaded"/);

      writeFileSync(gw.file, config(fake.port, BROKEN));
      gw.child.kill("SIGHUP");
      await until(5000, "the refusal logged", async () => /config not reloaded/.test(gw.log()));
      assert.match(
        gw.log(),
        /config not reloaded, the one in effect is kept: [^"]*clawbridge\.yaml:9: backend 'nope' is not defined/,
      );
      assert.deepEqual(await gw.served(), ["main", "second"], "the old config still serves");
      const still = await gw.client.chat.completions.create({
        model: "main",
        messages: [{ role: "user", content: "hi" }],
      });
      assert.equal(still.choices[0]?.message.content, TEXT);
      assert.equal(gw.child.exitCode, null, "SIGHUP does not end the gateway");
    } finally {
      gw.child.kill("SIGTERM");
      await fake.close();
    }
  });

  test("clawbridge reload: the same, with the outcome printed", async () => {
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }, { name: "gemma3" }] });
    const gw = await gateway(fake.port);
    try {
      writeFileSync(gw.file, config(fake.port, MAIN + SECOND));
      const ok = await exit(run(["reload", "--url", gw.url]));
      assert.equal(ok.code, 0, ok.err);
      assert.match(
        ok.out,
        /clawbridge at http:\/\/127\.0\.0\.1:\d+ reloaded \S+clawbridge\.yaml: serving main, second/,
      );
      assert.deepEqual(await gw.served(), ["main", "second"]);

      writeFileSync(gw.file, config(fake.port, BROKEN));
      const bad = await exit(run(["reload", "--url", gw.url]));
      assert.equal(bad.code, 1);
      assert.match(
        bad.err,
        /not reloaded, the config in effect is kept: \S+clawbridge\.yaml:9: backend 'nope' is not defined/,
      );
      assert.match(gw.log(), /config not reloaded/);
      assert.deepEqual(await gw.served(), ["main", "second"]);

      const gone = await exit(run(["reload", "--url", "http://127.0.0.1:9"]));
      assert.equal(gone.code, 1);
      assert.match(gone.err, /clawbridge is not answering at http:\/\/127\.0\.0\.1:9/);
    } finally {
      gw.child.kill("SIGTERM");
      await fake.close();
    }
  });
});
