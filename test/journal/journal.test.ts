/**
 * The request journal: a real SQLite file in a temp folder. It keeps its entries across a restart,
 * stays within its bound under 10,000 requests, keeps bodies only with capture on and never a key,
 * and a journal that cannot be opened costs the journal, not the gateway.
 * Run: node --import tsx --test test/journal/journal.test.ts
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type { RequestEntry } from "../../src/journal/entry.js";
import { Journal } from "../../src/journal/journal.js";
import { journalSettings } from "../../src/journal/settings.js";
import { createLogger } from "../../src/log.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { startGateway } from "../helpers.js";

const dir = () => mkdtempSync(join(tmpdir(), "cb-journal-"));

function entry(i: number, extra: Partial<RequestEntry> = {}): RequestEntry {
  return {
    id: `req_${String(i).padStart(8, "0")}`,
    at: Date.now(),
    route: "POST /v1/messages",
    surface: "anthropic",
    client: "127.0.0.1:5000",
    model: i % 2 ? "odd-model" : "even-model",
    backend: "b",
    target: "fake-model",
    status: i % 10 === 0 ? 500 : 200,
    outcome: i % 10 === 0 ? "api_error" : "ok",
    durationMs: 100 + (i % 50),
    tokensIn: 1000,
    tokensOut: 200,
    notes: [{ subject: "ignored_field", detail: "dropped `foo`: the backend has no such field" }],
    timeline: [
      { event: "received", ms: 0 },
      { event: "sent upstream", ms: 1, detail: "b/fake-model" },
      { event: "first token", ms: 40 },
      { event: "done", ms: 100 },
    ],
    ...extra,
  };
}

/** The journal's bytes on disk: the file and its write-ahead log. */
function onDisk(path: string): number {
  let n = statSync(path).size;
  if (existsSync(`${path}-wal`)) n += statSync(`${path}-wal`).size;
  return n;
}

/** The file and its write-ahead log, as text (to look for what must not be there). */
function rawText(path: string): string {
  let s = readFileSync(path).toString("latin1");
  if (existsSync(`${path}-wal`)) s += readFileSync(`${path}-wal`).toString("latin1");
  return s;
}

describe("the request journal", () => {
  test("keeps its entries across a restart; lists newest last, filters, shows one by id or prefix", async () => {
    const path = join(dir(), "journal.db");
    const j = Journal.open({ path })!;
    for (let i = 1; i <= 30; i++) j.add(entry(i));
    j.close(); // writes what is queued

    const again = Journal.open({ path })!;
    assert.equal(again.count(), 30);
    const last = again.list({ limit: 5 });
    assert.deepEqual(
      last.map((e) => e.id),
      [26, 27, 28, 29, 30].map((i) => `req_${String(i).padStart(8, "0")}`),
    );
    assert.deepEqual(last.at(-1)!.notes, entry(30).notes);
    assert.equal(again.list({ limit: 100, status: "500" }).length, 3);
    assert.equal(again.list({ limit: 100, status: "5xx" }).length, 3);
    assert.equal(again.list({ limit: 100, status: "api_error" }).length, 3);
    assert.equal(again.list({ limit: 100, model: "odd-model" }).length, 15);
    assert.deepEqual(
      again.list({ after: last.at(-2)!.seq }).map((e) => e.id),
      [last.at(-1)!.id],
    );
    assert.equal(again.get("req_00000007")!.timeline.length, 4);
    assert.equal(again.get("req_0000001")?.id, undefined, "an ambiguous prefix finds nothing");
    assert.equal(again.get("req_00000012")!.model, "even-model");
    again.close();
    // and a reader, read-only
    const reader = Journal.read(path);
    assert.equal(reader.count(), 30);
    reader.close();
  });

  test("stays within its size under 10,000 requests, dropping the oldest", async () => {
    const path = join(dir(), "journal.db");
    const j = Journal.open({ path, maxMb: 1 })!;
    const notes = Array.from({ length: 4 }, (_, k) => ({
      subject: "ignored_field" as const,
      detail: `dropped field number ${k}: ${"x".repeat(60)}`,
    }));
    for (let i = 1; i <= 10_000; i++) {
      j.add(entry(i, { notes }));
      if (i % 250 === 0) j.flush(); // as the timer would, a batch at a time
    }
    j.flush();
    j.prune();
    const count = j.count();
    assert.ok(count < 10_000 && count > 500, `pruned to ${count} entries`);
    assert.ok(j.usedBytes() <= 1024 * 1024, `entries take ${j.usedBytes()} bytes`);
    assert.ok(onDisk(path) <= 1.5 * 1024 * 1024, `the file and its log take ${onDisk(path)} bytes`);
    assert.equal(j.list({ limit: 1 })[0]!.id, "req_00010000", "the newest is kept");
    j.close();
  });

  test("drops entries past their age", async () => {
    const path = join(dir(), "journal.db");
    const j = Journal.open({ path, maxAgeDays: 1 })!;
    j.add(entry(1, { at: Date.now() - 2 * 86_400_000 }));
    j.add(entry(2));
    j.flush();
    j.prune();
    assert.deepEqual(
      j.list().map((e) => e.id),
      ["req_00000002"],
    );
    j.close();
  });

  test("a journal that cannot be opened is reported once; the gateway serves without it", async () => {
    const d = dir();
    const lines: Array<Record<string, any>> = [];
    const log = createLogger({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    // a folder where a file is
    writeFileSync(join(d, "file"), "");
    assert.equal(Journal.open({ path: join(d, "file", "journal.db") }, log), undefined);
    // a corrupt file
    writeFileSync(join(d, "corrupt.db"), "this is not a database ".repeat(100));
    assert.equal(Journal.open({ path: join(d, "corrupt.db") }, log), undefined);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!.msg, /cannot be opened; serving without it/);
    assert.equal(lines[0]!.level, 40);
  });

  test("the default place is the user's clawbridge folder, never the working directory", () => {
    const env = { HOME: "/home/u", CLAWBRIDGE_HOME: "/home/u/.clawbridge" };
    assert.equal(journalSettings({ source: "auto-detected" }, env)?.path, "/home/u/.clawbridge/journal.db");
    assert.equal(
      journalSettings({ source: "/etc/cb/clawbridge.yaml", journal: { enabled: true, path: "j.db" } }, env)
        ?.path,
      "/etc/cb/j.db",
    );
    assert.equal(journalSettings({ source: "x.yaml", journal: { enabled: false } }, env), undefined);
    assert.equal(journalSettings({ source: "x.yaml" }, { ...env, CLAWBRIDGE_JOURNAL: "off" }), undefined);
  });

  for (const capture of [false, true]) {
    test(`through a real gateway, capture ${capture ? "on: bodies kept, no key ever" : "off: no bodies"}`, async () => {
      const MASTER = "sk-master-never-stored-1234";
      const BACKEND_KEY = "sk-backend-never-stored-5678";
      const fake = await startOpenAICompatFake({
        flavor: "vllm",
        apiKey: BACKEND_KEY,
        reply: { text: "The answer is forty-two.", usage: { prompt: 9, completion: 6 } },
      });
      const path = join(dir(), "journal.db");
      const journal = Journal.open({ path, capture })!;
      const gw = await startGateway(
        `
server: { master_key: ${MASTER} }
backends:
  b: { kind: openai-compat, url: "${fake.url}", api_key: ${BACKEND_KEY}, flavor: vllm }
models:
  test-model: { backend: b, model: "fake-model" }
`,
        { journal },
      );
      try {
        const client = new Anthropic({ baseURL: gw.url, apiKey: MASTER, maxRetries: 0 });
        const N = 160;
        for (let i = 0; i < N; i += 20) {
          await Promise.all(
            Array.from({ length: 20 }, (_, k) =>
              client.messages.create({
                model: "test-model",
                max_tokens: 20,
                stream: (i + k) % 2 === 0,
                messages: [
                  {
                    role: "user",
                    content: `question ${i + k}: the secret word is PINEAPPLE; my keys: ${MASTER} ${BACKEND_KEY}`,
                  },
                ],
              }),
            ),
          );
        }
        for (let i = 0; i < 50 && journal.count() < N; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(journal.count(), N);
        const [last] = journal.list({ limit: 1 });
        assert.equal(last!.status, 200);
        assert.equal(last!.model, "test-model");
        assert.equal(last!.backend, "b");
        assert.deepEqual(
          last!.timeline.map((t) => t.event).filter((e) => e !== "headers"),
          ["received", "sent upstream", "first token", "done"],
        );
        const full = journal.get(last!.id)!;
        journal.close();
        const raw = rawText(path);
        for (const secret of [MASTER, BACKEND_KEY])
          assert.ok(!raw.includes(secret), `${secret} is not in the file`);
        if (capture) {
          assert.match(full.bodies!.request!, /PINEAPPLE/);
          assert.match(full.bodies!.upstream!, /PINEAPPLE/);
          assert.match(full.bodies!.upstream!, /"model":"fake-model"/);
          assert.match(full.bodies!.answer!, /forty-two/);
        } else {
          assert.equal(full.bodies, undefined);
          assert.ok(!raw.includes("PINEAPPLE"), "no body is in the file");
        }
      } finally {
        await gw.close();
        await fake.close();
        journal.close();
      }
    });
  }
});
