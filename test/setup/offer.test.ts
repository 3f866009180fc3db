/**
 * From nothing, against a local HTTP server standing in for Hugging Face (the catalogue pointed at
 * it with CLAWBRIDGE_CATALOGUE): the offer asked and declined, the progress, the checksum checked
 * against the catalogue (and against the server's x-linked-etag where the catalogue states none), a
 * corrupt download refused with nothing kept, and a real `clawbridge serve --yes` process that pulls
 * the generated test model and answers a /v1/messages request with it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type { CatalogueEntry, MachineMemory } from "../../src/setup/catalogue.js";
import { useEngineModule } from "../../src/backends/embedded/engine.js";
import { offerModel } from "../../src/setup/offer.js";
import { makeTinyGguf, REPO_ROOT } from "../fixtures/tiny-gguf.js";
import { listenUrl } from "../helpers.js";

const MODEL = makeTinyGguf();
const SHA = createHash("sha256").update(MODEL).digest("hex");
const CORRUPT = Buffer.from(MODEL);
CORRUPT.writeUInt8(CORRUPT.readUInt8(CORRUPT.length - 100) ^ 0xff, CORRUPT.length - 100);
const NO_ENGINE = (await import("node-llama-cpp").then(
  () => false,
  () => true,
))
  ? "node-llama-cpp (an optional dependency) is not installed"
  : false;

/** The offers below are not about the engine's presence (the last ones, through `serve`, need it). */
const ENGINE_HERE = async () => undefined;
const MEMORY: MachineMemory = { bytes: 8 * 1024 ** 3, label: "8 GiB GPU", source: "test", cpu: false };

interface Host {
  url: string;
  /** Paths requested. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * Hugging Face's shape: /owner/repo/resolve/<rev>/<file> redirects to storage with the file's
 * SHA-256 in x-linked-etag; storage sends the bytes (here in four parts, 150 ms apart, so the
 * progress shows). `corrupt.gguf` is the model with one byte changed under the good checksum,
 * `lying-etag.gguf` the good model under a wrong x-linked-etag.
 */
async function startHost(): Promise<Host> {
  const state: Host = { url: "", seen: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    state.seen.push(path);
    const resolve = /^\/test\/models\/resolve\/[^/]+\/([^/]+)$/.exec(path);
    if (resolve) {
      const file = resolve[1]!;
      const etag = file === "lying-etag.gguf" ? "1".repeat(64) : SHA;
      res.writeHead(302, { location: `/storage/${file}`, "x-linked-etag": `"${etag}"` });
      return res.end();
    }
    const m = /^\/storage\/([^/]+)$/.exec(path);
    if (!m) {
      res.writeHead(404);
      return res.end();
    }
    const body = m[1] === "corrupt.gguf" ? CORRUPT : MODEL;
    res.writeHead(200, { "content-length": body.length, "content-type": "application/octet-stream" });
    const quarter = Math.ceil(body.length / 4);
    let i = 0;
    const next = () => {
      const chunk = body.subarray(i * quarter, (i + 1) * quarter);
      i++;
      if (i >= 4) return res.end(chunk);
      res.write(chunk);
      setTimeout(next, 150);
    };
    next();
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

function entry(file: string, extra: Partial<CatalogueEntry> = {}): CatalogueEntry {
  return {
    id: file.replace(/\.gguf$/, ""),
    quant: "F32",
    file,
    source: `hf:test/models@0123abc/${file}`,
    sizeBytes: MODEL.length,
    sha256: SHA,
    trainedContext: 2048,
    kvBytesPerToken: 1024,
    ...extra,
  };
}

/** A progress stream that is not a terminal, and what was drawn on it. */
function progressSink() {
  const sink = {
    text: "",
    isTTY: false,
    write(s: string) {
      sink.text += s;
      return true;
    },
  };
  return sink;
}

describe("from nothing: the offer, the pull, the answer", () => {
  let host: Host;
  let root: string;
  before(async () => {
    host = await startHost();
    root = mkdtempSync(join(tmpdir(), "clawbridge-offer-"));
  });
  after(async () => {
    await host.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** A catalogue of `entries` pointed at the local host, and an empty models folder. */
  function setup(name: string, entries: CatalogueEntry[]) {
    const dir = join(root, name);
    mkdirSync(join(dir, "models"), { recursive: true });
    const catalogue = join(dir, "catalogue.json");
    writeFileSync(catalogue, JSON.stringify(entries));
    const env = {
      CLAWBRIDGE_CATALOGUE: catalogue,
      CLAWBRIDGE_CATALOGUE_BASE: host.url,
      CLAWBRIDGE_MODELS: join(dir, "models"),
    };
    return { env, models: join(dir, "models"), lines: [] as string[] };
  }

  /** The offer taken without asking (`--yes`), its lines kept, its progress drawn into a sink. */
  function accept(s: ReturnType<typeof setup>) {
    return offerModel({
      interactive: false,
      yes: true,
      log: (l) => s.lines.push(l),
      env: s.env,
      memory: MEMORY,
      engine: ENGINE_HERE,
      progress: progressSink() as unknown as NodeJS.WriteStream,
    });
  }

  test("asked on a terminal: the question names the model, size and memory; 'n' downloads nothing", async () => {
    const s = setup("declined", [entry("tiny-agent.gguf")]);
    const asked: string[] = [];
    const before = host.seen.length;
    const got = await offerModel({
      interactive: true,
      yes: false,
      log: (l) => s.lines.push(l),
      env: s.env,
      memory: MEMORY,
      engine: ENGINE_HERE,
      ask: async (q) => {
        asked.push(q);
        return "n";
      },
    });
    assert.equal(got, undefined);
    assert.deepEqual(asked, ["Download tiny-agent F32 (1 MB) for this machine's 8 GiB GPU? [Y/n] "]);
    assert.match(
      s.lines[0]!,
      /^Model for this machine: tiny-agent F32: the largest catalogue model that fits 8 GiB/,
    );
    assert.ok(s.lines.includes("Not downloading."));
    assert.match(s.lines.join("\n"), /start a local model server .*\n.*clawbridge pull </);
    assert.equal(host.seen.length, before, "nothing was requested");
    assert.deepEqual(readdirSync(s.models), []);
  });

  test("no terminal and no --yes: no question, a clear line, nothing downloaded", async () => {
    const s = setup("no-tty", [entry("tiny-agent.gguf")]);
    const got = await offerModel({
      interactive: false,
      yes: false,
      log: (l) => s.lines.push(l),
      env: s.env,
      memory: MEMORY,
      engine: ENGINE_HERE,
      ask: () => assert.fail("asked without a terminal"),
    });
    assert.equal(got, undefined);
    assert.match(
      s.lines.join("\n"),
      /Not downloading it without a terminal to ask on: run `clawbridge serve --yes` to download tiny-agent F32 \(1 MB\)/,
    );
    assert.deepEqual(readdirSync(s.models), []);
  });

  test("accepted (Enter): pulled with progress, checked against the catalogue's SHA-256", async () => {
    const s = setup("accepted", [entry("tiny-agent.gguf")]);
    const progress = progressSink();
    const got = await offerModel({
      interactive: true,
      yes: false,
      log: (l) => s.lines.push(l),
      env: s.env,
      memory: MEMORY,
      engine: ENGINE_HERE,
      ask: async () => "",
      progress: progress as unknown as NodeJS.WriteStream,
    });
    assert.equal(got, join(s.models, "tiny-agent.gguf"));
    assert.ok(readFileSync(got!).equals(MODEL));
    assert.ok(
      s.lines.includes(
        `Downloading tiny-agent F32 (1 MB) from ${host.url}/test/models/resolve/0123abc/tiny-agent.gguf`,
      ),
      s.lines.join("\n"),
    );
    assert.ok(s.lines.some((l) => l.endsWith(`sha256 ${SHA} (matches the catalogue's)`)));
    // one line per tenth reached (not a terminal): several as the parts arrived, the last at 100%
    const drawn = progress.text.trim().split("\n");
    assert.ok(drawn.length >= 3, progress.text);
    for (const line of drawn) assert.match(line, /^\d+% {2}[\d.]+ (KB|MB) \/ [\d.]+ (KB|MB) {2}/);
    assert.match(drawn.at(-1)!, /^100%/);
    assert.deepEqual(readdirSync(s.models), ["tiny-agent.gguf"]);
  });

  test("a corrupt download is refused and nothing of it is kept", async () => {
    const s = setup("corrupt", [entry("corrupt.gguf")]);
    const got = await accept(s);
    assert.equal(got, undefined);
    const corruptSha = createHash("sha256").update(CORRUPT).digest("hex");
    assert.ok(
      s.lines.includes(
        `The download failed: checksum mismatch: expected sha256 ${SHA}, got ${corruptSha}; the download was removed`,
      ),
      s.lines.join("\n"),
    );
    assert.match(s.lines.join("\n"), /clawbridge pull </);
    assert.deepEqual(readdirSync(s.models), [], "no file, no .part");
  });

  test("an entry without a verified SHA-256 is checked against the server's x-linked-etag", async () => {
    const s = setup("etag", [entry("lying-etag.gguf", { sha256: undefined })]);
    const got = await accept(s);
    assert.equal(got, undefined);
    assert.match(s.lines.join("\n"), /checksum mismatch: expected sha256 1{64}, got [0-9a-f]{64}/);
    assert.deepEqual(readdirSync(s.models), []);
    const ok = setup("etag-ok", [entry("tiny-agent.gguf", { sha256: undefined })]);
    const path = await accept(ok);
    assert.equal(path, join(ok.models, "tiny-agent.gguf"));
    assert.ok(ok.lines.some((l) => l.endsWith("(matches the server's; the catalogue states none)")));
  });

  test("nothing fits this machine: said, with the smallest's need, and what to do instead", async () => {
    const s = setup("too-small", [entry("tiny-agent.gguf", { sizeBytes: 64 * 1024 ** 3 })]);
    const got = await offerModel({
      interactive: true,
      yes: true,
      log: (l) => s.lines.push(l),
      env: s.env,
      memory: MEMORY,
    });
    assert.equal(got, undefined);
    assert.match(
      s.lines[0]!,
      /^No model to offer: no catalogue model fits 8 GiB \(test\): the smallest, tiny-agent, needs 70\.4 GiB/,
    );
  });

  test("without the in-process engine installed, no download is offered that could not run", async () => {
    const s = setup("no-engine", [entry("tiny-agent.gguf")]);
    useEngineModule("node-llama-cpp-not-installed-here");
    const got = await offerModel({
      interactive: true,
      yes: true,
      log: (l) => s.lines.push(l),
      env: s.env,
      memory: MEMORY,
    }).finally(() => useEngineModule());
    assert.equal(got, undefined);
    assert.match(
      s.lines.join("\n"),
      /Not offering tiny-agent F32 \(1 MB\): the embedded engine is not installed/,
    );
    assert.deepEqual(readdirSync(s.models), []);
  });

  function serve(args: string[], env: Record<string, string>) {
    const home = mkdtempSync(join(root, "home-"));
    return spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--port", "0", ...args], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...env,
        HOME: home,
        OLLAMA_MODELS: join(home, "no-ollama"),
        CLAWBRIDGE_CONFIG: "",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  async function stop(child: ReturnType<typeof serve>) {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  }

  test("`clawbridge serve` without a terminal or --yes: the clear line, no download, the usual hints", {
    skip: NO_ENGINE,
  }, async () => {
    const s = setup("serve-no-tty", [entry("tiny-agent.gguf")]);
    const before = host.seen.length;
    const child = serve([], s.env);
    try {
      const { out } = await listenUrl(child);
      assert.match(out, /Not downloading it without a terminal to ask on: run `clawbridge serve --yes`/);
      assert.match(out, /no GGUF model was found on disk/);
      assert.equal(host.seen.length, before);
      assert.deepEqual(readdirSync(s.models), []);
    } finally {
      await stop(child);
    }
  });

  test("`clawbridge serve --yes` pulls the picked model and answers /v1/messages with it in-process", {
    skip: NO_ENGINE,
  }, async () => {
    const s = setup("serve-yes", [entry("tiny-agent.gguf")]);
    const child = serve(["--yes"], s.env);
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
    });
    try {
      const { url, out } = await listenUrl(child, 60_000);
      assert.match(out, /Model for this machine: tiny-agent F32: the largest catalogue model that fits/);
      assert.match(
        out,
        new RegExp(`tiny-agent\\.gguf: [\\d.]+ KB, sha256 ${SHA} \\(matches the catalogue's\\)`),
      );
      assert.match(out, /serving the 1 GGUF model found on disk in-process/);
      assert.match(out, /models: tiny-agent/);
      assert.match(err, /100%/, "progress on stderr");
      assert.ok(existsSync(join(s.models, "tiny-agent.gguf")));
      const client = new Anthropic({ baseURL: url, apiKey: "x", maxRetries: 0 });
      const m = await client.messages.create({
        model: "tiny-agent",
        max_tokens: 4,
        messages: [{ role: "user", content: "hi" }],
      });
      assert.equal(m.type, "message");
      assert.equal(m.model, "tiny-agent");
      assert.ok(m.usage.output_tokens >= 1 && m.usage.output_tokens <= 4, String(m.usage.output_tokens));
      assert.ok(["end_turn", "max_tokens"].includes(String(m.stop_reason)));
    } finally {
      await stop(child);
    }
  });

  test("`launch claude --yes`: the model offered for this machine is pulled, served in-process, and the client answered by it", {
    skip: NO_ENGINE,
  }, async () => {
    const s = setup("launch-yes", [entry("tiny-agent.gguf")]);
    // a stand-in for Claude Code: one request to the gateway it was pointed at, its answer printed
    const bin = join(root, "launch-yes", "bin");
    mkdirSync(bin);
    writeFileSync(
      join(bin, "claude"),
      `#!${process.execPath}
(async () => {
  const e = process.env;
  const res = await fetch(e.ANTHROPIC_BASE_URL + "/v1/messages", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + e.ANTHROPIC_AUTH_TOKEN, "anthropic-version": "2023-06-01" },
    body: JSON.stringify({ model: e.ANTHROPIC_MODEL, max_tokens: 4, messages: [{ role: "user", content: "hi" }] }),
  });
  const body = await res.json();
  console.log("CLIENT " + JSON.stringify({ status: res.status, model: body.model, type: body.type }));
})();
`,
    );
    chmodSync(join(bin, "claude"), 0o755);
    const home = mkdtempSync(join(root, "home-"));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "launch", "claude", "--yes", "--", "-p", "hi"],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          ...s.env,
          HOME: home,
          OLLAMA_MODELS: join(home, "no-ollama"),
          CLAWBRIDGE_CONFIG: "",
          PATH: `${bin}:${process.env.PATH}`,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    assert.equal(code, 0, out);
    assert.match(out, /no clawbridge is running, no local server answered, and no GGUF model is on disk/);
    assert.match(out, /Model for this machine: tiny-agent F32/);
    assert.ok(existsSync(join(s.models, "tiny-agent.gguf")), out);
    const line = out.split("\n").find((l) => l.startsWith("CLIENT "));
    assert.ok(line, out);
    assert.deepEqual(JSON.parse(line.slice(7)), { status: 200, model: "tiny-agent", type: "message" });
  });
});
