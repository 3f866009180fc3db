/**
 * What a request may cost the gateway's memory, whatever the client and the backend do:
 *
 * - a client that sends a request and never reads holds the backend's answer back where it is (the
 *   backend's connection is not read while the client's socket is full): two of them on 100 MiB
 *   answers raise the gateway's RSS by less than 50 MiB, and the backend is still sending;
 * - a 100 MiB error body from a backend costs less than 50 MiB, and the client gets a short message;
 * - a non-streaming answer past `server.answer_limit_mb` is an error (streams have no such limit);
 * - a client that takes longer than `idle_ms` to read is not taken for a silent backend.
 *
 * The RSS tests run the gateway as a child process (`clawbridge serve`), warmed up, and read its
 * VmRSS from /proc (Linux only); the fakes run here and make their 100 MiB as they send it.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, RecordedRequest } from "../fakes/script.js";
import { listenUrl, oneBackend, parseSse, startGateway, until } from "../helpers.js";

const MiB = 1024 * 1024;
/** 64 KiB of text: one chunk of the fake's answer, sent as many times over as asked. */
const PIECE = "All work and no play makes Jack a dull boy. ".repeat(1490).slice(0, 64 * 1024);

/**
 * A request in each dialect, as raw HTTP/1.0: the answer comes without chunked framing, and the
 * server closes the connection after it.
 */
function rawRequest(url: string, dialect: "anthropic" | "openai", stream: boolean): string {
  const body = JSON.stringify(
    dialect === "anthropic"
      ? { model: "test-model", max_tokens: 100, stream, messages: [{ role: "user", content: "Go on." }] }
      : { model: "test-model", stream, messages: [{ role: "user", content: "Go on." }] },
  );
  const path = dialect === "anthropic" ? "/v1/messages" : "/v1/chat/completions";
  return [
    `POST ${path} HTTP/1.0`,
    `host: ${new URL(url).host}`,
    "content-type: application/json",
    "anthropic-version: 2023-06-01",
    `content-length: ${Buffer.byteLength(body)}`,
    "",
    body,
  ].join("\r\n");
}

/**
 * A client on a raw socket: it sends its request, and reads nothing until a reader is attached (a
 * socket without one is not read past its buffer). One that never reads never attaches one.
 */
async function rawClient(url: string, request: string): Promise<Socket> {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  await once(socket, "connect");
  socket.write(request);
  return socket;
}

/** Everything a socket receives until the server ends it, as text. */
async function readToEnd(socket: Socket): Promise<string> {
  const parts: Buffer[] = [];
  socket.on("data", (d: Buffer) => parts.push(d));
  await once(socket, "end");
  return Buffer.concat(parts).toString("utf8");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function chatRequests(fake: FakeServer): RecordedRequest[] {
  return fake.requests.filter((r) => r.path.endsWith("/chat/completions"));
}

describe("memory: the gateway as a child process", { skip: process.platform !== "linux" }, () => {
  let fake: FakeServer;
  let child: ChildProcess;
  let url: string;

  const rssMiB = (): number => {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
    assert.ok(m, "VmRSS");
    return Number(m[1]) / 1024;
  };
  /** The highest RSS over `ms`, sampled every 25 ms. */
  const peakOver = async (ms: number): Promise<number> => {
    let peak = rssMiB();
    const end = performance.now() + ms;
    while (performance.now() < end) {
      await sleep(25);
      peak = Math.max(peak, rssMiB());
    }
    return peak;
  };
  /** A normal answer, both dialects, streaming and not: warms the gateway up, and shows it still serves. */
  const normalRequests = async (): Promise<void> => {
    fake.setReply({ text: "Fine, thanks." });
    for (const dialect of ["anthropic", "openai"] as const) {
      for (const stream of [false, true]) {
        const socket = await rawClient(url, rawRequest(url, dialect, stream));
        const text = await readToEnd(socket);
        assert.match(text, /^HTTP\/1\.1 200 /, `${dialect} stream ${stream}: ${text.slice(0, 300)}`);
        if (stream) {
          const said = parseSse(text.slice(text.indexOf("\r\n\r\n") + 4))
            .map((e) => e.data?.delta?.text ?? e.data?.choices?.[0]?.delta?.content ?? "")
            .join("");
          assert.equal(said, "Fine, thanks.");
        } else assert.match(text, /Fine, thanks\./);
      }
    }
  };

  before(async () => {
    fake = await startOpenAICompatFake({ flavor: "llamacpp" });
    const dir = mkdtempSync(join(tmpdir(), "clawbridge-memory-"));
    const file = join(dir, "clawbridge.yaml");
    writeFileSync(
      file,
      oneBackend("openai-compat", fake.url, "fake-model", "    flavor: llamacpp\n    concurrency: 0"),
    );
    child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "serve", "--config", file, "--port", "0"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stderr!.resume();
    ({ url } = await listenUrl(child));
    child.stdout!.resume();
    await normalRequests();
    // A gateway that has served: two 32 MiB answers streamed to clients that read them. The heap
    // grows its young generation to the pace of what goes through (some 35 MiB, as much with
    // clients that read as with clients that do not); what is measured after is what is held.
    fake.setReply({ text: PIECE, chunkSize: PIECE.length, repeat: 512 });
    const read = await Promise.all(
      (["anthropic", "openai"] as const).map(
        async (d) => (await readToEnd(await rawClient(url, rawRequest(url, d, true)))).length,
      ),
    );
    for (const n of read) assert.ok(n > 32 * MiB, `a 32 MiB answer was read (${n} bytes)`);
  });

  after(async () => {
    child.kill("SIGKILL");
    await fake.close();
  });

  test("two clients that never read, on 100 MiB answers: RSS grows by less than 50 MiB", async (t) => {
    await sleep(300);
    const base = rssMiB();
    // 1600 × 64 KiB of text = 100 MiB each
    fake.setReply({ text: PIECE, chunkSize: PIECE.length, repeat: 1600 });
    const seen = chatRequests(fake).length;
    const clients = await Promise.all(
      (["anthropic", "openai"] as const).map((d) => rawClient(url, rawRequest(url, d, true))),
    );
    try {
      await until(() => chatRequests(fake).length === seen + 2, "both requests at the backend");
      // long enough for 100 MiB to cross loopback many times over, had the gateway read it all
      const peak = await peakOver(2500);
      const grew = peak - base;
      t.diagnostic(`RSS ${base.toFixed(1)} → peak ${peak.toFixed(1)} MiB`);
      assert.ok(grew < 50, `RSS grew by ${grew.toFixed(1)} MiB (from ${base.toFixed(1)})`);
      // the backend is held back: neither answer could be sent to its end
      for (const r of chatRequests(fake).slice(seen))
        assert.equal(r.closedAt, undefined, "the backend is still sending (held back), not done");
    } finally {
      for (const c of clients) c.destroy();
    }
    // the clients gone, the backend requests are stopped
    await until(
      () =>
        chatRequests(fake)
          .slice(seen)
          .every((r) => r.closedAt !== undefined && r.completed === false),
      "the backend requests stopped",
    );
    await normalRequests();
  });

  test("a 100 MiB error body costs less than 50 MiB, and the client gets a short message", async (t) => {
    await sleep(300);
    const base = rssMiB();
    // a JSON error whose message is 100 MiB long (made once, here in the test's process)
    const body = `{"error":{"code":500,"message":"${"x".repeat(100 * MiB)}","type":"server_error"}}`;
    fake.setReply({
      fault: { kind: "status", status: 500, body, headers: { "content-type": "application/json" } },
    });
    let peak = base;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, rssMiB());
        await sleep(25);
      }
    })();
    try {
      for (const dialect of ["anthropic", "openai"] as const) {
        const socket = await rawClient(url, rawRequest(url, dialect, false));
        const text = await readToEnd(socket);
        assert.match(text, /^HTTP\/1\.1 500 /, `${dialect}: ${text.slice(0, 300)}`);
        const answer = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4));
        const message: string = answer.error.message;
        assert.match(message, /^backend b answered 500: /);
        assert.ok(message.length < 3000, `${dialect}: a message of ${message.length} characters`);
      }
      peak = Math.max(peak, await peakOver(500));
    } finally {
      sampling = false;
      await sampler;
    }
    const grew = peak - base;
    t.diagnostic(`RSS ${base.toFixed(1)} → peak ${peak.toFixed(1)} MiB`);
    assert.ok(grew < 50, `RSS grew by ${grew.toFixed(1)} MiB (from ${base.toFixed(1)})`);
    await normalRequests();
  });
});

describe("memory: limits and slow readers", () => {
  let fake: FakeServer;
  before(async () => {
    fake = await startOpenAICompatFake({ flavor: "llamacpp" });
  });
  after(async () => {
    await fake.close();
  });

  test("a non-streaming answer past server.answer_limit_mb is an error; a stream has no such limit", async () => {
    const gw = await startGateway(
      `server: { answer_limit_mb: 1 }\n${oneBackend("openai-compat", fake.url, "fake-model", "    flavor: llamacpp")}`,
      { discover: false },
    );
    try {
      // 100 MiB of text
      fake.setReply({ text: PIECE, chunkSize: PIECE.length, repeat: 1600 });
      const seen = chatRequests(fake).length;
      const plain = await fetch(`${gw.url}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({
          model: "test-model",
          max_tokens: 10,
          messages: [{ role: "user", content: "Go." }],
        }),
      });
      assert.equal(plain.status, 500);
      const err = (await plain.json()) as any;
      assert.equal(err.error.type, "api_error");
      assert.match(
        err.error.message,
        /past 1 MB, the most a non-streaming answer may hold \(server\.answer_limit_mb\)/,
      );
      // the backend was stopped at the limit, not read to the end
      await until(() => chatRequests(fake)[seen]?.closedAt !== undefined, "the backend request closed");
      assert.equal(chatRequests(fake)[seen]!.completed, false);

      // 2 MiB of text
      fake.setReply({ text: PIECE, chunkSize: PIECE.length, repeat: 32 });
      const streamed = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "test-model",
          stream: true,
          messages: [{ role: "user", content: "Go." }],
        }),
      });
      assert.equal(streamed.status, 200);
      const events = parseSse(await streamed.text());
      assert.equal(events.at(-1)?.data, "[DONE]");
      const said = events.map((e) => e.data?.choices?.[0]?.delta?.content ?? "").join("");
      assert.equal(said.length, 32 * PIECE.length);
    } finally {
      fake.setReply({ text: "Hello from the fake backend." });
      await gw.close();
    }
  });

  test("a client slower to read than idle_ms gets its whole answer, no timeout", async () => {
    const gw = await startGateway(
      oneBackend(
        "openai-compat",
        fake.url,
        "fake-model",
        "    flavor: llamacpp\n    timeouts: { idle_ms: 300 }",
      ),
      { discover: false },
    );
    try {
      // 32 MiB: more than the sockets' buffers hold, so the gateway waits on the client
      fake.setReply({ text: PIECE, chunkSize: PIECE.length, repeat: 512 });
      const socket = await rawClient(gw.url, rawRequest(gw.url, "openai", true));
      await sleep(1000);
      const text = await readToEnd(socket);
      assert.match(text, /^HTTP\/1\.1 200 /);
      assert.ok(!/"error"/.test(text.slice(-2000)), `no error at the end: ${text.slice(-500)}`);
      assert.ok(text.endsWith("data: [DONE]\n\n"), "the stream ended normally");
      assert.ok(text.length > 32 * MiB, `the whole answer (${text.length} bytes)`);
    } finally {
      fake.setReply({ text: "Hello from the fake backend." });
      await gw.close();
    }
  });
});
