/**
 * The dashboard's endpoints (src/server/routes/dashboard.ts) over a real gateway with a master key and a
 * journal: nothing of it without the key (the login form only), the cookie `/?key=` sets, the origin guard
 * still in force, the state, the requests with their filters and the doctor's explanation of a failure,
 * one request in full, the live event stream, and the dashboard's own requests never listed.
 * (The page itself, in a real browser: test/e2e/dashboard.e2e.ts.)
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { Journal } from "../../src/journal/journal.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { type RunningGateway, startGateway } from "../helpers.js";

const KEY = "sk-dashboard-master-1234";

describe("dashboard endpoints", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  let journal: Journal;
  let dir: string;
  let cookie: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "cb-dash-"));
    journal = Journal.open({ path: join(dir, "journal.db"), capture: true })!;
    fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      reply: { text: "Hello from the fake.", usage: { prompt: 12, completion: 5 } },
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
  });
  after(async () => {
    await gw.close();
    await fake.close();
    journal.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}${path}`, { headers, redirect: "manual" });

  test("without the key: the login form, and nothing of the gateway", async () => {
    const page = await get("/");
    assert.equal(page.status, 401);
    const text = await page.text();
    assert.match(text, /<form method="get" action="\/"/);
    assert.match(text, /name="key"/);
    assert.doesNotMatch(text, /app\.js|test-model|fake-model/);
    for (const p of [
      "/_dashboard/api/state",
      "/_dashboard/api/requests",
      "/_dashboard/events",
      "/_dashboard/api/requests/req_x",
    ]) {
      const r = await get(p);
      assert.equal(r.status, 401, p);
      assert.doesNotMatch(await r.text(), /test-model|fake-model|backend/);
    }
    const wrong = await get("/?key=sk-wrong");
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /not the master key/);
    const badCookie = await get("/_dashboard/api/state", { cookie: "clawbridge_dashboard=abc" });
    assert.equal(badCookie.status, 401);
  });

  test("/?key= sets an HttpOnly SameSite=Strict cookie (not the key) and sends the page back to /", async () => {
    const r = await get(`/?key=${KEY}`);
    assert.equal(r.status, 303);
    assert.equal(r.headers.get("location"), "/");
    const set = r.headers.get("set-cookie")!;
    assert.match(set, /^clawbridge_dashboard=[0-9a-f]{64}; Path=\/; HttpOnly; SameSite=Strict$/);
    assert.ok(!set.includes(KEY), "the cookie is not the key");
    cookie = set.split(";")[0]!;
    const page = await get("/", { cookie });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="\/_dashboard\/app\.js"><\/script>/);
    assert.match(page.headers.get("content-security-policy")!, /default-src 'none'; script-src 'self'/);
    const js = await get("/_dashboard/app.js", { cookie });
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type")!, /javascript/);
    assert.ok((await js.text()).length > 1000, "the bundled script");
    // the master key as an API client sends it works too
    assert.equal((await get("/_dashboard/api/state", { "x-api-key": KEY })).status, 200);
  });

  /** A GET with headers fetch() would not send as given (Origin, Host). */
  const raw = (path: string, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${gw.url}${path}`, { headers }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      req.end();
    });

  test("a page from another origin is refused by the origin guard, cookie or not", async () => {
    const r = await raw("/_dashboard/api/state", { cookie, origin: "http://evil.example" });
    assert.equal(r.status, 403);
    assert.doesNotMatch(r.body, /fake-model/);
    const page = await raw("/", { cookie, origin: "http://evil.example" });
    assert.equal(page.status, 403);
    // a page whose name was rebound to this machine (DNS rebinding) names itself in Host
    const rebound = await raw("/_dashboard/api/state", { cookie, host: "rebind.example" });
    assert.equal(rebound.status, 403);
    // the dashboard's own reads: same-origin GETs, no Origin header
    assert.equal((await raw("/_dashboard/api/state", { cookie })).status, 200);
  });

  test("state: backends with health and queue, models with their window", async () => {
    const s = (await (await get("/_dashboard/api/state", { cookie })).json()) as any;
    assert.equal(s.backends.length, 1);
    const b = s.backends[0];
    assert.equal(b.name, "b");
    assert.equal(b.state, "up");
    assert.equal(b.queue.running, 0);
    assert.deepEqual(b.queue.waiting, { foreground: 0, background: 0 });
    assert.equal(b.circuit, "closed");
    const m = s.models.find((x: any) => x.id === "test-model");
    assert.equal(m.backend, "b");
    assert.equal(m.model, "fake-model");
    assert.equal(m.contextWindow, 8192, "the window llama.cpp serves (n_ctx)");
    assert.equal(m.loaded, true);
  });

  test("requests: listed under the model asked, filtered, a failure explained; the dashboard's own not listed", async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 });
    await anthropic.messages.create({
      model: "test-model",
      max_tokens: 20,
      system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }] as any,
      messages: [{ role: "user", content: "hi" }],
    });
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    await assert.rejects(
      openai.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }),
      (e: any) => e.status === 404,
    );
    let all: any[] = [];
    for (let i = 0; i < 50 && all.length < 2; i++) {
      all = ((await (await get("/_dashboard/api/requests", { cookie })).json()) as any).requests;
      if (all.length < 2) await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(
      all.map((e) => [e.route, e.model, e.status]),
      [
        ["POST /v1/messages", "test-model", 200],
        ["POST /v1/chat/completions", "no-such-model", 404],
      ],
      "the two API requests, none of the dashboard's own",
    );
    const [ok, failed] = all;
    assert.equal(ok.backend, "b");
    assert.equal(ok.target, "fake-model");
    assert.equal(ok.explanation, undefined);
    assert.equal(ok.bodies, undefined, "no bodies in the list");
    assert.match(failed.explanation.detail, /no-such-model/);
    assert.match(failed.explanation.fix, /clawbridge models/);

    const only404 = ((await (await get("/_dashboard/api/requests?status=4xx", { cookie })).json()) as any)
      .requests;
    assert.deepEqual(
      only404.map((e: any) => e.model),
      ["no-such-model"],
    );
    const byModel = (
      (await (await get("/_dashboard/api/requests?model=test-model", { cookie })).json()) as any
    ).requests;
    assert.deepEqual(
      byModel.map((e: any) => e.status),
      [200],
    );
    const byClient = (
      (await (await get("/_dashboard/api/requests?client=10.9.9.9", { cookie })).json()) as any
    ).requests;
    assert.equal(byClient.length, 0);
    const local = ((await (await get("/_dashboard/api/requests?client=127.0.0.1", { cookie })).json()) as any)
      .requests;
    assert.equal(local.length, 2);

    // one in full: the stages' changes, the timeline, the bodies (captured)
    const one = (await (await get(`/_dashboard/api/requests/${ok.id}`, { cookie })).json()) as any;
    assert.deepEqual(
      one.notes.map((n: any) => n.subject),
      ["cache_control"],
    );
    assert.ok(one.timeline.some((t: any) => t.event === "sent upstream" && t.detail === "b/fake-model"));
    assert.match(one.bodies.request, /Be brief/);
    assert.match(one.bodies.upstream, /"model":"fake-model"/);
    assert.match(one.bodies.answer, /Hello from the fake/);
    assert.ok(!JSON.stringify(one).includes(KEY), "no key anywhere");
    assert.equal((await get("/_dashboard/api/requests/req_nothing", { cookie })).status, 404);
  });

  test("the event stream: the requests in flight first, then each change of phase and each end", async () => {
    const ac = new AbortController();
    const r = await fetch(`${gw.url}/_dashboard/events`, { headers: { cookie }, signal: ac.signal });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type")!, /text\/event-stream/);
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    let text = "";
    const until = async (re: RegExp) => {
      while (!re.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value);
      }
    };
    await until(/event: snapshot\ndata: \[\]\n\n/);
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    await openai.chat.completions.create({
      model: "test-model",
      messages: [{ role: "user", content: "hey" }],
    });
    await until(/event: done\n/);
    ac.abort();
    const updates = [...text.matchAll(/event: update\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!));
    assert.ok(updates.length >= 2, "a start and a change of phase");
    assert.ok(updates.every((u) => u.model === "test-model"));
    assert.ok(updates.some((u) => u.phase === "generating" || u.phase === "reading the prompt"));
    const done = JSON.parse(/event: done\ndata: (.*)\n/.exec(text)![1]!);
    assert.equal(done.model, "test-model");
    assert.equal(done.status, 200);
    assert.equal(done.bodies, undefined, "no bodies on the stream");
  });
});

describe("dashboard without a master key", () => {
  test("the page is served at once, on loopback, with its data", async () => {
    const fake = await startOpenAICompatFake({ flavor: "llamacpp" });
    const gw = await startGateway(
      `backends:\n  b: { kind: openai-compat, url: "${fake.url}", flavor: llamacpp }\nmodels:\n  test-model: { backend: b, model: "fake-model" }\n`,
    );
    try {
      const page = await fetch(`${gw.url}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /_dashboard\/app\.js/);
      const s = (await (await fetch(`${gw.url}/_dashboard/api/state`)).json()) as any;
      assert.deepEqual(
        s.models.map((m: any) => m.id),
        ["test-model", "fake-model"],
      );
      // without a journal: the requests of this run
      const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "none", maxRetries: 0 });
      await openai.chat.completions.create({
        model: "test-model",
        messages: [{ role: "user", content: "hi" }],
      });
      let listed: any[] = [];
      for (let i = 0; i < 50 && !listed.length; i++) {
        listed = ((await (await fetch(`${gw.url}/_dashboard/api/requests`)).json()) as any).requests;
        if (!listed.length) await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(
        listed.map((e) => [e.model, e.status]),
        [["test-model", 200]],
      );
      const one = (await (await fetch(`${gw.url}/_dashboard/api/requests/${listed[0].id}`)).json()) as any;
      assert.equal(one.captureOn, false);
      assert.equal(one.bodies, undefined);
      assert.equal((await fetch(`${gw.url}/favicon.ico`)).status, 204);
      // an unknown dashboard path is the dashboard's 404, not the API's
      assert.equal((await fetch(`${gw.url}/_dashboard/nothing`)).status, 404);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
