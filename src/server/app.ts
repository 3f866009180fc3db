import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Dispatcher } from "../backends/http/client.js";
import type { GatewayConfig } from "../config/types.js";
import { GatewayError } from "../ir/errors.js";
import { frozenHeight } from "../ir/frozen.js";
import type { Logger } from "../log.js";
import { redact } from "../redact.js";
import { LANES } from "../routing/queue.js";
import { Router } from "../routing/router.js";
import { anthropicSurface } from "../surfaces/anthropic/index.js";
import { openaiSurface } from "../surfaces/openai/index.js";
import type { Surface } from "../surfaces/types.js";
import { isLoopback, keyMatches, presentedKey } from "./auth.js";
import { type HandlerDeps, handleGeneration, sendError } from "./handler.js";
import { Metrics, renderGauge } from "./metrics.js";
import { originGuard } from "./origin.js";
import { BodyParser, text } from "./parse-cache.js";

export interface AppOptions {
  config: GatewayConfig;
  dispatcher: Dispatcher;
  log: Logger;
  keepAliveAfterMs?: number;
  pingIntervalMs?: number;
  /** Lines for /health when nothing is configured: how to add a backend. */
  hints?: string[];
}

export interface Gateway {
  server: http.Server;
  router: Router;
  metrics: Metrics;
  /** Listens; resolves with the base URL. */
  listen(host: string, port: number): Promise<string>;
  /** Stops accepting; answers in flight get `graceMs` to finish before their sockets are closed. */
  close(graceMs?: number): Promise<void>;
}

type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  body: unknown,
  bodyBytes: number,
) => void | Promise<void>;

interface Route {
  handler: Handler;
  /** Whether the route reads a JSON body. */
  body: boolean;
}

/** Which dialect an error on this request should be in. */
function surfaceFor(req: IncomingMessage): Surface {
  const url = req.url ?? "";
  if (url.startsWith("/v1/messages") || url.startsWith("/messages")) return anthropicSurface;
  if (url.startsWith("/v1/chat") || url.startsWith("/chat")) return openaiSurface;
  return req.headers["anthropic-version"] ? anthropicSurface : openaiSurface;
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  contentType = "application/json",
): void {
  const body = typeof value === "string" ? value : JSON.stringify(value);
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The HTTP server: Node's own. The gateway has a handful of routes, and every one of them
 * streams; a framework would add memory and a layer between us and the socket for nothing.
 */
export function buildGateway(opts: AppOptions): Gateway {
  const { config, log } = opts;
  if (!config.server.masterKey && !isLoopback(config.server.host)) {
    throw new GatewayError(
      "invalid_request",
      `refusing to listen on ${config.server.host} without a master key: set server.master_key (or CLAWBRIDGE_MASTER_KEY), or listen on 127.0.0.1`,
    );
  }
  const router = new Router(config, opts.dispatcher, log);
  const metrics = new Metrics();
  metrics.gauges.push(() => resilienceGauges(router));
  const deps: HandlerDeps = {
    router,
    metrics,
    log,
    // a second: fast failures stay real HTTP errors; a slow backend (loading) gets its stream opened
    keepAliveAfterMs: opts.keepAliveAfterMs ?? 1000,
    pingIntervalMs: opts.pingIntervalMs ?? 10_000,
    answerLimitChars: config.server.answerLimitChars,
  };
  const limit = config.server.bodyLimitBytes;
  // agents resend their conversation every turn: what a body shares with the last ones is not parsed again
  const bodies = new BodyParser();
  const key = config.server.masterKey;

  const generation =
    (surface: Surface): Handler =>
    (_req, res, body, bodyBytes) =>
      handleGeneration(surface, body, bodyBytes, res, deps);

  const countTokens: Handler = async (_req, res, body) => {
    // count_tokens takes a Messages request without max_tokens
    const decoded = anthropicSurface.decode(
      body && typeof body === "object" && !Array.isArray(body) ? { max_tokens: 1, ...body } : body,
    );
    // as the model's first target would be sent it: counted by its server where it can
    const count = await router.countTokens(decoded, log);
    sendJson(res, 200, { input_tokens: count.tokens });
  };

  const models: Handler = (req, res) => {
    const served = router.models();
    if (req.headers["anthropic-version"]) {
      const data = served.map((m) => ({
        type: "model",
        id: m.id,
        display_name: m.id,
        created_at: "1970-01-01T00:00:00Z",
      }));
      return sendJson(res, 200, {
        data,
        has_more: false,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
      });
    }
    sendJson(res, 200, {
      object: "list",
      data: served.map((m) => ({
        id: m.id,
        object: "model",
        created: 0,
        owned_by: `clawbridge/${m.backend}`,
        ...(m.contextWindow ? { context_window: m.contextWindow } : {}),
      })),
    });
  };

  const health: Handler = (req, res) => {
    // without the key, only that the gateway is up: the rest names backends, addresses and the config
    if (key && !keyMatches(presentedKey(req.headers), key)) return sendJson(res, 200, { status: "ok" });
    const backends = [...router.backends.values()].map((b) => {
      const d = router.discovered.get(b.name);
      return {
        name: b.name,
        kind: b.kind,
        url: redact(b.baseUrl),
        status: d === undefined ? "unknown" : d instanceof GatewayError ? "unreachable" : "ok",
        ...(d instanceof GatewayError ? { error: redact(d.message) } : {}),
        ...resilienceHealth(router, b.name),
      };
    });
    const body: Record<string, unknown> = {
      status: backends.length ? "ok" : "no_backends",
      config: config.source,
      backends,
      models: router.models().map((m) => m.id),
    };
    if (!backends.length) {
      body.hint = opts.hints ?? [
        "No backend is configured and none was found on the default local ports.",
        "Start Ollama (ollama serve) or llama.cpp (llama-server), or write a config file and run clawbridge serve --config FILE.",
      ];
    }
    sendJson(res, 200, body);
  };

  const routes = new Map<string, Route>();
  for (const prefix of ["/v1", ""]) {
    routes.set(`POST ${prefix}/messages`, { handler: generation(anthropicSurface), body: true });
    routes.set(`POST ${prefix}/chat/completions`, { handler: generation(openaiSurface), body: true });
    routes.set(`POST ${prefix}/messages/count_tokens`, { handler: countTokens, body: true });
    routes.set(`GET ${prefix}/models`, { handler: models, body: false });
  }
  routes.set("GET /health", { handler: health, body: false });
  routes.set("GET /metrics", {
    handler: (_q, res) => sendJson(res, 200, metrics.render(), metrics.contentType),
    body: false,
  });

  const fail = (req: IncomingMessage, res: ServerResponse, err: GatewayError) =>
    sendError(surfaceFor(req), res, err, deps, "invalid");

  // web pages: which origins may call, which names a loopback gateway answers to (origin.ts)
  const guard = originGuard(config.server);

  const server = http.createServer((req, res) => {
    const verdict = guard(req, res);
    if (verdict !== undefined) {
      req.resume();
      if (verdict instanceof GatewayError) {
        log.warn({ origin: req.headers.origin, host: req.headers.host, url: req.url }, verdict.message);
        fail(req, res, verdict);
      }
      return;
    }
    const path = (req.url ?? "/").split("?")[0]!;
    const route = routes.get(`${req.method} ${path}`);
    if (key && path !== "/health") {
      const presented = presentedKey(req.headers);
      if (!keyMatches(presented, key)) {
        req.resume();
        return fail(
          req,
          res,
          new GatewayError(
            "authentication",
            presented === undefined
              ? "no API key: send the clawbridge master key as x-api-key or Authorization: Bearer"
              : "invalid API key",
          ),
        );
      }
    }
    if (!route) {
      req.resume();
      return fail(req, res, new GatewayError("not_found", `no route for ${req.method} ${path}`));
    }
    const run = (body: unknown, bodyBytes = 0) => {
      Promise.resolve()
        .then(() => route.handler(req, res, body, bodyBytes))
        .catch((e: unknown) => {
          if (e instanceof GatewayError) return fail(req, res, e);
          log.error({ err: e }, "unhandled error");
          fail(req, res, new GatewayError("api_error", `internal error: ${(e as Error)?.message ?? e}`));
        });
    };
    if (!route.body) {
      req.resume();
      return run(undefined);
    }
    readBody(req, limit).then(
      (bytes) => {
        let body: unknown;
        try {
          body = bodies.parse(bytes);
        } catch (e) {
          if (text(bytes, 0).trim() === "")
            return fail(
              req,
              res,
              new GatewayError("invalid_request", "the request body is empty; expected a JSON object"),
            );
          return fail(
            req,
            res,
            new GatewayError(
              "invalid_request",
              `the request body is not valid JSON: ${(e as Error).message}`,
            ),
          );
        }
        if (nestingDepth(body, MAX_DEPTH) > MAX_DEPTH) {
          return fail(
            req,
            res,
            new GatewayError("invalid_request", `the request body is nested deeper than ${MAX_DEPTH} levels`),
          );
        }
        run(body, bytes.length);
      },
      (e: unknown) => {
        if (e instanceof GatewayError) {
          // The rest of an oversized body is not read: close the connection after answering.
          res.setHeader("connection", "close");
          fail(req, res, e);
          res.on("finish", () => req.destroy());
        } else req.destroy();
      },
    );
  });
  // Local generations run for minutes: no server-side time limit on a request.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;

  return {
    server,
    router,
    metrics,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const a = server.address() as AddressInfo;
          resolve(`http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`);
        });
      }),
    close: (graceMs = 0) =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
      }),
  };
}

/** A backend's queue and circuit in /health: how many run and wait, whether it is failing. */
function resilienceHealth(router: Router, name: string): Record<string, unknown> {
  const r = router.resilience(name);
  if (!r) return {};
  const { queue, breaker } = r;
  return {
    queue: {
      running: queue.active,
      limit: queue.limit || null,
      waiting: { foreground: queue.waiting("foreground"), background: queue.waiting("background") },
      max_queue: queue.maxQueue,
    },
    circuit: breaker.state,
    ...(breaker.failures ? { failures_in_a_row: breaker.failures } : {}),
    ...(breaker.lastError && breaker.state !== "closed"
      ? { last_failure: redact(breaker.lastError.message) }
      : {}),
    ...(breaker.suspect ? { suspect: true } : {}),
  };
}

/** Queue depths, places in use and circuit states, read when /metrics is asked. */
function resilienceGauges(router: Router): string {
  const running: Array<[Record<string, string>, number]> = [];
  const limits: Array<[Record<string, string>, number]> = [];
  const waiting: Array<[Record<string, string>, number]> = [];
  const open: Array<[Record<string, string>, number]> = [];
  for (const name of router.backends.keys()) {
    const r = router.resilience(name);
    if (!r) continue;
    running.push([{ backend: name }, r.queue.active]);
    limits.push([{ backend: name }, r.queue.limit]);
    for (const lane of LANES) waiting.push([{ backend: name, lane }, r.queue.waiting(lane)]);
    const state = r.breaker.state;
    open.push([{ backend: name }, state === "open" ? 1 : state === "half_open" ? 0.5 : 0]);
  }
  return (
    renderGauge("clawbridge_backend_running", "Requests running at a backend now", running) +
    renderGauge("clawbridge_backend_slots", "Requests a backend serves at once (0: no limit)", limits) +
    renderGauge("clawbridge_queue_depth", "Requests waiting for a place at a backend, by lane", waiting) +
    renderGauge("clawbridge_circuit_open", "A backend's circuit: 0 closed, 0.5 half-open, 1 open", open)
  );
}

/**
 * Reads a request body, refusing more than `limit` bytes with a 413. The bytes go into one buffer
 * as they come (sized from content-length when the client sent one), and nothing of them stays
 * referenced from the request once it has been read.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () =>
      new GatewayError("request_too_large", `request body is larger than the limit of ${formatBytes(limit)}`);
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) {
      reject(tooLarge());
      return;
    }
    let buf: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    const onData = (c: Buffer) => {
      if (size + c.length > limit) {
        done();
        req.pause();
        reject(tooLarge());
        return;
      }
      // the whole body's room at the first bytes (not before: a client that sends nothing costs nothing)
      if (size === 0 && declared > c.length && declared <= PREALLOCATE_UP_TO)
        buf = Buffer.allocUnsafe(declared);
      if (buf && size + c.length <= buf.length) buf.set(c, size);
      else if (size === 0 && !chunks) chunks = [c];
      else {
        // no length said, or more came than it said
        chunks ??= buf ? [buf.subarray(0, size)] : [];
        buf = undefined;
        chunks.push(c);
      }
      size += c.length;
    };
    const onEnd = () => {
      const bytes = buf
        ? buf.subarray(0, size)
        : !chunks
          ? Buffer.alloc(0)
          : chunks.length === 1
            ? chunks[0]!
            : Buffer.concat(chunks, size);
      done();
      resolve(bytes);
    };
    const onError = (e: unknown) => {
      done();
      reject(e);
    };
    const done = () => {
      // Nothing of this read may stay reachable from the request, which lives as long as its
      // answer: a listener left here would hold the promise, and the promise the body.
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      // an error after this is answered already, and must not throw
      req.on("error", ignore);
      buf = undefined;
      chunks = undefined;
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

function ignore(): void {}

/** A body that says its length up to this size is read into one buffer of that size. */
const PREALLOCATE_UP_TO = 8 * 1024 * 1024;

/** JSON nested deeper than this is refused: no real request comes near, and recursion over it would not end well. */
const MAX_DEPTH = 128;

/**
 * How deep a parsed JSON value nests; stops counting past `stopAt`. Recursive, but never more
 * than `stopAt` + 1 calls deep; only objects and arrays are visited.
 */
export function nestingDepth(value: unknown, stopAt: number): number {
  return value !== null && typeof value === "object" ? depthOf(value, 1, stopAt) : 0;
}

function depthOf(v: object, d: number, stopAt: number): number {
  if (d > stopAt) return d;
  // a part taken from an earlier body: its height is known
  const h = frozenHeight(v);
  if (h !== undefined) return d - 1 + h;
  let max = d;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (x !== null && typeof x === "object") {
        const m = depthOf(x, d + 1, stopAt);
        if (m > max) {
          if (m > stopAt) return m;
          max = m;
        }
      }
    }
  } else {
    for (const k in v) {
      const x: unknown = (v as Record<string, unknown>)[k];
      if (x !== null && typeof x === "object") {
        const m = depthOf(x, d + 1, stopAt);
        if (m > max) {
          if (m > stopAt) return m;
          max = m;
        }
      }
    }
  }
  return max;
}

function formatBytes(n: number): string {
  const mb = n / 1024 / 1024;
  if (mb >= 1) return `${Number.isInteger(mb) ? mb : mb.toFixed(2)} MB`;
  return n >= 1024 ? `${(n / 1024).toFixed(n % 1024 ? 1 : 0)} KB` : `${n} bytes`;
}
