/**
 * The backends' watch (src/routing/watch.ts): a late server, a model pulled or removed, a backend
 * killed and started again, noticed without a client request and without a restart; /health and
 * `clawbridge status` saying so.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { startOllamaFake } from "../fakes/ollama.js";
import { runCli, startGateway } from "../helpers.js";

/** A loopback port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const s = createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, "close");
  return port;
}

/** Asks `probe` every 50 ms until it returns something, for at most `ms`; the time it took. */
async function within<T>(ms: number, what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const health = async (url: string) => {
  const r = await fetch(`${url}/health`);
  return { code: r.status, body: (await r.json()) as any };
};
const served = async (url: string) =>
  ((await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);

const backend = (name: string, port: number, extra = "") =>
  `  ${name}:\n    kind: ollama\n    url: "http://127.0.0.1:${port}"\n${extra}`;

describe("live backends", () => {
  test("a server started 5 s after the gateway is served within the watch period (1 s here)", async (t) => {
    const port = await freePort();
    const gw = await startGateway(
      `server: { watch_interval_s: 1 }\nbackends:\n${backend("b", port)}models:\n  main: { backend: b, model: "qwen2.5:7b" }\n`,
      { watch: true },
    );
    let fake: Awaited<ReturnType<typeof startOllamaFake>> | undefined;
    try {
      const down = await health(gw.url);
      assert.equal(down.code, 503, "no backend can serve");
      assert.equal(down.body.status, "down");
      assert.equal(down.body.backends[0].state, "down");
      assert.match(down.body.backends[0].reason, /connection refused/);
      assert.deepEqual(await served(gw.url), ["main"], "the alias only: nothing discovered yet");

      await new Promise((r) => setTimeout(r, 5000));
      fake = await startOllamaFake({ port, models: [{ name: "qwen2.5:7b" }, { name: "gemma3" }] });
      const started = performance.now();
      await within(3000, "gemma3 served", async () =>
        (await served(gw.url)).includes("gemma3:latest") ? true : undefined,
      );
      const took = performance.now() - started;
      t.diagnostic(`late server served ${Math.round(took)} ms after it started (watch period 1 s)`);
      const up = await health(gw.url);
      assert.equal(up.code, 200);
      assert.equal(up.body.status, "ok");
      assert.equal(up.body.backends[0].state, "up");
      assert.equal(up.body.backends[0].reason, undefined);
      assert.ok(Date.parse(up.body.backends[0].since) >= Date.now() - took - 1000, "since: when it came up");

      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      for (const model of ["main", "gemma3:latest"]) {
        const r = await client.chat.completions.create({
          model,
          messages: [{ role: "user", content: "hi" }],
        });
        assert.equal(typeof r.choices[0]?.message.content, "string", model);
      }
    } finally {
      await gw.close();
      await fake?.close();
    }
  });

  test("a model pulled into a running server appears in /v1/models without a request; one removed is reported", async () => {
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }] });
    const gw = await startGateway(
      `server: { watch_interval_s: 0.3 }\nbackends:\n${backend("b", fake.port)}`,
      {
        watch: true,
      },
    );
    try {
      assert.deepEqual(await served(gw.url), ["qwen2.5:7b"]);
      const chats = () => fake.requests.filter((r) => r.path === "/api/chat").length;
      fake.addModel({ name: "mistral-nemo" });
      await within(3000, "mistral-nemo listed", async () =>
        (await served(gw.url)).includes("mistral-nemo:latest") ? true : undefined,
      );
      assert.equal(chats(), 0, "no client request was needed");

      fake.removeModel("qwen2.5:7b");
      await within(3000, "qwen2.5:7b gone", async () =>
        (await served(gw.url)).includes("qwen2.5:7b") ? undefined : true,
      );
      const h = await health(gw.url);
      assert.deepEqual(h.body.backends[0].models_gone, ["qwen2.5:7b"]);
      assert.equal(h.body.backends[0].models_listed, 1);
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      await assert.rejects(
        client.chat.completions.create({ model: "qwen2.5:7b", messages: [{ role: "user", content: "x" }] }),
        (e: unknown) => e instanceof OpenAI.NotFoundError,
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  test("a killed backend turns /health degraded, then down (503) when none is left, and ok again; status says so", async () => {
    const fakeA = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }] });
    const fakeB = await startOllamaFake({ models: [{ name: "gemma3" }] });
    const portA = fakeA.port;
    const portB = fakeB.port;
    const gw = await startGateway(
      `server: { watch_interval_s: 0.3 }\nbackends:\n${backend("a", portA)}${backend("b", portB)}models:\n  main: { backend: a, model: "qwen2.5:7b" }\n`,
      { watch: true },
    );
    const status = () => runCli(["status", "--url", gw.url]);
    let againA: Awaited<ReturnType<typeof startOllamaFake>> | undefined;
    let againB: Awaited<ReturnType<typeof startOllamaFake>> | undefined;
    try {
      assert.equal((await health(gw.url)).body.status, "ok");
      const ok = await status();
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /: ok \(config/);
      assert.match(ok.out, /backend a \(ollama\) \S+: up since \d\d:\d\d:\d\d; /);

      await fakeA.close();
      const degraded = await within(3000, "a down", async () => {
        const h = await health(gw.url);
        return h.body.backends[0].state === "down" ? h : undefined;
      });
      assert.equal(degraded.code, 200, "b can still serve");
      assert.equal(degraded.body.status, "degraded");
      assert.match(degraded.body.backends[0].reason, /cannot reach backend a .*connection refused/);
      assert.equal(degraded.body.backends[1].state, "up");
      const s1 = await status();
      assert.equal(s1.code, 1, "not ok: a failing exit for scripts");
      assert.match(s1.out, /: degraded \(config/);
      assert.match(
        s1.out,
        /backend a \(ollama\) \S+: down since \d\d:\d\d:\d\d; [^\n]*\n {4}cannot reach backend a/,
      );
      assert.match(s1.out, /backend b \(ollama\) \S+: up since/);

      await fakeB.close();
      const down = await within(3000, "b down", async () => {
        const h = await health(gw.url);
        return h.code === 503 ? h : undefined;
      });
      assert.equal(down.body.status, "down");
      assert.deepEqual(
        down.body.backends.map((b: any) => b.state),
        ["down", "down"],
      );

      againA = await startOllamaFake({ port: portA, models: [{ name: "qwen2.5:7b" }] });
      againB = await startOllamaFake({ port: portB, models: [{ name: "gemma3" }] });
      const back = await within(3000, "ok again", async () => {
        const h = await health(gw.url);
        return h.body.status === "ok" ? h : undefined;
      });
      assert.equal(back.code, 200);
      assert.deepEqual(
        back.body.backends.map((b: any) => b.state),
        ["up", "up"],
      );
      const s3 = await status();
      assert.equal(s3.code, 0, s3.out);
      assert.match(s3.out, /backend a \(ollama\) \S+: up since /);
      assert.doesNotMatch(s3.out, /unreachable|down/);
    } finally {
      await gw.close();
      await againA?.close();
      await againB?.close();
    }
  });

  test("with no period, a request that cannot reach the backend has it looked at at once", async () => {
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }] });
    const port = fake.port;
    const gw = await startGateway(
      `server: { watch_interval_s: 0 }\nbackends:\n${backend("b", port)}models:\n  main: { backend: b, model: "qwen2.5:7b" }\n`,
      { watch: true },
    );
    let again: Awaited<ReturnType<typeof startOllamaFake>> | undefined;
    try {
      await fake.close();
      // no period: nothing looks until a request fails
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await health(gw.url)).body.backends[0].state, "up");
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      await assert.rejects(
        client.chat.completions.create({ model: "main", messages: [{ role: "user", content: "x" }] }),
      );
      await within(2000, "down after the failed request", async () =>
        (await health(gw.url)).code === 503 ? true : undefined,
      );
      again = await startOllamaFake({ port, models: [{ name: "qwen2.5:7b" }] });
      // the last target is tried all the same: its success has the backend looked at again
      const r = await client.chat.completions.create({
        model: "main",
        messages: [{ role: "user", content: "x" }],
      });
      assert.equal(typeof r.choices[0]?.message.content, "string");
      await within(2000, "up after the success", async () =>
        (await health(gw.url)).body.status === "ok" ? true : undefined,
      );
    } finally {
      await gw.close();
      await again?.close();
    }
  });
});
