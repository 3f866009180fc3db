/**
 * What a client cannot do to the gateway: hold a connection by trickling its request, lose its
 * 413 to a connection reset while it is still sending (and send the body again), keep its
 * connection after a refusal, or grow /metrics with names it makes up.
 * Run: node --import tsx --test test/server/limits.test.ts
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { DEFAULT_BODY_LIMIT, DEFAULT_RECEIVE_TIMEOUT_MS } from "../../src/config/types.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer } from "../fakes/script.js";
import { type RunningGateway, startGateway } from "../helpers.js";

const MASTER_KEY = "sk-limits-test-key";
/** server.receive_timeout_ms of the gateway the slow clients talk to. */
const RECEIVE_MS = 500;

function config(url: string, server = "", models = "", backend = ""): string {
  return `
${server}
backends:
  fake:
    kind: openai-compat
    url: "${url}"
    flavor: llamacpp
${backend}
models:
  test-model: { backend: fake, model: "fake-model" }
${models}
`;
}

interface Dialect {
  name: "anthropic" | "openai";
  path: string;
  headers: Record<string, string>;
  /** Asserts an error body in this dialect, with this type (Anthropic) or code (and type, OpenAI). */
  expectError(text: string, kind: string, what: string, openaiType?: string): void;
}

const ANTHROPIC: Dialect = {
  name: "anthropic",
  path: "/v1/messages",
  headers: { "anthropic-version": "2023-06-01" },
  expectError(text, type, what) {
    const body = JSON.parse(text);
    assert.deepEqual(Object.keys(body).sort(), ["error", "type"], `${what}: ${text}`);
    assert.equal(body.type, "error", what);
    assert.equal(body.error.type, type, `${what}: ${text}`);
    assert.ok(body.error.message.length > 0, what);
  },
};

const OPENAI: Dialect = {
  name: "openai",
  path: "/v1/chat/completions",
  headers: {},
  expectError(text, code, what, type = "invalid_request_error") {
    const body = JSON.parse(text);
    assert.deepEqual(Object.keys(body), ["error"], `${what}: ${text}`);
    assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"], what);
    assert.equal(body.error.type, type, `${what}: ${text}`);
    assert.equal(body.error.code, code, `${what}: ${text}`);
    assert.ok(body.error.message.length > 0, what);
  },
};

/** What the server sent on a raw connection, and whether it closed it. */
interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server ended the connection (FIN), rather than keeping it or resetting it. */
  closed: boolean;
  /** A socket error (ECONNRESET, EPIPE) instead of an answer. */
  error?: string;
  /** From the request's first byte to the server's close, or to the error. */
  ms: number;
}

/** Splits what came back on a connection into one HTTP/1.1 answer (it must state its length). */
function parseAnswer(raw: Buffer): Omit<RawAnswer, "closed" | "ms"> {
  const text = raw.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return { status: 0, headers: {}, body: text };
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers["content-length"] ?? Number.NaN);
  const rest = raw.subarray(Buffer.byteLength(text.slice(0, end + 4), "latin1"));
  const body = (Number.isNaN(length) ? rest : rest.subarray(0, length)).toString("utf8");
  return { status: Number(statusLine!.split(" ")[1]), headers, body };
}

/** Whether the bytes hold a whole answer (headers and the body its content-length states). */
function whole(raw: Buffer): boolean {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = /\r\ncontent-length: *(\d+)/i.exec(raw.subarray(0, end).toString("latin1"));
  return length !== null && raw.length >= end + 4 + Number(length[1]);
}

/**
 * Sends one request on a fresh connection the way most clients do: all of it first (the body
 * as `pieces`, each after `gapMs`), and only then reads the answer. A server that answers early
 * and closes on bytes it has not read resets this connection, and the answer is lost.
 */
function rawRequest(
  url: string,
  head: string,
  pieces: Buffer[],
  opts: { gapMs?: number; readWhileSending?: boolean; keepAlive?: boolean } = {},
): Promise<RawAnswer> {
  const { port } = new URL(url);
  const started = performance.now();
  return new Promise((resolve) => {
    const socket: Socket = connect({ port: Number(port), host: "127.0.0.1" });
    const got: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean, error?: string) => {
      if (done) return;
      done = true;
      socket.destroy();
      const a = parseAnswer(Buffer.concat(got));
      resolve({ ...a, closed, ...(error ? { error } : {}), ms: performance.now() - started });
    };
    socket.on("data", (d: Buffer) => {
      got.push(d);
      // a kept connection: done when the answer is whole
      if (opts.keepAlive && whole(Buffer.concat(got))) finish(false);
    });
    socket.on("end", () => finish(true));
    // a connection the server neither closes nor answers on: a failure, not a hang (generous: 60 clients
    // pushing 8 MB each through a loaded 2-core machine take seconds)
    setTimeout(() => finish(false, "no end within 30 s"), 30_000).unref();
    socket.on("error", (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
    if (!opts.readWhileSending) socket.pause();
    socket.on("connect", async () => {
      socket.write(head);
      for (const p of pieces) {
        if (done || socket.destroyed) return;
        if (opts.gapMs) await sleep(opts.gapMs);
        if (!socket.write(p)) {
          await new Promise<void>((r) => {
            const go = () => {
              socket.off("drain", go);
              socket.off("close", go);
              r();
            };
            socket.on("drain", go);
            socket.on("close", go);
          });
        }
      }
      socket.resume();
    });
  });
}

function requestHead(d: Dialect, length: number | "chunked", extra: Record<string, string> = {}): string {
  const headers: Record<string, string> = {
    host: "127.0.0.1",
    "content-type": "application/json",
    ...d.headers,
    ...(length === "chunked" ? { "transfer-encoding": "chunked" } : { "content-length": String(length) }),
    ...extra,
  };
  return `POST ${d.path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
}

/** A body of `size` bytes in 256 KB pieces, framed as chunks when asked. */
function bodyPieces(size: number, chunked: boolean): Buffer[] {
  const piece = Buffer.alloc(256 * 1024, 0x61);
  const out: Buffer[] = [Buffer.from('{"model":"test-model","messages":[],"pad":"')];
  for (let left = size - out[0]!.length; left > 0; left -= piece.length)
    out.push(piece.subarray(0, Math.min(piece.length, left)));
  if (!chunked) return out;
  const framed = out.map((p) =>
    Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from("\r\n")]),
  );
  framed.push(Buffer.from("0\r\n\r\n"));
  return framed;
}

let fake: FakeServer;
/** A 1 MB body limit. */
let small: RunningGateway;
let plain: RunningGateway;
let slow: RunningGateway;
let keyed: RunningGateway;

before(async () => {
  fake = await startOpenAICompatFake({ flavor: "llamacpp" });
  fake.setReply({ text: "Hi." });
  [small, plain, slow, keyed] = await Promise.all([
    startGateway(config(fake.url, "server:\n  body_limit_mb: 1")),
    startGateway(config(fake.url)),
    startGateway(config(fake.url, `server:\n  receive_timeout_ms: ${RECEIVE_MS}`)),
    startGateway(config(fake.url, `server:\n  master_key: "${MASTER_KEY}"`)),
  ]);
});

after(async () => {
  await Promise.all([small?.close(), plain?.close(), slow?.close(), keyed?.close()]);
  await fake?.close();
});

describe("over-limit bodies", () => {
  test("60 sent at once, each written whole before its answer is read, all get their 413 in their dialect", async () => {
    // 8 MB: past what the sockets' buffers take in, so the client is still sending when it is
    // answered (with 3 MB, a server that closes at once loses no answer here; with 4 MB it loses all)
    const size = 8 * 1024 * 1024;
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const d = i % 2 ? ANTHROPIC : OPENAI;
        const chunked = i % 4 >= 2;
        return rawRequest(
          small.url,
          requestHead(d, chunked ? "chunked" : size),
          bodyPieces(size, chunked),
        ).then((a) => ({ a, d, what: `client ${i} (${d.name}, ${chunked ? "chunked" : "content-length"})` }));
      }),
    );
    for (const { a, d, what } of answers) {
      assert.equal(a.error, undefined, `${what}: ${a.error} instead of an answer`);
      assert.equal(a.status, 413, `${what}: ${a.body}`);
      assert.match(a.headers["content-type"] ?? "", /^application\/json/, what);
      d.expectError(a.body, "request_too_large", what);
      assert.match(a.body, /1 MB/, what);
      assert.equal(a.headers.connection, "close", `${what}: the answer says the connection closes`);
      assert.ok(a.closed, `${what}: the server closes the connection`);
    }
  });

  test(`at the default limit (${DEFAULT_BODY_LIMIT / 1024 / 1024} MiB) too, on both paths`, async () => {
    const size = DEFAULT_BODY_LIMIT + 1024 * 1024;
    for (const d of [ANTHROPIC, OPENAI]) {
      const a = await rawRequest(plain.url, requestHead(d, size), bodyPieces(size, false));
      assert.equal(a.error, undefined, `${d.name}: ${a.error} instead of an answer`);
      assert.equal(a.status, 413, a.body);
      d.expectError(a.body, "request_too_large", d.name);
      assert.match(a.body, /32 MB/);
      assert.ok(a.closed, "the server closes the connection");
    }
  });

  test("a body far past what is drained is still cut: the connection does not stay open for it", async () => {
    // 64 MB are read and thrown away at most; the client sending 200 MB is cut off (reset) after that
    const a = await rawRequest(
      small.url,
      requestHead(OPENAI, 200 * 1024 * 1024),
      bodyPieces(200 * 1024 * 1024, false),
      {
        readWhileSending: true,
      },
    );
    assert.equal(a.status, 413, "the answer went out before the cut");
    assert.ok(a.closed || a.error, "the connection ends");
  });
});

describe("slow requests (server.receive_timeout_ms)", () => {
  for (const d of [ANTHROPIC, OPENAI]) {
    test(`${d.name}: a body trickled a byte at a time is cut at the limit with a 408 in the dialect`, async () => {
      const pieces = Array.from({ length: 100 }, () => Buffer.from(" "));
      const a = await rawRequest(slow.url, requestHead(d, 100), pieces, {
        gapMs: 50,
        readWhileSending: true,
      });
      assert.equal(a.status, 408, a.body);
      d.expectError(
        a.body,
        d.name === "anthropic" ? "invalid_request_error" : "request_timeout",
        "trickled body",
      );
      assert.match(a.body, /0\.5 s|500 ms/, a.body);
      assert.ok(a.closed || a.error, "the connection is closed");
      // the client would have taken 5 s; the gateway cuts it at its limit (generous bound: timers on a busy machine)
      assert.ok(a.ms >= RECEIVE_MS - 50, `cut after ${Math.round(a.ms)} ms, before the limit`);
      assert.ok(a.ms < RECEIVE_MS + 1500, `cut after ${Math.round(a.ms)} ms`);
    });
  }

  test("headers trickled are cut at the limit too", async () => {
    const started = performance.now();
    const a = await rawRequest(
      slow.url,
      "POST /v1/messages HTTP/1.1\r\n",
      Array.from({ length: 100 }, () => Buffer.from("x")),
      { gapMs: 50, readWhileSending: true },
    );
    const ms = performance.now() - started;
    assert.equal(a.status, 408);
    assert.ok(a.closed || a.error, "the connection is closed");
    assert.ok(ms < RECEIVE_MS + 1500, `cut after ${Math.round(ms)} ms`);
  });

  test("a body that comes in pieces within the limit is answered", async () => {
    fake.setReply({ text: "Hi." });
    const body = Buffer.from(
      JSON.stringify({ model: "test-model", max_tokens: 8, messages: [{ role: "user", content: "Hi" }] }),
    );
    const third = Math.ceil(body.length / 3);
    const pieces = [body.subarray(0, third), body.subarray(third, 2 * third), body.subarray(2 * third)];
    const a = await rawRequest(slow.url, requestHead(ANTHROPIC, body.length), pieces, {
      gapMs: 100,
      keepAlive: true,
    });
    assert.equal(a.status, 200, a.body);
    assert.equal(JSON.parse(a.body).content[0].text, "Hi.");
  });

  test("a body just under the default limit, on loopback, is read well within the default time", async (t) => {
    assert.equal(DEFAULT_RECEIVE_TIMEOUT_MS, 60_000);
    const size = DEFAULT_BODY_LIMIT - 1024 * 1024;
    // JSON cut short at its very end: read whole, then refused at once (a whole prompt this size
    // would measure the context stage, not the receiving)
    const body = Buffer.alloc(size, 0x61);
    body.write('{"model":"test-model","pad":"');
    const started = performance.now();
    const a = await rawRequest(plain.url, requestHead(ANTHROPIC, size), [body], { keepAlive: true });
    const ms = performance.now() - started;
    t.diagnostic(`${Math.round(size / 1024 / 1024)} MB sent and answered in ${Math.round(ms)} ms`);
    assert.equal(a.status, 400, a.body.slice(0, 300));
    ANTHROPIC.expectError(a.body, "invalid_request_error", "a cut JSON body");
    assert.match(a.body, /not valid JSON/);
    assert.ok(ms < DEFAULT_RECEIVE_TIMEOUT_MS / 10, `${Math.round(ms)} ms`);
  });
});

describe("refused clients", () => {
  for (const d of [ANTHROPIC, OPENAI]) {
    test(`${d.name}: a 401 closes the connection, and reaches a client still sending its body`, async () => {
      const size = 4 * 1024 * 1024;
      const a = await rawRequest(keyed.url, requestHead(d, size), bodyPieces(size, false));
      assert.equal(a.error, undefined, `${a.error} instead of an answer`);
      assert.equal(a.status, 401, a.body);
      d.expectError(a.body, d.name === "anthropic" ? "authentication_error" : "invalid_api_key", "no key");
      assert.equal(a.headers.connection, "close");
      assert.ok(a.closed, "the server closes the connection");
    });
  }

  test("a 401 without a body (GET), a 404 for an unknown route and a 403 for a foreign host close the connection too", async () => {
    const get = await rawRequest(
      keyed.url,
      "GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: wrong\r\n\r\n",
      [],
      {
        readWhileSending: true,
      },
    );
    assert.equal(get.status, 401);
    assert.ok(get.closed, "closed after the 401");
    const route = await rawRequest(
      plain.url,
      "POST /v1/nowhere HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\n\r\n",
      [Buffer.from("{}")],
    );
    assert.equal(route.status, 404);
    assert.ok(route.closed, "closed after the 404");
    // a loopback gateway answers only loopback names (a rebound web page): refused with its body unread
    const size = 4 * 1024 * 1024;
    const host = await rawRequest(
      plain.url,
      requestHead(OPENAI, size, { host: "rebound.example" }),
      bodyPieces(size, false),
    );
    assert.equal(host.error, undefined, `${host.error} instead of an answer`);
    assert.equal(host.status, 403, host.body);
    OPENAI.expectError(host.body, "host_not_allowed", "foreign host", "permission_error");
    assert.ok(host.closed, "closed after the 403");
  });

  test("with the right key the connection is kept for the next request", async () => {
    fake.setReply({ text: "Hi." });
    const { port } = new URL(keyed.url);
    const socket = connect({ port: Number(port), host: "127.0.0.1" });
    const body = JSON.stringify({ model: "test-model", messages: [{ role: "user", content: "Hi" }] });
    const req = `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${MASTER_KEY}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    let got = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
    });
    const answer = async () => {
      for (let i = 0; i < 100 && !/\r\n\r\n[\s\S]*"usage"[\s\S]*\}$/.test(got.toString()); i++)
        await sleep(20);
      const a = parseAnswer(got);
      got = Buffer.alloc(0);
      return a;
    };
    try {
      socket.write(req);
      const first = await answer();
      assert.equal(first.status, 200, first.body);
      assert.notEqual(first.headers.connection, "close");
      socket.write(req);
      const second = await answer();
      assert.equal(second.status, 200, "a second request on the same connection");
    } finally {
      socket.destroy();
    }
  });
});

describe("/metrics under invented names", () => {
  /** The series /metrics has: every line that is not a comment, less its value. */
  const series = async (g: RunningGateway) =>
    (await (await fetch(`${g.url}/metrics`)).text())
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.slice(0, l.lastIndexOf(" ")));

  /** A request on one of the surfaces with names made up from `n`: fields, block and tool types, a model. */
  const invented = (n: number, model = "test-model") => {
    const d = n % 2 ? ANTHROPIC : OPENAI;
    const body =
      d === ANTHROPIC
        ? {
            model,
            max_tokens: 8,
            [`field_${n}`]: 1,
            system: [
              { type: "text", text: "Be brief." },
              { type: `sys_${n}`, text: "?" },
            ],
            tools: [{ type: `server_tool_${n}`, name: `t${n}` }],
            messages: [
              {
                role: "user",
                content: [
                  { type: `block_${n}`, x: 1 },
                  { type: "text", text: "Hi" },
                ],
              },
            ],
          }
        : {
            model,
            [`field_${n}`]: 1,
            messages: [
              ...Array.from({ length: n % 5 }, () => ({ role: "user", content: "Hi" })),
              { role: "system", content: "late" },
              {
                role: "user",
                content: [
                  { type: `part_${n}`, x: 1 },
                  { type: "text", text: "Hi" },
                ],
              },
            ],
          };
    return { d, body: JSON.stringify(body) };
  };

  const send = async (g: RunningGateway, n: number, model?: string) => {
    const { d, body } = invented(n, model);
    const res = await request(`${g.url}${d.path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...d.headers },
      body,
    });
    await res.body.text();
    return res.statusCode;
  };

  const run = async (count: number, one: (n: number) => Promise<number>) => {
    const statuses = new Map<number, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let n = next++; n < count; n = next++) {
          const s = await one(n);
          statuses.set(s, (statuses.get(s) ?? 0) + 1);
        }
      }),
    );
    return statuses;
  };

  test("1,000 requests with invented fields, block and tool types and models add no series", async () => {
    fake.setReply({ text: "Hi." });
    // no limit on requests at once: whether one had to wait (clawbridge_queued_total, by backend
    // and lane) would depend on timing
    const g = await startGateway(config(fake.url, "", "", "    concurrency: 0"));
    try {
      // every kind of label once: served and unknown models, each kind of note
      for (let n = 0; n < 4; n++) {
        assert.equal(await send(g, n), 200);
        assert.equal(await send(g, n, `made-up-${n}`), 404);
      }
      const before = await series(g);
      // (a late system message stays in place on this backend: no "system" note)
      for (const what of ["ignored_field", "ignored_block", "ignored_tool"])
        assert.ok(
          before.some((s) => s === `clawbridge_reshaped_total{what="${what}"}`),
          `a ${what} series: ${before.join("\n")}`,
        );
      const statuses = await run(1000, (n) => send(g, 1000 + n, n % 4 === 0 ? `made-up-${n}` : undefined));
      assert.deepEqual(Object.fromEntries(statuses), { 200: 750, 404: 250 });
      const after = await series(g);
      assert.deepEqual(after, before, "the same series after 1,000 requests");
      const text = await (await fetch(`${g.url}/metrics`)).text();
      // the counters counted them: the series are the same, their values grew
      assert.match(text, /^clawbridge_reshaped_total\{what="ignored_block"\} (\d+)$/m);
      const blocks = Number(/^clawbridge_reshaped_total\{what="ignored_block"\} (\d+)$/m.exec(text)![1]);
      assert.ok(blocks >= 1250, `ignored blocks counted: ${blocks}`);
      assert.match(
        text,
        /^clawbridge_requests_total\{surface="openai",model="other",outcome="not_found"\} \d+$/m,
      );
    } finally {
      await g.close();
    }
  });

  test("a catch-all model entry (*) is one label, whatever model the client names", async () => {
    fake.setReply({ text: "Hi." });
    const g = await startGateway(
      config(fake.url, "", '  "*": { backend: fake, model: "fake-model" }', "    concurrency: 0"),
    );
    try {
      for (let n = 0; n < 4; n++) assert.equal(await send(g, n, `first-made-up-${n}`), 200);
      const before = await series(g);
      const statuses = await run(100, (n) => send(g, n, `made-up-${n}`));
      assert.deepEqual(Object.fromEntries(statuses), { 200: 100 });
      assert.deepEqual(await series(g), before);
      assert.ok(
        before.some((s) => s.includes('model="*"')),
        before.join("\n"),
      );
    } finally {
      await g.close();
    }
  });
});
