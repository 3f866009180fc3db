// A closed-loop load generator on undici: `concurrency` workers, each sending the same request back to back
// over its own keep-alive connection until the duration or the request count runs out.
//
// Per request it records the total latency (request sent → last body byte) and, for streams, the time to
// the first body byte. A request counts as a failure when its status is not 200, when it errors or times
// out, when a stream does not end with its terminator (`[DONE]` / `message_stop`), or when a non-streaming
// body lacks the expected text (or pattern).
//
//   node --import tsx bench/load.ts --url http://127.0.0.1:8080/v1/chat/completions --body-file body.json \
//     [--header 'k: v']... [-c 8] [-d 5] [--max 100000] [--warmup 1] [--stream] [--terminator '[DONE]']

import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import type { Dispatcher } from "undici";
import { Pool } from "undici";

export interface LoadOptions {
  url: string;
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string | Buffer;
  concurrency: number;
  /** measured phase, milliseconds */
  durationMs: number;
  /** stop the measured phase after this many requests in all (default 1,000,000) */
  maxRequests?: number;
  /** unmeasured warm-up before the measured phase, milliseconds (default 0) */
  warmupMs?: number;
  /** the response is an event stream; check it ends with `terminator` */
  stream?: boolean;
  /** text a stream's last bytes must contain: "[DONE]" or "message_stop" */
  terminator?: string;
  /** what a non-streaming body must contain (a string, or a pattern) */
  expect?: string | RegExp;
  /** per-request limit on headers and on gaps between body chunks, milliseconds (default 30,000) */
  requestTimeoutMs?: number;
  /** return the per-request figures too (LoadResult.raw), e.g. to merge rounds with mergeResults */
  keepRaw?: boolean;
  /** awaited between the warm-up and the measured phase (e.g. to read counters) */
  onMeasureStart?: () => void | Promise<void>;
  /** called every time a request finishes (cheap hooks only) */
  onResult?: (ok: boolean) => void;
}

export interface Summary {
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
}

export interface LoadResult {
  url: string;
  concurrency: number;
  /** requests finished in the measured phase */
  requests: number;
  ok: number;
  failed: number;
  /** failure reason → count (at most 20 reasons, the rest counted under "other") */
  failures: Record<string, number>;
  /** first few failure details, for diagnosis */
  samples: string[];
  elapsedS: number;
  /** successful requests per second */
  rps: number;
  /** total latency of successful requests, milliseconds */
  latencyMs: Summary;
  /** time to first body byte of successful requests, milliseconds */
  ttfbMs: Summary;
  /** average response body size, bytes */
  bytesPerResponse: number;
  /** average count of `data:` lines per stream (0 for non-streams) */
  eventsPerResponse: number;
  /** per successful request, when asked for with keepRaw */
  raw?: { latencyMs: number[]; ttfbMs: number[] };
}

const DATA = Buffer.from("data:");
const TAIL_BYTES = 128;

interface One {
  ok: boolean;
  reason?: string;
  detail?: string;
  totalMs: number;
  ttfbMs: number;
  bytes: number;
  events: number;
}

function countData(chunk: Buffer, carry: Buffer | null): number {
  let n = 0;
  if (carry && carry.length > 0) {
    // an occurrence split across the previous chunk and this one
    const joined = Buffer.concat([carry.subarray(-(DATA.length - 1)), chunk.subarray(0, DATA.length - 1)]);
    if (joined.indexOf(DATA) >= 0) n++;
  }
  let i = chunk.indexOf(DATA);
  while (i >= 0) {
    n++;
    i = chunk.indexOf(DATA, i + DATA.length);
  }
  return n;
}

function oneRequest(
  pool: Pool,
  opts: Dispatcher.DispatchOptions,
  stream: boolean,
  terminator: string,
  expect: string | RegExp | undefined,
  signal: AbortSignal,
): Promise<One> {
  return new Promise<One>((resolve) => {
    const start = performance.now();
    let ttfb = -1;
    let status = 0;
    let bytes = 0;
    let events = 0;
    let tail: Buffer = Buffer.alloc(0);
    const whole: Buffer[] = [];
    let settled = false;
    let controller: Dispatcher.DispatchController | undefined;
    const finish = (one: Omit<One, "totalMs" | "ttfbMs" | "bytes" | "events">): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      const now = performance.now();
      resolve({ ...one, totalMs: now - start, ttfbMs: ttfb < 0 ? now - start : ttfb, bytes, events });
    };
    const onAbort = (): void => {
      controller?.abort(new Error("aborted at the scenario deadline"));
      finish({ ok: false, reason: "aborted" });
    };
    if (signal.aborted) {
      finish({ ok: false, reason: "aborted" });
      return;
    }
    signal.addEventListener("abort", onAbort);
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(_c, statusCode) {
        status = statusCode;
      },
      onResponseData(_c, chunk) {
        if (ttfb < 0) ttfb = performance.now() - start;
        if (stream) {
          events += countData(chunk, tail);
          tail =
            chunk.length >= TAIL_BYTES
              ? chunk.subarray(chunk.length - TAIL_BYTES)
              : Buffer.concat([tail, chunk]).subarray(-TAIL_BYTES);
          if (status !== 200 && bytes < 4096) whole.push(chunk);
        } else {
          whole.push(chunk);
        }
        bytes += chunk.length;
      },
      onResponseEnd() {
        if (status !== 200) {
          const text = Buffer.concat(whole.length > 0 ? whole : [tail]).toString("utf8");
          finish({ ok: false, reason: `status ${status}`, detail: text.slice(0, 300) });
        } else if (stream && !tail.toString("utf8").includes(terminator)) {
          finish({
            ok: false,
            reason: "stream ended without terminator",
            detail: tail.toString("utf8").slice(-120),
          });
        } else if (
          !stream &&
          expect !== undefined &&
          !matches(Buffer.concat(whole).toString("utf8"), expect)
        ) {
          finish({
            ok: false,
            reason: "body lacks expected text",
            detail: Buffer.concat(whole).toString("utf8").slice(0, 300),
          });
        } else if (bytes === 0) {
          finish({ ok: false, reason: "empty body" });
        } else {
          finish({ ok: true });
        }
      },
      onResponseError(_c, err) {
        const code = (err as { code?: string }).code;
        finish({ ok: false, reason: `error ${code ?? err.name}`, detail: err.message });
      },
    };
    try {
      pool.dispatch(opts, handler);
    } catch (err) {
      finish({ ok: false, reason: "dispatch threw", detail: String(err) });
    }
  });
}

function matches(text: string, expect: string | RegExp): boolean {
  return typeof expect === "string" ? text.includes(expect) : expect.test(text);
}

function summarize(values: number[]): Summary {
  const n = values.length;
  if (n === 0) return { p50: 0, p90: 0, p99: 0, mean: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: sum / n, max: sorted[n - 1]! };
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const url = new URL(o.url);
  const maxRequests = o.maxRequests ?? 1_000_000;
  const timeout = o.requestTimeoutMs ?? 30_000;
  const stream = o.stream ?? false;
  const terminator = o.terminator ?? "[DONE]";
  const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body);
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (body && !Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) {
    headers["content-type"] = "application/json";
  }
  const dispatchOpts: Dispatcher.DispatchOptions = {
    path: `${url.pathname}${url.search}`,
    method: o.method ?? (body ? "POST" : "GET"),
    headers,
    body: body ?? null,
    headersTimeout: timeout,
    bodyTimeout: timeout,
    blocking: true,
  };
  const pool = new Pool(url.origin, {
    connections: o.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });

  const latencies: number[] = [];
  const ttfbs: number[] = [];
  let requests = 0;
  let ok = 0;
  let bytes = 0;
  let events = 0;
  const failures: Record<string, number> = {};
  const samples: string[] = [];

  const phase = async (ms: number, measured: boolean): Promise<number> => {
    const t0 = performance.now();
    const deadline = t0 + ms;
    // hard stop for stragglers: the phase plus one request timeout
    const abort = AbortSignal.timeout(ms + timeout + 1000);
    setMaxListeners(o.concurrency + 16, abort);
    const worker = async (): Promise<void> => {
      while (performance.now() < deadline && !abort.aborted) {
        if (measured) {
          if (requests >= maxRequests) return;
          requests++;
        }
        const r = await oneRequest(pool, dispatchOpts, stream, terminator, o.expect, abort);
        o.onResult?.(r.ok);
        if (!measured) continue;
        if (r.ok) {
          latencies.push(r.totalMs);
          ttfbs.push(r.ttfbMs);
          ok++;
          bytes += r.bytes;
          events += r.events;
        } else {
          const reason = r.reason ?? "unknown";
          const key = reason in failures || Object.keys(failures).length < 20 ? reason : "other";
          failures[key] = (failures[key] ?? 0) + 1;
          if (samples.length < 5) samples.push(`${reason}${r.detail ? `: ${r.detail}` : ""}`);
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    return (performance.now() - t0) / 1000;
  };

  try {
    if (o.warmupMs && o.warmupMs > 0) await phase(o.warmupMs, false);
    await o.onMeasureStart?.();
    const elapsedS = await phase(o.durationMs, true);
    return {
      url: o.url,
      concurrency: o.concurrency,
      requests,
      ok,
      failed: requests - ok,
      failures,
      samples,
      elapsedS,
      rps: elapsedS > 0 ? ok / elapsedS : 0,
      latencyMs: summarize(latencies),
      ttfbMs: summarize(ttfbs),
      bytesPerResponse: ok > 0 ? bytes / ok : 0,
      eventsPerResponse: ok > 0 ? events / ok : 0,
      ...(o.keepRaw ? { raw: { latencyMs: latencies, ttfbMs: ttfbs } } : {}),
    };
  } finally {
    await pool.destroy().catch(() => undefined);
  }
}

/**
 * One result from several runs of the same load (rounds): counts and time add up, percentiles come from
 * all the requests together, so every input needs `raw` (keepRaw). The merged result keeps no `raw`.
 */
export function mergeResults(results: LoadResult[]): LoadResult {
  const first = results[0];
  if (!first) throw new Error("mergeResults: nothing to merge");
  if (results.length === 1) {
    const { raw: _raw, ...rest } = first;
    return rest;
  }
  const latencies: number[] = [];
  const ttfbs: number[] = [];
  const failures: Record<string, number> = {};
  const samples: string[] = [];
  let requests = 0;
  let ok = 0;
  let elapsedS = 0;
  let bytes = 0;
  let events = 0;
  for (const r of results) {
    if (!r.raw) throw new Error("mergeResults: run with keepRaw");
    latencies.push(...r.raw.latencyMs);
    ttfbs.push(...r.raw.ttfbMs);
    requests += r.requests;
    ok += r.ok;
    elapsedS += r.elapsedS;
    bytes += r.bytesPerResponse * r.ok;
    events += r.eventsPerResponse * r.ok;
    for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
    for (const s of r.samples) if (samples.length < 5) samples.push(s);
  }
  return {
    url: first.url,
    concurrency: first.concurrency,
    requests,
    ok,
    failed: requests - ok,
    failures,
    samples,
    elapsedS,
    rps: elapsedS > 0 ? ok / elapsedS : 0,
    latencyMs: summarize(latencies),
    ttfbMs: summarize(ttfbs),
    bytesPerResponse: ok > 0 ? bytes / ok : 0,
    eventsPerResponse: ok > 0 ? events / ok : 0,
  };
}

function cli(): Promise<void> {
  const argv = process.argv.slice(2);
  const headers: Record<string, string> = {};
  const get = (names: string[]): string | undefined => {
    for (let i = 0; i < argv.length; i++) if (names.includes(argv[i]!)) return argv[i + 1];
    return undefined;
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--header") {
      const h = argv[i + 1] ?? "";
      const colon = h.indexOf(":");
      if (colon > 0) headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
    }
  }
  const url = get(["--url"]);
  if (!url) {
    process.stderr.write(
      "usage: load.ts --url URL [--body-file F] [--header 'k: v'] [-c N] [-d S] [--stream]\n",
    );
    process.exit(2);
  }
  const bodyFile = get(["--body-file"]);
  return runLoad({
    url,
    headers,
    body: bodyFile ? readFileSync(bodyFile) : undefined,
    concurrency: Number(get(["-c", "--concurrency"]) ?? "1"),
    durationMs: Number(get(["-d", "--duration"]) ?? "5") * 1000,
    maxRequests: Number(get(["--max"]) ?? "1000000"),
    warmupMs: Number(get(["--warmup"]) ?? "0") * 1000,
    stream: argv.includes("--stream"),
    terminator: get(["--terminator"]) ?? "[DONE]",
  }).then((r) => {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
