/**
 * `clawbridge requests`, the real CLI spawned on a real journal: lists (newest last, filtered),
 * shows one entry in full, and follows new ones as a gateway writes them.
 * Run: node --import tsx --test test/cli/requests.test.ts
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Journal } from "../../src/journal/journal.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { type RunningGateway, runCli, startGateway } from "../helpers.js";

describe("clawbridge requests", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  let journal: Journal;
  const path = join(mkdtempSync(join(tmpdir(), "cb-requests-")), "journal.db");

  const ask = async (model: string, text = "hi") => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: text }] }),
    });
    await res.text();
    return res.status;
  };
  const written = async (n: number) => {
    for (let i = 0; i < 100 && journal.count() < n; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(journal.count(), n);
  };

  before(async () => {
    fake = await startOpenAICompatFake({
      flavor: "llamacpp",
      reply: { text: "fine", usage: { prompt: 7, completion: 3 } },
    });
    journal = Journal.open({ path, capture: true })!;
    gw = await startGateway(
      `
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: llamacpp }
models:
  test-model: { backend: b, model: "fake-model" }
`,
      { journal },
    );
    assert.equal(await ask("test-model", "first"), 200);
    assert.equal(await ask("missing-model"), 404);
    assert.equal(await ask("test-model", "third"), 200);
    await written(3);
  });
  after(async () => {
    await gw.close();
    await fake.close();
    journal.close();
  });

  test("lists the latest entries, one per line, newest last; filters by model and status", async () => {
    const r = await runCli(["requests", "--db", path]);
    assert.equal(r.code, 0, r.out);
    const lines = r.out.trim().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /req_\S+\s+openai\s+test-model → b\/fake-model\s+200\s+\d+ ms.*7→3 tok/);
    assert.match(lines[1]!, /missing-model\s+404 not_found\s+\d+ ms.*— .*missing-model/);
    assert.match(lines[2]!, /test-model → b\/fake-model\s+200/);

    const only404 = await runCli(["requests", "--db", path, "--status", "4xx"]);
    assert.equal(only404.out.trim().split("\n").length, 1);
    assert.match(only404.out, /missing-model/);
    const byModel = await runCli(["requests", "--db", path, "--model", "test-model", "--limit", "1"]);
    assert.equal(byModel.out.trim().split("\n").length, 1);
    assert.equal(byModel.out.split(" ")[1], lines[2]!.split(" ")[1]);
  });

  test("show <id>: the record, the notes, the timeline, the bodies", async () => {
    const [last] = journal.list({ limit: 1 });
    const r = await runCli(["requests", "show", last!.id, "--db", path]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`id: ${last!.id}`));
    assert.match(r.out, /status: 200/);
    assert.match(r.out, /timeline\n\s+\+\s+0 ms {2}received/);
    assert.match(r.out, /sent upstream \(b\/fake-model\)/);
    assert.match(r.out, /request body\n.*"third"/);
    assert.match(r.out, /upstream body\n.*"model":"fake-model"/);
    assert.match(r.out, /answer\n.*fine/);
    const missing = await runCli(["requests", "show", "req_nope", "--db", path]);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /no request req_nope/);
  });

  test("a journal that is not there: a clear message, no stack", async () => {
    const r = await runCli(["requests", "--db", join(tmpdir(), "cb-no-such-dir", "journal.db")]);
    assert.equal(r.code, 1);
    assert.match(r.out, /no request journal at .*journal\.db yet/);
    assert.doesNotMatch(r.out, /at .*\.ts:\d+/);
  });

  test("--follow prints new requests as the gateway writes them", async () => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        import.meta.resolve("tsx"),
        fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url)),
        "requests",
        "--db",
        path,
        "--limit",
        "1",
        "--follow",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, re);
    };
    try {
      await waitFor(/test-model/);
      assert.equal(out.trim().split("\n").length, 1);
      assert.equal(await ask("another-missing"), 404);
      await waitFor(/another-missing\s+404/);
      assert.equal(await ask("test-model", "fifth"), 200);
      await waitFor(/another-missing[^\n]*\n[^\n]*test-model → b\/fake-model\s+200/);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.on("exit", r));
    }
  });
});
