import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { startOllamaFake } from "../fakes/ollama.js";
import { listenUrl, oneBackend, startGateway } from "../helpers.js";

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, "close");
  return port;
}

function cli(args: string[]) {
  return spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe("serve: what the user reads", () => {
  test("an unreachable backend answers 503 in each dialect, which the SDKs and agent clients retry", async () => {
    const gw = await startGateway(oneBackend("ollama", `http://127.0.0.1:${await closedPort()}`, "q"));
    try {
      const anthropic = new Anthropic({ baseURL: gw.url, apiKey: "x", maxRetries: 0 });
      const a = await anthropic.messages
        .create({ model: "test-model", max_tokens: 5, messages: [{ role: "user", content: "hi" }] })
        .catch((e: unknown) => e);
      assert.ok(a instanceof Anthropic.InternalServerError, String(a));
      assert.equal(a.status, 503);
      assert.equal((a.error as { error: { type: string } }).error.type, "api_error");
      assert.match(
        a.message,
        /cannot reach backend b at http:\/\/127\.0\.0\.1:\d+: connection refused — is the server running\?/,
      );

      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
      const o = await openai.chat.completions
        .create({ model: "test-model", messages: [{ role: "user", content: "hi" }] })
        .catch((e: unknown) => e);
      assert.ok(o instanceof OpenAI.InternalServerError, String(o));
      assert.equal(o.status, 503);
      assert.equal(o.type, "server_error");
      assert.equal(o.code, "backend_unreachable");

      // the SDK's own retry logic takes it: one request and two retries reach the gateway
      const retrying = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 2, timeout: 10_000 });
      const before = await (await fetch(`${gw.url}/metrics`)).text();
      await retrying.chat.completions
        .create({ model: "test-model", messages: [{ role: "user", content: "hi" }] })
        .catch(() => undefined);
      const count = (t: string) =>
        Number(/surface="openai",model="test-model",outcome="unavailable"\} (\d+)/.exec(t)?.[1] ?? 0);
      assert.equal(count(await (await fetch(`${gw.url}/metrics`)).text()) - count(before), 3);
    } finally {
      await gw.close();
    }
  });

  test("an aliased model its backend does not have is warned of at start", async () => {
    const fake = await startOllamaFake({ models: [{ name: "qwen2.5:7b" }] });
    const file = join(mkdtempSync(join(tmpdir(), "clawbridge-")), "clawbridge.yaml");
    writeFileSync(file, oneBackend("ollama", fake.url, "qwen2.5:14b", "", "claude-haiku-4-5"));
    const child = cli(["serve", "--config", file, "--port", "0"]);
    try {
      const { out } = await listenUrl(child);
      assert.match(
        out,
        /WARNING model claude-haiku-4-5: backend b does not have qwen2\.5:14b \(it has: qwen2\.5:7b\); ollama pull qwen2\.5:14b/,
      );
    } finally {
      child.kill("SIGTERM");
      await once(child, "exit");
      await fake.close();
    }
  });

  test("--log-level verbose names the levels allowed, exit 2", async () => {
    const child = cli(["serve", "--log-level", "verbose", "--port", "0"]);
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d;
    });
    const [code] = await once(child, "exit");
    assert.equal(code, 2);
    assert.equal(
      err.trim(),
      "clawbridge: --log-level must be one of trace, debug, info, warn, error, fatal, silent, not 'verbose'",
    );
  });
});
