/**
 * Web pages against clawbridge, in a real headless Chromium (the system's, found or installed by
 * scripts/browser-setup.mjs; driven by playwright-core):
 * - a page from an origin the user did not allow cannot use the gateway: neither a drive-by `text/plain` POST
 *   (no preflight: the browser sends it, clawbridge must refuse it) nor the official SDKs' JSON requests;
 * - a page from an origin in server.cors_origins can: the official Anthropic and OpenAI SDKs, bundled for the
 *   browser, get answers from the fake backend through the gateway, streaming included;
 * - a page whose own name is rebound to this machine (DNS rebinding, played with Chromium's host resolver
 *   rules) cannot read the gateway's answers.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type Browser, chromium, type Page } from "playwright-core";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { oneBackend, type RunningGateway, startGateway } from "../helpers.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where scripts/browser-setup.mjs records the Chromium it found. */
const E2E_DIR = resolve(process.env.CLAWBRIDGE_E2E_DIR || join(REPO_ROOT, ".e2e"));

const KEY = "sk-browser-test";

/** The Chromium that scripts/browser-setup.mjs found or installed. */
function chromiumPath(): string {
  const file = join(E2E_DIR, "chromium.json");
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { path: string }).path;
  } catch {
    throw new Error(`no Chromium recorded in ${file}: run \`node scripts/browser-setup.mjs\``);
  }
}

/** Both official SDKs as one browser script: globals `Anthropic` and `OpenAI`. */
async function sdkBundle(): Promise<string> {
  const r = await build({
    stdin: {
      contents:
        'import Anthropic from "@anthropic-ai/sdk"; import OpenAI from "openai"; Object.assign(globalThis, { Anthropic, OpenAI });',
      resolveDir: REPO_ROOT,
      loader: "js",
    },
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  return r.outputFiles[0]!.text;
}

/** A web server for pages: an empty page at /, the SDKs at /sdk.js. */
async function pageServer(host: string, sdk: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === "/sdk.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end(sdk);
      return;
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end('<!doctype html><title>page</title><script src="/sdk.js"></script>');
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** What a page's script got: its value, or the error it threw (name and message). */
type Outcome = { ok: true; value: any } | { ok: false; error: string };

async function inPage(page: Page, fn: (gw: string) => Promise<unknown>, gw: string): Promise<Outcome> {
  try {
    return { ok: true, value: await page.evaluate(fn, gw) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

describe("web pages in a real browser", () => {
  let fake: FakeServer;
  /** As most users run it: loopback, no key; the web UI's origin allowed. */
  let gw: RunningGateway;
  /** With a master key too. */
  let keyed: RunningGateway;
  let browser: Browser;
  let allowed: Awaited<ReturnType<typeof pageServer>>;
  let foreign: Awaited<ReturnType<typeof pageServer>>;
  const chats = () => fake.requests.filter((r) => r.path.endsWith("/chat/completions")).length;

  before(async () => {
    const sdk = await sdkBundle();
    // two origins on this machine: the web UI the user allowed, and any other page
    allowed = await pageServer("127.0.0.1", sdk);
    foreign = await pageServer("127.0.0.2", sdk);
    fake = await startOpenAICompatFake({ models: ["m"], reply: { text: "pong from the backend" } });
    const backend = oneBackend("openai-compat", `${fake.url}/v1`, "m", "    discover: false");
    gw = await startGateway(`server:\n  cors_origins: ["${allowed.origin}"]\n${backend}`);
    keyed = await startGateway(
      `server:\n  master_key: ${KEY}\n  cors_origins: ["${allowed.origin}"]\n${backend}`,
    );
    browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      // the rebinding page's name resolves to this machine, as a rebinding DNS server would make it
      args: ["--host-resolver-rules=MAP rebind.example 127.0.0.1"],
    });
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await keyed?.close();
    await fake?.close();
    await allowed?.close();
    await foreign?.close();
  });

  test("a page from another origin cannot use the gateway (no key set, as by default)", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${foreign.origin}/`);
      const before = chats();
      // the drive-by: text/plain needs no preflight, so the browser sends it, key or no key
      const plain = await inPage(
        page,
        async (base) => {
          const body = JSON.stringify({ model: "test-model", messages: [{ role: "user", content: "hi" }] });
          await fetch(`${base}/v1/chat/completions`, {
            method: "POST",
            mode: "no-cors",
            headers: { "content-type": "text/plain" },
            body,
          });
          const r = await fetch(`${base}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "text/plain" },
            body,
          });
          return r.status;
        },
        gw.url,
      );
      assert.equal(plain.ok, false, "the page read an answer");
      assert.match((plain as { error: string }).error, /TypeError: Failed to fetch/);

      // a JSON fetch, and the official SDKs as a web UI would use them (they send the key)
      const json = await inPage(
        page,
        async (base) =>
          (
            await fetch(`${base}/v1/messages`, {
              method: "POST",
              headers: { "content-type": "application/json", "x-api-key": "sk-browser-test" },
              body: JSON.stringify({
                model: "test-model",
                max_tokens: 5,
                messages: [{ role: "user", content: "hi" }],
              }),
            })
          ).status,
        gw.url,
      );
      assert.equal(json.ok, false);
      const anthropic = await inPage(
        page,
        async (base) => {
          const w = globalThis as any;
          const client = new w.Anthropic({
            baseURL: base,
            apiKey: "sk-browser-test",
            dangerouslyAllowBrowser: true,
            maxRetries: 0,
          });
          const m = await client.messages.create({
            model: "test-model",
            max_tokens: 5,
            messages: [{ role: "user", content: "hi" }],
          });
          return m.content[0].text;
        },
        gw.url,
      );
      assert.equal(anthropic.ok, false);
      assert.match((anthropic as { error: string }).error, /Connection error/);
      const models = await inPage(page, async (base) => (await fetch(`${base}/health`)).status, gw.url);
      assert.equal(models.ok, false);

      // let the no-cors request land, then count: nothing reached the backend
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(chats(), before, "a request from the foreign page reached the backend");
    } finally {
      await page.close();
    }
  });

  test("a page from an origin in server.cors_origins uses the gateway with the official SDKs", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${allowed.origin}/`);
      const before = chats();
      const anthropic = await inPage(
        page,
        async (base) => {
          const w = globalThis as any;
          const client = new w.Anthropic({
            baseURL: base,
            apiKey: "sk-browser-test",
            dangerouslyAllowBrowser: true,
            maxRetries: 0,
          });
          const m = await client.messages.create({
            model: "test-model",
            max_tokens: 20,
            messages: [{ role: "user", content: "ping" }],
          });
          return m.content[0].text;
        },
        gw.url,
      );
      assert.deepEqual(anthropic, { ok: true, value: "pong from the backend" });

      const openai = await inPage(
        page,
        async (base) => {
          const w = globalThis as any;
          const client = new w.OpenAI({
            baseURL: `${base}/v1`,
            apiKey: "sk-browser-test",
            dangerouslyAllowBrowser: true,
            maxRetries: 0,
          });
          const stream = await client.chat.completions.create({
            model: "test-model",
            stream: true,
            messages: [{ role: "user", content: "ping" }],
          });
          let text = "";
          for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
          return text;
        },
        keyed.url,
      );
      // with a master key, sent as the SDK sends it (authorization)
      assert.deepEqual(openai, { ok: true, value: "pong from the backend" });
      assert.equal(chats(), before + 2);

      // the key still counts: a wrong one is a 401 the page can read
      const wrongKey = await inPage(
        page,
        async (base) => {
          const r = await fetch(`${base}/v1/models`, { headers: { authorization: "Bearer wrong" } });
          return { status: r.status, body: await r.json() };
        },
        keyed.url,
      );
      assert.equal(wrongKey.ok, true);
      assert.equal((wrongKey as { value: any }).value.status, 401);
    } finally {
      await page.close();
    }
  });

  test("a page rebound to this machine (DNS rebinding) cannot read the gateway", async () => {
    const page = await browser.newPage();
    try {
      // the attacker's page now resolves to 127.0.0.1, on the gateway's port: its own origin, so no Origin check
      // helps; the Host it sends is its own name
      const port = new URL(gw.url).port;
      const res = await page.goto(`http://rebind.example:${port}/health`);
      assert.equal(res?.status(), 403);
      assert.match(await page.content(), /server\.allowed_hosts/);
      const read = await inPage(
        page,
        async () => {
          const r = await fetch("/v1/models");
          return { status: r.status, text: await r.text() };
        },
        gw.url,
      );
      assert.equal(read.ok, true);
      const { status, text } = (read as { value: { status: number; text: string } }).value;
      assert.equal(status, 403);
      assert.doesNotMatch(text, /test-model/);
    } finally {
      await page.close();
    }
  });
});
