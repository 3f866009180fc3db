import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { hostAllowed, normalizeOrigin } from "../../src/server/origin.js";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer } from "../fakes/script.js";
import { oneBackend, type RunningGateway, startGateway } from "../helpers.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

/** A request with exactly these headers: node:http lets a test set Host and Origin as a browser (or an attacker) would. */
function send(
  base: string,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: o.method ?? (o.body === undefined ? "GET" : "POST"),
        headers: o.headers ?? {},
        agent: false,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

const MESSAGE = JSON.stringify({
  model: "test-model",
  max_tokens: 5,
  messages: [{ role: "user", content: "hi" }],
});
const CHAT = JSON.stringify({ model: "test-model", messages: [{ role: "user", content: "hi" }] });

/** The headers the official SDKs send from a browser, as Chromium lists them in a preflight. */
const SDK_HEADERS =
  "anthropic-beta,anthropic-dangerous-direct-browser-access,anthropic-version,authorization,content-type,x-api-key,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout";

describe("web pages: Origin", () => {
  let fake: FakeServer;
  before(async () => {
    fake = await startOllamaFake({ models: [{ name: "q:latest" }], reply: { text: "pong" } });
  });
  after(() => fake.close());

  const gateway = (server = "") =>
    startGateway(
      `${server ? `server:\n${server}\n` : ""}${oneBackend("ollama", fake.url, "q", "    discover: false")}`,
    );

  test("by default a page's request is refused with 403 in the client's dialect and never reaches the backend", async () => {
    const gw = await gateway();
    try {
      const before = fake.requests.filter((r) => r.path === "/api/chat").length;
      // the drive-by: a form or no-cors fetch sends text/plain, which needs no preflight
      const plain = await send(gw.url, "/v1/messages", {
        headers: { origin: "http://evil.example", "content-type": "text/plain;charset=UTF-8" },
        body: MESSAGE,
      });
      assert.equal(plain.status, 403);
      assert.equal(plain.json.type, "error");
      assert.equal(plain.json.error.type, "permission_error");
      assert.match(plain.json.error.message, /origin "http:\/\/evil\.example"/);
      assert.match(
        plain.json.error.message,
        /add "http:\/\/evil\.example" to server\.cors_origins in the config/,
      );
      assert.equal(plain.headers["access-control-allow-origin"], undefined, "the page may not read it");

      const openai = await send(gw.url, "/v1/chat/completions", {
        headers: { origin: "https://evil.example", "content-type": "application/json" },
        body: CHAT,
      });
      assert.equal(openai.status, 403);
      assert.equal(openai.json.error.type, "permission_error");
      assert.equal(openai.json.error.code, "origin_not_allowed");
      assert.match(openai.json.error.message, /server\.cors_origins/);

      for (const path of ["/health", "/v1/models", "/metrics"]) {
        const r = await send(gw.url, path, { headers: { origin: "http://evil.example" } });
        assert.equal(r.status, 403, path);
        assert.doesNotMatch(r.text, /test-model|ollama|clawbridge_/, `${path} tells a page nothing`);
      }
      // sandboxed frames and files say `null`: refused too
      assert.equal((await send(gw.url, "/v1/models", { headers: { origin: "null" } })).status, 403);
      assert.equal(
        fake.requests.filter((r) => r.path === "/api/chat").length,
        before,
        "nothing reached the backend",
      );

      // a client that is no browser sends no Origin: unaffected
      const cli = await send(gw.url, "/v1/messages", {
        headers: { "content-type": "application/json" },
        body: MESSAGE,
      });
      assert.equal(cli.status, 200, cli.text);
      assert.equal(cli.json.content[0].text, "pong");
      assert.equal(cli.headers["access-control-allow-origin"], undefined);
    } finally {
      await gw.close();
    }
  });

  test("an origin in server.cors_origins is answered, with CORS headers; others still are not", async () => {
    const gw = await gateway('  cors_origins: ["http://localhost:5173", "HTTPS://UI.Example.org:443/"]');
    try {
      const ok = await send(gw.url, "/v1/messages", {
        headers: { origin: "http://localhost:5173", "content-type": "application/json" },
        body: MESSAGE,
      });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.content[0].text, "pong");
      assert.equal(ok.headers["access-control-allow-origin"], "http://localhost:5173");
      assert.match(String(ok.headers.vary), /origin/i);
      assert.match(String(ok.headers["access-control-expose-headers"]), /retry-after/);

      // written in the config with upper case, default port and a slash: matched as browsers write it
      const normalized = await send(gw.url, "/v1/models", { headers: { origin: "https://ui.example.org" } });
      assert.equal(normalized.status, 200);
      assert.equal(normalized.headers["access-control-allow-origin"], "https://ui.example.org");

      // errors carry the CORS headers too, so the page can show them
      const unknown = await send(gw.url, "/v1/nothing", { headers: { origin: "http://localhost:5173" } });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.headers["access-control-allow-origin"], "http://localhost:5173");

      for (const other of ["http://localhost:5174", "https://localhost:5173", "http://127.0.0.1:5173"]) {
        const r = await send(gw.url, "/v1/models", { headers: { origin: other } });
        assert.equal(r.status, 403, other);
      }
    } finally {
      await gw.close();
    }
  });

  test('"*" lets every page in, null origins included', async () => {
    const gw = await gateway('  cors_origins: ["*"]');
    try {
      for (const origin of ["http://anything.example", "null", "chrome-extension://abcdef"]) {
        const r = await send(gw.url, "/v1/messages", {
          headers: { origin, "content-type": "text/plain" },
          body: MESSAGE,
        });
        assert.equal(r.status, 200, `${origin}: ${r.text}`);
        assert.equal(r.headers["access-control-allow-origin"], origin);
      }
    } finally {
      await gw.close();
    }
  });

  test("preflight: an allowed origin gets the methods and the SDKs' headers, before any key; others get 403", async () => {
    const gw = await gateway('  master_key: sk-gw\n  cors_origins: ["http://localhost:5173"]');
    try {
      const pre = await send(gw.url, "/v1/messages", {
        method: "OPTIONS",
        headers: {
          origin: "http://localhost:5173",
          "access-control-request-method": "POST",
          "access-control-request-headers": SDK_HEADERS,
          "access-control-request-private-network": "true",
        },
      });
      assert.equal(pre.status, 204, pre.text);
      assert.equal(pre.text, "");
      assert.equal(pre.headers["access-control-allow-origin"], "http://localhost:5173");
      assert.match(String(pre.headers["access-control-allow-methods"]), /\bPOST\b/);
      const allowed = String(pre.headers["access-control-allow-headers"])
        .toLowerCase()
        .split(/\s*,\s*/);
      for (const h of SDK_HEADERS.split(",")) assert.ok(allowed.includes(h), `${h} allowed`);
      assert.equal(pre.headers["access-control-allow-private-network"], "true");
      assert.ok(Number(pre.headers["access-control-max-age"]) > 0);
      assert.match(String(pre.headers.vary), /origin/i);

      // the request itself: without the key a 401 the page can read; with it, the answer
      const noKey = await send(gw.url, "/v1/messages", {
        headers: { origin: "http://localhost:5173", "content-type": "application/json" },
        body: MESSAGE,
      });
      assert.equal(noKey.status, 401);
      assert.equal(noKey.headers["access-control-allow-origin"], "http://localhost:5173");
      const keyed = await send(gw.url, "/v1/messages", {
        headers: {
          origin: "http://localhost:5173",
          "content-type": "application/json",
          "x-api-key": "sk-gw",
        },
        body: MESSAGE,
      });
      assert.equal(keyed.status, 200, keyed.text);

      const refused = await send(gw.url, "/v1/chat/completions", {
        method: "OPTIONS",
        headers: {
          origin: "http://evil.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type",
        },
      });
      assert.equal(refused.status, 403);
      assert.equal(refused.headers["access-control-allow-origin"], undefined);
      assert.equal(refused.headers["access-control-allow-headers"], undefined);
      assert.match(refused.json.error.message, /server\.cors_origins/);

      // even a key does not let a page in that the user did not allow
      const keyedEvil = await send(gw.url, "/v1/messages", {
        headers: { origin: "http://evil.example", "content-type": "application/json", "x-api-key": "sk-gw" },
        body: MESSAGE,
      });
      assert.equal(keyedEvil.status, 403);
    } finally {
      await gw.close();
    }
  });
});

describe("web pages: Host (DNS rebinding)", () => {
  let fake: FakeServer;
  let gw: RunningGateway;
  before(async () => {
    fake = await startOllamaFake({ models: [{ name: "q:latest" }], reply: { text: "pong" } });
    gw = await startGateway(oneBackend("ollama", fake.url, "q", "    discover: false"));
  });
  after(async () => {
    await gw.close();
    await fake.close();
  });

  test("a loopback gateway answers requests for localhost, 127.x and [::1] only", async () => {
    const port = new URL(gw.url).port;
    for (const host of [
      `localhost:${port}`,
      "localhost",
      `127.0.0.1:${port}`,
      "127.42.0.9",
      `[::1]:${port}`,
      "[::ffff:7f00:1]",
    ]) {
      const r = await send(gw.url, "/v1/models", { headers: { host } });
      assert.equal(r.status, 200, `${host}: ${r.text}`);
    }
    for (const host of [
      "evil.example:4000",
      `evil.example:${port}`,
      "localhost.evil.example",
      "127.0.0.1.nip.example",
      "[fe80::1]:4000",
      "192.168.1.20",
    ]) {
      for (const path of ["/v1/models", "/health", "/metrics"]) {
        const r = await send(gw.url, path, { headers: { host } });
        assert.equal(r.status, 403, `${host}${path}`);
        assert.doesNotMatch(r.text, /test-model|clawbridge_/);
      }
    }
    const answer = await send(gw.url, "/v1/messages", {
      headers: { host: "evil.example:4000", "content-type": "application/json" },
      body: MESSAGE,
    });
    assert.equal(answer.status, 403);
    assert.equal(answer.json.error.type, "permission_error");
    assert.equal(answer.json.error.code, undefined, "Anthropic errors have no code");
    assert.match(answer.json.error.message, /host "evil\.example:4000"/);
    assert.match(answer.json.error.message, /server\.allowed_hosts in the config/);
  });

  test("server.allowed_hosts adds names, with or without their port", async () => {
    const gw2 = await startGateway(
      `server:\n  allowed_hosts: ["MyBox.lan", "proxy.internal:8443"]\n${oneBackend("ollama", fake.url, "q", "    discover: false")}`,
    );
    try {
      for (const host of ["mybox.lan:4000", "mybox.lan", "MYBOX.LAN.", "proxy.internal:8443"]) {
        assert.equal((await send(gw2.url, "/v1/models", { headers: { host } })).status, 200, host);
      }
      for (const host of ["proxy.internal:9999", "evil.mybox.lan", "mybox.lan.evil.example"]) {
        assert.equal((await send(gw2.url, "/v1/models", { headers: { host } })).status, 403, host);
      }
    } finally {
      await gw2.close();
    }
  });

  test("not checked on a non-loopback bind, where the master key guards the gateway", async () => {
    const open = await startGateway(
      `server:\n  host: 0.0.0.0\n  master_key: sk-gw\n${oneBackend("ollama", fake.url, "q", "    discover: false")}`,
    );
    try {
      const r = await send(open.url, "/v1/models", {
        headers: { host: "gateway.example.org:4000", "x-api-key": "sk-gw" },
      });
      assert.equal(r.status, 200, r.text);
      const noKey = await send(open.url, "/v1/models", { headers: { host: "gateway.example.org:4000" } });
      assert.equal(noKey.status, 401);
    } finally {
      await open.close();
    }
  });

  test("hostAllowed reads Host headers as they come", () => {
    assert.equal(hostAllowed("LOCALHOST:4000"), true);
    assert.equal(hostAllowed("127.0.0.1"), true);
    assert.equal(hostAllowed("[::1]"), true);
    assert.equal(hostAllowed("[::1"), false);
    assert.equal(hostAllowed("127.0.0.1:4000:5"), false);
    assert.equal(hostAllowed("128.0.0.1"), false);
    assert.equal(hostAllowed("localhost@evil.example"), false);
  });
});

describe("config: server.cors_origins and server.allowed_hosts", () => {
  const parse = (server: string) => parseConfig(`server:\n${server}\n`, "c.yaml", {});

  test("origins are kept as browsers write them", () => {
    const c = parse('  cors_origins: ["HTTP://LocalHost:80/", "https://ui.example:8443", "*", "null"]');
    assert.deepEqual(c.server.corsOrigins, ["http://localhost", "https://ui.example:8443", "*", "null"]);
    assert.equal(normalizeOrigin("chrome-extension://ABC"), "chrome-extension://abc");
  });

  test("what is not an origin or a host is a clear error on its line", () => {
    assert.throws(
      () => parse('  cors_origins: ["http://localhost:3000/app"]'),
      (e: unknown) =>
        e instanceof ConfigError &&
        /c\.yaml:2: server\.cors_origins\.0: "http:\/\/localhost:3000\/app" is not an origin/.test(e.message),
    );
    assert.throws(() => parse('  cors_origins: ["localhost:3000"]'), /is not an origin/);
    assert.throws(
      () => parse('  allowed_hosts: ["http://myhost/"]'),
      (e: unknown) =>
        e instanceof ConfigError && /server\.allowed_hosts\.0: expected a host name/.test(e.message),
    );
    assert.deepEqual(parse('  allowed_hosts: ["myhost", "[fe80::1]:80", "*"]').server.allowedHosts, [
      "myhost",
      "[fe80::1]:80",
      "*",
    ]);
  });
});
