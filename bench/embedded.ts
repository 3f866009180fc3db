// The embedded benchmark: tokens per second of a GGUF model run in-process, through clawbridge and driven by
// node-llama-cpp directly, in the same run, on the same model and settings.
//
//   node --import tsx bench/embedded.ts [--rounds 6] [--tokens 1000] [--threads 1] [--warmup 1] [--clawbridge dist/cli/main.js]
//   (also run by bench/run.ts at the end of a full run; `--only embedded` runs it alone)
//
// The model is the tiny generated one (test/fixtures/tiny-gguf.ts: llama architecture, 2 layers, width 64, random
// weights), so the figure is dominated by what each token costs around the model: a gateway that added work per
// token would show here first. clawbridge runs from dist/ in its own process (`serve --config`, an embedded
// backend, one sequence); the client streams an OpenAI-dialect request and reads the SSE. Direct: LlamaChat over the
// same chat in this process, same context size, threads, flash attention, sampling (llama.cpp's server defaults:
// temperature 0.8, top-k 40, top-p 0.95, min-p 0.05), seed and CPU (no GPU on any side), so all generate the same
// tokens. Each side first serves the same unmeasured warm-up request(s) (--warmup), so none is measured while V8 is
// still compiling its token loop. Rounds alternate the sides; the figure is each side's tokens over its time, all
// rounds together. tokens/s = completion tokens / (request sent → last token), and the
// decode rate (first token → last) beside it. Results: bench/results/embedded.json and embedded.md.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EmbeddedBackend } from "../src/backends/embedded/index.js";
import type { Request } from "../src/ir/types.js";
import { silentLogger } from "../src/log.js";
import type { ModelProfile } from "../src/ir/contract.js";
import { ensureTinyModel } from "../test/fixtures/tiny-gguf.js";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, "..");
const HOST = "127.0.0.1";
const CONTEXT = 2048;

export interface EmbeddedBenchOptions {
  rounds: number;
  /** tokens asked per request */
  tokens: number;
  /** unmeasured requests per side before the rounds, each like a measured one (default 1) */
  warmup?: number;
  threads: number;
  clawbridgeCli: string;
  resultsDir?: string;
}

interface Run {
  /** CPU time the harness process spent meanwhile (the client's reading, or the direct engine's JS) */
  harnessCpuMs?: number;
  /** CPU time clawbridge's process spent meanwhile */
  gatewayCpuMs?: number;
  tokens: number;
  totalMs: number;
  decodeMs: number;
}

export interface EmbeddedBenchResult {
  ok: boolean;
  model: string;
  rounds: number;
  threads: number;
  direct: { tokPerS: number; decodeTokPerS: number; runs: Run[] };
  /** the embedded backend alone, in the harness process (its worker thread, no HTTP, no stages) */
  backend: { tokPerS: number; decodeTokPerS: number; runs: Run[] };
  clawbridge: { tokPerS: number; decodeTokPerS: number; runs: Run[] };
  /** clawbridge's tokens/s over direct's (target ≥ 0.95) */
  ratio: number;
  decodeRatio: number;
  notes: string[];
}

const SYSTEM = "You are a helpful assistant.";
const USER = "Write a long story about a lighthouse keeper.";

/** user + system CPU time of a process, from /proc (Linux; 0 elsewhere) */
function procCpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.listen(0, HOST, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => res(port));
    });
    srv.on("error", rej);
  });
}

async function startClawbridge(
  cli: string,
  model: string,
  threads: number,
): Promise<{ url: string; child: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "clawbridge-bench-embedded-"));
  const config = join(dir, "clawbridge.yaml");
  writeFileSync(
    config,
    `log: { level: warn }
backends:
  local:
    kind: embedded
    paths: ["${model}"]
    models_dir: "${dir}"
    ollama_models: false
    threads: ${threads}
    gpu: off
    context_size: ${CONTEXT}
    parallel: 1
`,
  );
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [cli, "serve", "--config", config, "--host", HOST, "--port", String(port)],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const url = `http://${HOST}:${port}`;
  const deadline = Date.now() + 30_000;
  while (!/listening on/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`clawbridge did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, child, dir };
}

/** One streamed request through clawbridge: completion tokens, request → last token, first → last token. */
async function viaClawbridge(url: string, tokens: number, seed: number): Promise<Run> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "clawbridge-tiny",
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: tokens,
      seed,
      messages: [
        { role: "system", content: SYSTEM },
        { role: "user", content: USER },
      ],
    }),
  });
  if (!res.ok || !res.body) throw new Error(`clawbridge answered ${res.status}: ${await res.text()}`);
  let first: number | undefined;
  let last = started;
  let completion = 0;
  let buf = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let at = buf.indexOf("\n\n"); at >= 0; at = buf.indexOf("\n\n")) {
      const event = buf.slice(0, at);
      buf = buf.slice(at + 2);
      const data = event.startsWith("data: ") ? event.slice(6) : "";
      if (!data || data === "[DONE]") continue;
      const j = JSON.parse(data) as {
        choices?: Array<{ delta?: { content?: string } }>;
        usage?: { completion_tokens?: number };
      };
      if (j.choices?.[0]?.delta?.content) {
        const now = performance.now();
        first ??= now;
        last = now;
      }
      if (j.usage?.completion_tokens) completion = j.usage.completion_tokens;
    }
  }
  return { tokens: completion, totalMs: last - started, decodeMs: last - (first ?? started) };
}

export async function runEmbeddedBench(opts: EmbeddedBenchOptions): Promise<EmbeddedBenchResult> {
  const notes: string[] = [];
  const warmup = opts.warmup ?? 1;
  const model = ensureTinyModel();
  const engine = await import("node-llama-cpp");
  const llama = await engine.getLlama({
    gpu: false,
    maxThreads: opts.threads,
    build: "never",
    progressLogs: false,
    logLevel: engine.LlamaLogLevel.error,
  });
  const m = await llama.loadModel({ modelPath: model });
  const context = await m.createContext({
    contextSize: CONTEXT,
    sequences: 1,
    threads: opts.threads,
    flashAttention: true,
  });
  const sequence = context.getSequence();
  const wrapper = engine.resolveChatWrapper(m);
  const direct = async (seed: number): Promise<Run> => {
    const chat = new engine.LlamaChat({ contextSequence: sequence, chatWrapper: wrapper });
    const before = sequence.tokenMeter.getState().usedOutputTokens;
    const started = performance.now();
    let first: number | undefined;
    let last = started;
    await chat.generateResponse(
      [
        { type: "system", text: SYSTEM },
        { type: "user", text: USER },
        { type: "model", response: [] },
      ],
      {
        maxTokens: opts.tokens,
        temperature: 0.8,
        topK: 40,
        topP: 0.95,
        minP: 0.05,
        seed,
        onTextChunk: () => {
          const now = performance.now();
          first ??= now;
          last = now;
        },
      },
    );
    chat.dispose({ disposeSequence: false });
    return {
      tokens: sequence.tokenMeter.getState().usedOutputTokens - before,
      totalMs: last - started,
      decodeMs: last - (first ?? started),
    };
  };

  const backend = new EmbeddedBackend({
    name: "bench",
    baseUrl: "",
    dispatcher: undefined as never,
    settings: {
      paths: [model],
      modelsDir: join(tmpdir(), "clawbridge-none"),
      ollamaDir: false,
      threads: opts.threads,
      contextSize: CONTEXT,
      // the CPU, as direct's getLlama({ gpu: false })
      gpu: "off",
    },
  });
  const profile = { model: "clawbridge-tiny", alias: "clawbridge-tiny" } as ModelProfile;
  const viaBackend = async (tokens: number, seed: number): Promise<Run> => {
    const req: Request = {
      model: "clawbridge-tiny",
      system: SYSTEM,
      messages: [{ role: "user", parts: [{ type: "text", text: USER }] }],
      tools: [],
      toolChoice: { type: "auto" },
      limits: { maxOutputTokens: tokens },
      sampling: { seed },
      thinking: {},
      stream: true,
      metadata: {},
      ignored: [],
    };
    const started = performance.now();
    let first: number | undefined;
    let last = started;
    let completion = 0;
    for await (const batch of backend.send(req, {
      profile,
      signal: new AbortController().signal,
      log: silentLogger,
    })) {
      for (const e of batch) {
        if (e.type === "textDelta") {
          const now = performance.now();
          first ??= now;
          last = now;
        } else if (e.type === "usage") completion = e.usage.outputTokens ?? 0;
      }
    }
    return { tokens: completion, totalMs: last - started, decodeMs: last - (first ?? started) };
  };
  const cb = await startClawbridge(opts.clawbridgeCli, model, opts.threads);
  const runs = { direct: [] as Run[], backend: [] as Run[], clawbridge: [] as Run[] };
  try {
    // warm-up, unmeasured: the engine's start and the model load, and the same request (the same tokens) on
    // every side, so each thread's JIT has compiled the token loop before the rounds. A side warmed with fewer
    // tokens than another would be measured while V8 is still optimizing its code (on background threads that
    // compete for the cores): with 64 tokens for the backend and clawbridge against a whole request for direct,
    // the backend spent 7-17% more CPU per token than direct over 12 rounds (0.75-0.90× in the first four) on a
    // 2-core machine, and about the same CPU (+1-4%) once all sides were warmed alike.
    for (let w = 0; w < warmup; w++) {
      await direct(1 + w);
      await viaBackend(opts.tokens, 1 + w);
      await viaClawbridge(cb.url, opts.tokens, 1 + w);
    }
    const sides = ["direct", "backend", "clawbridge"] as const;
    for (let i = 0; i < opts.rounds; i++) {
      const seed = 100 + i;
      // each round a different order of the three, so drift hits them alike
      const order = [0, 1, 2].map((k) => sides[(k + i) % 3]!);
      for (const side of order) {
        const cpu = process.cpuUsage();
        const gwBefore = procCpuMs(cb.child.pid!);
        const r =
          side === "direct"
            ? await direct(seed)
            : side === "backend"
              ? await viaBackend(opts.tokens, seed)
              : await viaClawbridge(cb.url, opts.tokens, seed);
        const used = process.cpuUsage(cpu);
        r.harnessCpuMs = (used.user + used.system) / 1000;
        r.gatewayCpuMs = procCpuMs(cb.child.pid!) - gwBefore;
        runs[side].push(r);
        process.stdout.write(
          `  round ${i + 1} ${side.padEnd(10)} ${r.tokens} tokens in ${r.totalMs.toFixed(0)} ms = ${((r.tokens / r.totalMs) * 1000).toFixed(0)} tok/s (CPU: harness ${r.harnessCpuMs!.toFixed(0)} ms, clawbridge process ${r.gatewayCpuMs!.toFixed(0)} ms)\n`,
        );
      }
      if (
        runs.direct.at(-1)!.tokens !== runs.clawbridge.at(-1)!.tokens ||
        runs.direct.at(-1)!.tokens !== runs.backend.at(-1)!.tokens
      )
        notes.push(`round ${i + 1}: the two sides generated different token counts (same seed)`);
    }
  } finally {
    cb.child.kill("SIGTERM");
    await new Promise((r) => cb.child.once("exit", r));
    rmSync(cb.dir, { recursive: true, force: true });
    await backend.close();
    await context.dispose();
    await m.dispose();
  }
  // all rounds together: tokens over time (rounds differ in length where the model ends its answer early)
  const rate = (rs: Run[], f: (r: Run) => number) =>
    (rs.reduce((a, r) => a + r.tokens, 0) / rs.reduce((a, r) => a + f(r), 0)) * 1000;
  const d = {
    tokPerS: rate(runs.direct, (r) => r.totalMs),
    decodeTokPerS: rate(runs.direct, (r) => r.decodeMs),
    runs: runs.direct,
  };
  const b = {
    tokPerS: rate(runs.backend, (r) => r.totalMs),
    decodeTokPerS: rate(runs.backend, (r) => r.decodeMs),
    runs: runs.backend,
  };
  const c = {
    tokPerS: rate(runs.clawbridge, (r) => r.totalMs),
    decodeTokPerS: rate(runs.clawbridge, (r) => r.decodeMs),
    runs: runs.clawbridge,
  };
  const result: EmbeddedBenchResult = {
    ok: c.tokPerS / d.tokPerS >= 0.95,
    model:
      "clawbridge-tiny (test/fixtures/tiny-gguf.ts: llama, 2 layers, width 64, 512 tokens, F32, random weights)",
    rounds: opts.rounds,
    threads: opts.threads,
    direct: d,
    backend: b,
    clawbridge: c,
    ratio: c.tokPerS / d.tokPerS,
    decodeRatio: c.decodeTokPerS / d.decodeTokPerS,
    notes,
  };
  const dir = opts.resultsDir ?? join(BENCH_DIR, "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "embedded.json"),
    `${JSON.stringify({ measuredAt: new Date().toISOString(), tokens: opts.tokens, warmup, ...result }, null, 2)}\n`,
  );
  writeFileSync(
    join(dir, "embedded.md"),
    [
      `# Embedded backend: tokens per second, clawbridge vs node-llama-cpp directly`,
      "",
      `Measured ${new Date().toISOString().slice(0, 10)}; ${result.model}; ${opts.threads} thread(s), context ${CONTEXT}, ${opts.tokens} tokens asked, ${warmup} unmeasured warm-up request(s) of the same size per side, ${opts.rounds} rounds alternating, each side's tokens over its time.`,
      "",
      "| | tokens/s (request → last token) | decode tokens/s (first → last) |",
      "| --- | ---: | ---: |",
      `| node-llama-cpp directly | ${d.tokPerS.toFixed(0)} | ${d.decodeTokPerS.toFixed(0)} |`,
      `| the embedded backend alone (its worker thread, in the harness process, no HTTP) | ${b.tokPerS.toFixed(0)} (${(b.tokPerS / d.tokPerS).toFixed(3)}×) | ${b.decodeTokPerS.toFixed(0)} (${(b.decodeTokPerS / d.decodeTokPerS).toFixed(3)}×) |`,
      `| through clawbridge (its own process, OpenAI dialect over HTTP, streamed) | ${c.tokPerS.toFixed(0)} (${result.ratio.toFixed(3)}×) | ${c.decodeTokPerS.toFixed(0)} (${result.decodeRatio.toFixed(3)}×) |`,
      "",
      ...notes.map((n) => `- ${n}`),
      "",
    ].join("\n"),
  );
  return result;
}

export function printEmbeddedResult(r: EmbeddedBenchResult): void {
  process.stdout.write(
    `direct ${r.direct.tokPerS.toFixed(0)} tok/s (decode ${r.direct.decodeTokPerS.toFixed(0)}), backend alone ${r.backend.tokPerS.toFixed(0)} (${(r.backend.tokPerS / r.direct.tokPerS).toFixed(3)}×), clawbridge ${r.clawbridge.tokPerS.toFixed(0)} tok/s (decode ${r.clawbridge.decodeTokPerS.toFixed(0)}): ${r.ratio.toFixed(3)}× (target ≥ 0.95) ${r.ok ? "met" : "NOT MET"}\n`,
  );
  for (const n of r.notes) process.stdout.write(`  note: ${n}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const cliAt = process.argv.indexOf("--clawbridge");
  runEmbeddedBench({
    rounds: arg("--rounds", 6),
    tokens: arg("--tokens", 1000),
    warmup: arg("--warmup", 1),
    threads: arg("--threads", 1),
    clawbridgeCli: cliAt > 0 ? resolve(process.argv[cliAt + 1]!) : join(ROOT, "dist", "cli", "main.js"),
  }).then(
    (r) => {
      printEmbeddedResult(r);
      process.exit(r.ok ? 0 : 1);
    },
    (e: unknown) => {
      process.stderr.write(`bench/embedded: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
