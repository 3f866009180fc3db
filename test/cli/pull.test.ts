/**
 * `clawbridge pull` against a local HTTP server only (no test reaches the internet): a GGUF with
 * its SHA-256 in the headers (as Hugging Face sends it, on a redirect), a connection that breaks
 * half-way (resumed with Range), a wrong checksum, a server that cannot resume, the CLI itself.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { checksumFromHeaders, plainly, pull, resolveSource } from "../../src/backends/embedded/pull.js";
import { makeTinyGguf } from "../fixtures/tiny-gguf.js";
import { runCli } from "../helpers.js";

const MODEL = makeTinyGguf({ seed: 5 });
const SHA = createHash("sha256").update(MODEL).digest("hex");

interface Server {
  url: string;
  /** Requests seen: path and Range header. */
  seen: Array<{ path: string; range?: string }>;
  /** The next GET of /flaky.gguf breaks after this many bytes. */
  breakAfter?: number;
  close(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const state: Server = { url: "", seen: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    state.seen.push({ path, ...(req.headers.range ? { range: req.headers.range } : {}) });
    // Hugging Face's shape: the resolve URL redirects to storage, the checksum on the redirect
    if (path.startsWith("/owner/repo/resolve/main/")) {
      res.writeHead(302, { location: `/files/${path.split("/").pop()}`, "x-linked-etag": `"${SHA}"` });
      return res.end();
    }
    if (path === "/no-range/model.gguf") {
      res.writeHead(200, { "content-length": MODEL.length });
      return res.end(MODEL);
    }
    if (path === "/wrong-sum/model.gguf") {
      res.writeHead(200, { "content-length": MODEL.length, etag: `"${"0".repeat(64)}"` });
      return res.end(MODEL);
    }
    if (path === "/not-a-model/model.gguf") {
      const junk = Buffer.from("<html>not found</html>");
      res.writeHead(200, { "content-length": junk.length });
      return res.end(junk);
    }
    if (!path.startsWith("/files/") && path !== "/flaky.gguf") {
      res.writeHead(404);
      return res.end();
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const from = m ? Number(m[1]) : 0;
    if (from >= MODEL.length) {
      res.writeHead(416, { "content-range": `bytes */${MODEL.length}` });
      return res.end();
    }
    const body = MODEL.subarray(from);
    res.writeHead(m ? 206 : 200, {
      "content-length": body.length,
      etag: `"${SHA}"`,
      ...(m ? { "content-range": `bytes ${from}-${MODEL.length - 1}/${MODEL.length}` } : {}),
    });
    if (path === "/flaky.gguf" && state.breakAfter !== undefined) {
      const n = state.breakAfter;
      state.breakAfter = undefined;
      res.write(body.subarray(0, n), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}

describe("clawbridge pull", () => {
  let srv: Server;
  let dir: string;
  before(async () => {
    srv = await startServer();
    dir = mkdtempSync(join(tmpdir(), "clawbridge-pull-"));
  });
  after(async () => {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("names: URLs as they are, hf:owner/repo/file.gguf to Hugging Face's resolve URL", () => {
    assert.equal(resolveSource("https://x.test/a/b.gguf"), "https://x.test/a/b.gguf");
    assert.equal(
      resolveSource("hf:Qwen/Qwen2.5-7B-Instruct-GGUF/qwen2.5-7b-instruct-q4_k_m.gguf", {}),
      "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct-GGUF/resolve/main/qwen2.5-7b-instruct-q4_k_m.gguf",
    );
    assert.equal(
      resolveSource("hf:o/r@v2/sub/m.gguf", { HF_ENDPOINT: "http://127.0.0.1:9/" }),
      "http://127.0.0.1:9/o/r/resolve/v2/sub/m.gguf",
    );
    assert.throws(
      () => resolveSource("qwen2.5:7b", {}),
      /give an http\(s\) URL of a \.gguf file, or hf:owner\/repo\/file\.gguf/,
    );
    assert.equal(checksumFromHeaders({ etag: `W/"${SHA}"` }), SHA);
    assert.equal(checksumFromHeaders({ etag: '"abc-123"' }), undefined);
  });

  test("hf: name → redirect → file, checked against the x-linked-etag on the redirect", async () => {
    const out = join(dir, "hf");
    const got = await pull(resolveSource("hf:owner/repo/tiny.gguf", { HF_ENDPOINT: srv.url }), { dir: out });
    assert.equal(got.path, join(out, "tiny.gguf"));
    assert.equal(got.checkedAgainst, "server");
    assert.equal(got.sha256, SHA);
    assert.deepEqual(readFileSync(got.path), MODEL);
    assert.ok(!existsSync(`${got.path}.part`));
    await assert.rejects(pull(`${srv.url}/files/tiny.gguf`, { dir: out }), /exists already/);
  });

  test("a broken connection leaves a .part; the next pull resumes it with a Range request", async () => {
    const out = join(dir, "resume");
    srv.breakAfter = 300_000;
    await assert.rejects(pull(`${srv.url}/flaky.gguf`, { dir: out }), /run the same pull again to resume/);
    const part = join(out, "flaky.gguf.part");
    // what arrived before the break (all 300,000 bytes the server sent, or fewer on a slow machine) is kept
    const had = statSync(part).size;
    assert.ok(had > 0 && had <= 300_000, `${had} bytes kept`);
    srv.seen.length = 0;
    const got = await pull(`${srv.url}/flaky.gguf`, { dir: out });
    assert.deepEqual(srv.seen, [{ path: "/flaky.gguf", range: `bytes=${had}-` }]);
    assert.equal(got.resumedFrom, had);
    assert.equal(got.checkedAgainst, "server");
    assert.deepEqual(readFileSync(got.path), MODEL);
  });

  test("a checksum that does not match removes the download; --sha256 wins over the server", async () => {
    const out = join(dir, "sums");
    await assert.rejects(
      pull(`${srv.url}/wrong-sum/model.gguf`, { dir: out }),
      /checksum mismatch: expected sha256 0{64}, got [0-9a-f]{64}; the download was removed/,
    );
    assert.ok(!existsSync(join(out, "model.gguf.part")) && !existsSync(join(out, "model.gguf")));
    const got = await pull(`${srv.url}/wrong-sum/model.gguf`, { dir: out, sha256: SHA });
    assert.equal(got.checkedAgainst, "option");
    // a server that states none: downloaded, not checked; one that cannot resume starts over
    const plain = join(dir, "plain");
    const first = await pull(`${srv.url}/no-range/model.gguf`, { dir: plain });
    assert.equal(first.checkedAgainst, undefined);
    rmSync(first.path);
    writeFileSync(`${first.path}.part`, MODEL.subarray(0, 1000));
    const again = await pull(`${srv.url}/no-range/model.gguf`, { dir: plain });
    assert.equal(again.resumedFrom, 0);
    assert.deepEqual(readFileSync(again.path), MODEL);
  });

  test("what is not a GGUF is not kept as a model", async () => {
    await assert.rejects(
      pull(`${srv.url}/not-a-model/model.gguf`, { dir: join(dir, "junk") }),
      /not a GGUF file.*the server sent 22 B of .*not a model \(a login page or a wrong link\?\); nothing was kept/,
    );
    // no *.gguf.part junk in the models folder
    assert.deepEqual(readdirSync(join(dir, "junk")), []);
  });

  test("connection errors in plain words, exit 1, nothing left in the folder", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const models = join(dir, "refused");
    const r = await runCli(["pull", `http://127.0.0.1:${port}/m.gguf`], {
      env: { ...process.env, CLAWBRIDGE_MODELS: models },
    });
    assert.equal(r.code, 1);
    assert.match(
      r.out,
      new RegExp(
        `clawbridge pull: cannot download http://127\\.0\\.0\\.1:${port}/m\\.gguf: nothing answers at 127\\.0\\.0\\.1:${port} \\(connection refused\\): is the address right, and the server running\\?`,
      ),
    );
    assert.doesNotMatch(r.out, /ECONNREFUSED|connect E/);
    assert.deepEqual(readdirSync(models), []);
    // a name that does not resolve (no lookup made here: the error as Node gives it)
    const dns = Object.assign(new Error("getaddrinfo ENOTFOUND huggingface.cpo"), { code: "ENOTFOUND" });
    assert.equal(
      (plainly("https://huggingface.cpo/x.gguf", dns) as Error).message,
      "cannot download https://huggingface.cpo/x.gguf: the host huggingface.cpo is not known: check its spelling, and that this machine is online",
    );
  });

  test("the CLI: progress on stderr, the path on stdout, into $CLAWBRIDGE_MODELS", async () => {
    const models = join(dir, "cli-models");
    const r = await runCli(["pull", `${srv.url}/files/cli.gguf`], {
      env: { ...process.env, CLAWBRIDGE_MODELS: models },
    });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /100%/);
    assert.match(r.out, /sha256 [0-9a-f]{64} \(matches the server's\)/);
    assert.ok(r.out.includes(join(models, "cli.gguf")));
    assert.deepEqual(readFileSync(join(models, "cli.gguf")), MODEL);
    const bad = await runCli(["pull", "qwen2.5:7b"], { env: { ...process.env, CLAWBRIDGE_MODELS: models } });
    assert.equal(bad.code, 1);
    assert.match(bad.out, /clawbridge pull: cannot tell where to download 'qwen2\.5:7b' from/);
  });

  test("the CLI: a catalogue id downloads its file under its name, checked against its SHA-256", async () => {
    const models = join(dir, "catalogue-models");
    const catalogue = join(dir, "catalogue.json");
    const entry = {
      id: "tiny-coder",
      quant: "F32",
      file: "Tiny-Coder-F32.gguf",
      source: "hf:owner/repo/tiny.gguf",
      sizeBytes: MODEL.length,
      sha256: SHA,
      trainedContext: 2048,
      kvBytesPerToken: 1024,
    };
    writeFileSync(catalogue, JSON.stringify([entry]));
    const env = {
      ...process.env,
      CLAWBRIDGE_MODELS: models,
      CLAWBRIDGE_CATALOGUE: catalogue,
      HF_ENDPOINT: srv.url,
    };
    const r = await runCli(["pull", "tiny-coder"], { env });
    assert.equal(r.code, 0, r.out);
    assert.ok(r.out.includes(`pulling ${srv.url}/owner/repo/resolve/main/tiny.gguf`), r.out);
    assert.match(r.out, new RegExp(`sha256 ${SHA} \\(matches the catalogue's\\)`));
    assert.deepEqual(readFileSync(join(models, "Tiny-Coder-F32.gguf")), MODEL);
    // the catalogue's checksum wins over the server's: a wrong one refuses the download
    writeFileSync(catalogue, JSON.stringify([{ ...entry, file: "other.gguf", sha256: "0".repeat(64) }]));
    const bad = await runCli(["pull", "tiny-coder"], { env });
    assert.equal(bad.code, 1);
    assert.match(bad.out, /clawbridge pull: checksum mismatch: expected sha256 0{64}/);
    assert.ok(!existsSync(join(models, "other.gguf")));
  });
});
