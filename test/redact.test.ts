import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { request } from "undici";
import { renderChecks, runDoctor } from "../src/doctor/doctor.js";
import { createLogger } from "../src/log.js";
import { redact } from "../src/redact.js";
import { renderStatus } from "../src/cli/status.js";
import { startOllamaFake } from "./fakes/ollama.js";
import type { FakeServer } from "./fakes/script.js";
import { listenUrl, oneBackend, runCli, startGateway } from "./helpers.js";

const SECRET = "s3cr3t-pa55";
const USER = "gw-user";
const dir = mkdtempSync(join(tmpdir(), "cb-redact-"));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
/** A backend URL with credentials, to the fake's port. */
const withCreds = (url: string) => url.replace("http://", `http://${USER}:${SECRET}@`);
const basic = `Basic ${Buffer.from(`${USER}:${SECRET}`).toString("base64")}`;
const noSecret = (text: string, where: string) => {
  assert.ok(!text.includes(SECRET), `${where} shows the password:\n${text}`);
  assert.ok(!text.includes(`${USER}:`), `${where} shows the user:\n${text}`);
};

describe("redact", () => {
  test("credentials and keys in URLs, anywhere in a text", () => {
    assert.equal(redact("http://u:p@h:1/v1"), "http://***@h:1/v1");
    assert.equal(redact("https://token@h"), "https://***@h");
    // WHATWG URLs take the last @ of the authority: so does redact
    assert.equal(redact("http://u:p@ss@h/x@y"), "http://***@h/x@y");
    assert.equal(
      redact('{"err":"cannot reach http://a:b@h:8/ and https://c:d@k/"}'),
      '{"err":"cannot reach http://***@h:8/ and https://***@k/"}',
    );
    assert.equal(redact("https://h/v1?key=AIza123&alt=sse"), "https://h/v1?key=***&alt=sse");
    assert.equal(redact("http://h/x?api_key=1&access_token=2"), "http://h/x?api_key=***&access_token=***");
    // nothing to hide: the same text
    for (const s of ["http://h:1/v1/models", "mail me@example.org at http://h/", "a=b", "plain"])
      assert.equal(redact(s), s);
  });

  test("the log: every line written, whatever field holds the URL", async () => {
    let out = "";
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += chunk;
        cb();
      },
    });
    const log = createLogger({ level: "info" }, sink);
    log.warn({ backend: "b", url: `http://${USER}:${SECRET}@h:1` }, "backend did not answer");
    log.error({ err: new Error(`GET http://${USER}:${SECRET}@h:1/api/tags failed`) }, "discovery");
    log.info(`serving http://${USER}:${SECRET}@h:1/v1?token=${SECRET}`);
    await new Promise((r) => setImmediate(r));
    assert.equal(out.trim().split("\n").length, 3, out);
    noSecret(out, "the log");
    assert.match(out, /"url":"http:\/\/\*\*\*@h:1"/);
    assert.match(out, /http:\/\/\*\*\*@h:1\/api\/tags failed/);
  });
});

describe("backend credentials stay out of what is shown", () => {
  let fake: FakeServer;
  before(async () => {
    fake = await startOllamaFake({ models: [{ name: "qwen2.5:14b" }], reply: { text: "pong" } });
  });
  after(() => fake.close());

  test("/health shows the URL redacted; the backend still gets the credentials", async () => {
    const down = "http://user2:hunter2@127.0.0.1:9";
    const gw = await startGateway(
      `backends:\n  b:\n    kind: ollama\n    url: "${withCreds(fake.url)}"\n    discover: false\n  gone:\n    kind: ollama\n    url: "${down}"\nmodels:\n  test-model: { backend: b, model: "qwen2.5:14b" }\n`,
    );
    try {
      const r = await request(`${gw.url}/health`);
      const text = await r.body.text();
      noSecret(text, "/health");
      assert.ok(!text.includes("hunter2"), text);
      const health = JSON.parse(text);
      const b = health.backends.find((x: any) => x.name === "b");
      assert.equal(b.url, fake.url.replace("http://", "http://***@"));
      const gone = health.backends.find((x: any) => x.name === "gone");
      assert.equal(gone.state, "down");
      assert.equal(health.status, "degraded", "one of two backends can serve");
      assert.equal(gone.url, "http://***@127.0.0.1:9");

      const chat = await request(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "test-model", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(chat.statusCode, 200);
      await chat.body.text();
      const sent = fake.requests.filter((q) => q.path === "/api/chat").at(-1);
      assert.equal(sent?.headers.authorization, basic, "the credentials still go to the backend");
    } finally {
      await gw.close();
    }
  });

  test("with a master key, /health tells a caller without it only that the gateway is up", async () => {
    const gw = await startGateway(
      `server:\n  master_key: sk-gw\n${oneBackend("ollama", withCreds(fake.url), "qwen2.5:14b", "    discover: false")}`,
    );
    try {
      for (const headers of [{}, { "x-api-key": "wrong" }, { authorization: "Bearer wrong" }]) {
        const r = await request(`${gw.url}/health`, { headers });
        assert.equal(r.statusCode, 200);
        assert.deepEqual(await r.body.json(), { status: "ok" });
      }
      const full = (await (
        await request(`${gw.url}/health`, { headers: { "x-api-key": "sk-gw" } })
      ).body.json()) as any;
      assert.deepEqual(full.models, ["test-model"]);
      assert.equal(full.backends[0].url, fake.url.replace("http://", "http://***@"));
      assert.equal(full.config, "test.yaml");
    } finally {
      await gw.close();
    }
  });

  test("the start-up banner", async () => {
    const cfg = file(
      "banner.yaml",
      oneBackend("ollama", withCreds(fake.url), "qwen2.5:14b", "    discover: false"),
    );
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "serve", "--config", cfg, "--port", "0"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      const { out } = await listenUrl(child);
      noSecret(out, "the banner");
      assert.match(out, /backend b \(ollama\) http:\/\/\*\*\*@127\.0\.0\.1:\d+ — 1 model/);
      child.kill("SIGTERM");
      await once(child, "exit");
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("clawbridge status: redacted, and still asks Ollama what is loaded with the configured credentials", async () => {
    const gw = await startGateway(
      `server:\n  master_key: sk-gw\n${oneBackend("ollama", withCreds(fake.url), "qwen2.5:14b", "    discover: false")}`,
    );
    const cfg = file(
      "status.yaml",
      `server:\n  master_key: sk-gw\n${oneBackend("ollama", withCreds(fake.url), "qwen2.5:14b")}`,
    );
    try {
      const r = await runCli(["status", "--url", gw.url, "--config", cfg]);
      assert.equal(r.code, 0, r.out);
      noSecret(r.out, "status");
      assert.match(
        r.out,
        /backend b \(ollama\) http:\/\/\*\*\*@127\.0\.0\.1:\d+: up since [\d:]+; .*loaded: qwen2\.5:14b/,
      );
      const ps = fake.requests.filter((q) => q.path === "/api/ps").at(-1);
      assert.equal(ps?.headers.authorization, basic);

      // what an older gateway sends unredacted is redacted on the way out
      const lines = renderStatus(
        `http://${USER}:${SECRET}@127.0.0.1:4000`,
        {
          status: "ok",
          config: "c.yaml",
          backends: [
            {
              name: "b",
              kind: "openai-compat",
              url: `http://${USER}:${SECRET}@h/v1`,
              status: "unreachable",
              error: `cannot reach http://${USER}:${SECRET}@h`,
            },
          ],
          models: [],
        },
        new Map(),
      );
      noSecret(lines.join("\n"), "renderStatus");
    } finally {
      await gw.close();
    }
  });

  test("clawbridge doctor", async () => {
    const cfg = file(
      "doctor.yaml",
      `backends:\n  b:\n    kind: ollama\n    url: "${withCreds(fake.url)}/api"\n  gone:\n    kind: openai-compat\n    url: "http://${USER}:${SECRET}@127.0.0.1:9/v1?key=${SECRET}"\nmodels:\n  m: { backend: b, model: "qwen2.5:14b" }\n`,
    );
    const checks = await runDoctor({ config: cfg, openclawConfig: join(dir, "none.json") });
    const text = `${renderChecks(checks)}\n${JSON.stringify(checks)}`;
    noSecret(text, "doctor");
    assert.match(text, /backend b reachable: http:\/\/\*\*\*@127\.0\.0\.1:\d+\/api, 1 model/);
    assert.match(text, /has a path \(\/api\)/);
    assert.equal(checks.find((c) => c.id === "backend:gone")?.status, "fail");
  });

  test("clawbridge doctor finds a running gateway that has a master key", async () => {
    const cfgText = (port: number) =>
      `server:\n  port: ${port}\n  master_key: sk-gw\n${oneBackend("ollama", fake.url, "qwen2.5:14b", "    discover: false")}`;
    const gw = await startGateway(cfgText(0));
    try {
      const port = Number(new URL(gw.url).port);
      const found = await runDoctor({
        config: file("dr-key.yaml", cfgText(port)),
        openclawConfig: join(dir, "none.json"),
      });
      const c = found.find((x) => x.id === "gateway:port");
      assert.equal(c?.status, "ok", renderChecks(found));
      assert.match(c!.title, /clawbridge running/);

      const other = file("dr-other.yaml", cfgText(port).replace("sk-gw", "sk-other"));
      const w = (await runDoctor({ config: other, openclawConfig: join(dir, "none.json") })).find(
        (x) => x.id === "gateway:port",
      );
      assert.equal(w?.status, "warn");
      assert.match(w!.detail!, /not to the master key in the config/);
    } finally {
      await gw.close();
    }
  });
});
