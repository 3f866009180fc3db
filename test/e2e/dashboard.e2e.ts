/**
 * The dashboard in a real headless Chromium (the system's, found or installed by scripts/browser-setup.mjs;
 * driven by playwright-core), against a gateway with a master key and a journal that captures bodies, and a
 * fake llama.cpp that loads and streams slowly:
 * - without the key the page is a login form, and the page's own reads of the dashboard's data are refused;
 * - with it (the form sets the cookie), the overview shows the backend, its queue and the model;
 * - a request appears in flight while it streams, under the model name the client asked for, with its phase;
 * - its detail shows what the stages changed, the upstream request, the timeline and the answer;
 * - recent requests list a failure with the doctor's fix, and filter by model; the charts draw.
 * A screenshot of each page is written to test-artifacts/dashboard/ (git-ignored; the path is printed).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { type Browser, chromium, type Page } from "playwright-core";
import { Journal } from "../../src/journal/journal.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { type RunningGateway, startGateway } from "../helpers.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const E2E_DIR = resolve(process.env.CLAWBRIDGE_E2E_DIR || join(REPO_ROOT, ".e2e"));
const SHOTS = join(REPO_ROOT, "test-artifacts", "dashboard");
const KEY = "sk-dashboard-e2e-5678";

function chromiumPath(): string {
  const file = join(E2E_DIR, "chromium.json");
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { path: string }).path;
  } catch {
    throw new Error(`no Chromium recorded in ${file}: run \`node scripts/browser-setup.mjs\``);
  }
}

async function shot(page: Page, name: string): Promise<void> {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

describe("the dashboard in a real browser", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  let journal: Journal;
  let dir: string;
  let browser: Browser;
  let page: Page;
  /** Whether the next answer is the slow one. */
  let slow = false;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), "cb-dash-e2e-"));
    journal = Journal.open({ path: join(dir, "journal.db"), capture: true })!;
    fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      reply: () =>
        slow
          ? {
              text: "Streaming slowly, one chunk at a time, so the page can watch it.",
              chunkSize: 6,
              fault: { kind: "slowLoad", ms: 600, chunkMs: 400 },
            }
          : { text: "A quick answer." },
    });
    gw = await startGateway(
      `
server: { master_key: ${KEY} }
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: llamacpp }
models:
  test-model: { backend: b, model: "fake-model" }
`,
      { journal },
    );
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    await fake?.close();
    journal?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("without the key: a login form, nothing of the gateway", async () => {
    const r = await page.goto(`${gw.url}/`);
    assert.equal(r?.status(), 401);
    await page.locator("input[name=key]").waitFor();
    const text = await page.locator("body").innerText();
    assert.doesNotMatch(text, /test-model|fake-model|Backends/);
    const state = await page.evaluate(async () => (await fetch("/_dashboard/api/state")).status);
    assert.equal(state, 401);
    await shot(page, "login");
  });

  test("with the key: the overview shows the backend, its queue and the model", async () => {
    await page.fill("input[name=key]", KEY);
    await page.click("button[type=submit]");
    await page.waitForURL(`${gw.url}/`);
    await page.locator("tr[data-backend=b]").waitFor();
    const backend = await page.locator("tr[data-backend=b]").innerText();
    assert.match(backend, /up/);
    assert.match(backend, /OpenAI-compatible|openai-compat/);
    const models = await page.locator("section", { hasText: "Models" }).last().innerText();
    assert.match(models, /test-model/);
    assert.match(models, /b\/fake-model/);
    assert.match(models, /8,192/);
    assert.match(
      await page.locator("section", { hasText: "Queues and lanes" }).innerText(),
      /0 running of 1/,
    );
    assert.ok(!page.url().includes(KEY), "the key left the address");
  });

  test("a request appears while it streams, with its phase; its detail shows the stage changes and the upstream request", async () => {
    slow = true;
    const client = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 });
    const streamed = (async () => {
      const s = client.messages.stream({
        model: "test-model",
        max_tokens: 200,
        // a cache_control block: the normalize stage drops it and says so
        system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }] as any,
        messages: [{ role: "user", content: "Tell me something, slowly." }],
      });
      return (await s.finalMessage()).content;
    })();
    const row = page.locator("table.inflight tr[data-request]");
    await row.waitFor({ timeout: 5000 });
    assert.match(await row.innerText(), /test-model/, "under the model name the client asked for");
    // the phase moves on without a reload: loading, then generating while the chunks come
    await page
      .locator("table.inflight tr[data-request]", { hasText: "generating" })
      .waitFor({ timeout: 5000 });
    await shot(page, "overview-in-flight");
    const id = (await row.getAttribute("data-request"))!;
    await row.locator("a").click();
    await page.waitForURL(`${gw.url}/#/requests/${id}`);
    // still streaming: its phase (once the page has read it: it says "Loading…" first), and the detail once it ends
    let detail = "";
    for (const end = Date.now() + 5000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      detail = await page.locator("main").innerText();
      if (/In flight: .*generating.*test-model/s.test(detail)) break;
    }
    assert.match(detail, /In flight: .*generating.*test-model/s);
    const content = await streamed;
    slow = false;
    assert.match(JSON.stringify(content), /Streaming slowly/);
    // when it ends, the detail appears in place
    const changes = page.locator("section", { hasText: "What the stages changed" });
    await changes.waitFor({ timeout: 5000 });
    assert.match(await changes.innerText(), /cache_control/);
    const upstream = await page.locator("section", { hasText: "The upstream request" }).innerText();
    assert.match(upstream, /"model": "fake-model"/);
    assert.match(upstream, /"stream": true/);
    assert.match(await page.locator("section", { hasText: "The client's request" }).innerText(), /Be brief/);
    const answer = await page.locator("section", { hasText: "The answer" }).last().innerText();
    assert.match(answer, /event: message_start[\s\S]*"text":"Stream"[\s\S]*event: message_stop/);
    const timeline = await page.locator("table.timeline").innerText();
    for (const ev of ["received", "sent upstream", "headers", "first token", "done"])
      assert.match(timeline, new RegExp(ev));
    assert.match(await page.locator("dl.facts").innerText(), /test-model[\s\S]*b\/fake-model[\s\S]*200 ok/);
    await shot(page, "request-detail");
  });

  test("recent requests: a failure with the doctor's fix, filters, and the charts", async () => {
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    for (let i = 0; i < 3; i++)
      await openai.chat.completions.create({
        model: "test-model",
        messages: [{ role: "user", content: `hi ${i}` }],
      });
    await assert.rejects(
      openai.chat.completions.create({
        model: "gpt-nonexistent",
        messages: [{ role: "user", content: "hi" }],
      }),
    );
    await page.goto(`${gw.url}/#/requests`);
    const failed = page.locator("table.requests tr.failed");
    await failed.waitFor({ timeout: 5000 });
    const text = await failed.innerText();
    assert.match(text, /gpt-nonexistent/);
    assert.match(text, /404 not_found/);
    const why = await page
      .locator(`tr.why[data-why="${await failed.getAttribute("data-request")}"]`)
      .innerText();
    assert.match(why, /no backend serves the model "gpt-nonexistent"/);
    assert.match(why, /Fix: name a model that `clawbridge models` lists/);
    assert.equal(await page.locator("table.requests tbody tr[data-request]").count(), 5);
    await shot(page, "requests");
    await page.selectOption("select[name=model]", "test-model");
    await page.waitForFunction(
      () => (globalThis as any).document.querySelectorAll("table.requests tr.failed").length === 0,
    );
    assert.equal(await page.locator("table.requests tbody tr[data-request]").count(), 4);
    await page.selectOption("select[name=model]", "");
    await page.selectOption("select[name=status]", "4xx");
    await page.waitForFunction(
      () =>
        (globalThis as any).document.querySelectorAll("table.requests tbody tr[data-request]").length === 1,
    );
    assert.match(await page.locator("table.requests tr[data-request]").innerText(), /gpt-nonexistent/);

    await page.click("nav a[href='#/charts']");
    await page.locator("svg.chart").first().waitFor();
    assert.equal(await page.locator("svg.chart").count(), 3);
    assert.equal(await page.locator("svg.chart").first().locator("circle").count(), 4, "a point per success");
    await shot(page, "charts");
    await page.click("nav a[href='#/']");
    await page.locator("tr[data-backend=b]").waitFor();
    await shot(page, "overview");
  });
});
