/**
 * The gateway's HTTP plumbing: the server, the origin guard and the master key, the routing table's
 * lookup, the body read within its limits and time, and errors answered in the client's dialect.
 * The routes themselves are in routes/.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Dispatcher } from "../backends/http/client.js";
import { DEFAULT_RECEIVE_TIMEOUT_MS, type GatewayConfig } from "../config/types.js";
import { GatewayError } from "../ir/errors.js";
import type { Logger } from "../log.js";
import { RequestFeed } from "../journal/feed.js";
import type { Journal } from "../journal/journal.js";
import { Router } from "../routing/router.js";
import { sendError, surfaceFor } from "./answer.js";
import { isLoopback, keyMatches, presentedKey } from "./auth.js";
import { DRAIN_AT_LEAST, ignore, parseBody, readBody } from "./body.js";
import { Metrics } from "./metrics.js";
import { originGuard } from "./origin.js";
import { BodyParser } from "./parse-cache.js";
import { RequestLog } from "./request-log.js";
import { createResponsesSurface } from "../surfaces/responses/index.js";
import { BACKED_STORE_LIMITS, ResponseStore } from "../surfaces/responses/store.js";
import { isDashboardPath } from "./routes/dashboard.js";
import { findRoute, OPEN_PATHS, type ReloadOutcome, routeTable } from "./routes/index.js";

export interface AppOptions {
  config: GatewayConfig;
  dispatcher: Dispatcher;
  log: Logger;
  keepAliveAfterMs?: number;
  pingIntervalMs?: number;
  /** Lines for /health when nothing is configured: how to add a backend. */
  hints?: string[];
  /** Where each request's entry is kept (none: the request line and the live feed only). */
  journal?: Journal | undefined;
  /** Re-reads the config file and reloads (POST /admin/reload): serve's, the same as SIGHUP. */
  reload?: () => Promise<ReloadOutcome>;
}

export interface Gateway {
  server: http.Server;
  /** The router new requests get (a reload puts a new one here; requests in flight keep theirs). */
  readonly router: Router;
  /** The config in effect. */
  readonly config: GatewayConfig;
  metrics: Metrics;
  /** Requests in flight with their phase, and each one as it ends (see journal/feed.ts). */
  feed: RequestFeed;
  journal: Journal | undefined;
  /** Listens; resolves with the base URL. */
  listen(host: string, port: number): Promise<string>;
  /** Stops accepting; answers in flight get `graceMs` to finish before their sockets are closed. */
  close(graceMs?: number): Promise<void>;
  /**
   * Takes a new config for new requests: its backends are discovered and watched, then it replaces
   * the one in effect; requests in flight finish with the router and profiles they started with.
   * Settings only a restart changes are named in `needsRestart` and kept as they were.
   */
  reload(config: GatewayConfig): Promise<{ needsRestart: string[] }>;
}

/** Server settings a reload cannot change: the socket and its limits are made once. */
const FIXED_SERVER_SETTINGS = [
  "host",
  "port",
  "bodyLimitBytes",
  "receiveTimeoutMs",
  "corsOrigins",
  "allowedHosts",
] as const;

/**
 * The HTTP server: Node's own. The gateway has a handful of routes, and every one of them
 * streams; a framework would add memory and a layer between us and the socket for nothing.
 */
export function buildGateway(opts: AppOptions): Gateway {
  const { config, log } = opts;
  const keyCheck = (c: GatewayConfig) => {
    if (!c.server.masterKey && !isLoopback(config.server.host)) {
      throw new GatewayError(
        "invalid_request",
        `refusing to listen on ${config.server.host} without a master key: set server.master_key (or CLAWBRIDGE_MASTER_KEY), or listen on 127.0.0.1`,
      );
    }
  };
  keyCheck(config);
  const metrics = new Metrics();
  const feed = new RequestFeed();
  // keys never written: those of every config the gateway has had (a reload adds the new ones)
  const secrets: string[] = [];
  const keysOf = (c: GatewayConfig) => {
    for (const k of [c.server.masterKey, ...c.backends.map((b) => b.apiKey)])
      if (k && !secrets.includes(k)) secrets.push(k);
  };
  keysOf(config);
  const requests = new RequestLog({
    log,
    metrics,
    feed,
    journal: opts.journal,
    // labels: the names the router new requests get serves (a reload's)
    servedAs: (model) => live.router.servedAs(model),
    isBackend: (name) => live.router.backends.has(name),
    secrets,
  });
  // one store of recent responses (previous_response_id) for the gateway's life, across reloads;
  // in the journal's file too where there is one, across restarts
  const backing = opts.journal?.responses;
  const responses = createResponsesSurface(
    backing ? new ResponseStore(BACKED_STORE_LIMITS, backing) : new ResponseStore(),
  );
  /** What a config makes for new requests: its router and the routes that use it. */
  const build = (c: GatewayConfig, previous?: Router) => {
    const router = new Router(c, opts.dispatcher, log, previous);
    const routes = routeTable(
      {
        config: c,
        router,
        metrics,
        requests,
        log,
        // a second: fast failures stay real HTTP errors; a slow backend (loading) gets its stream opened
        keepAliveAfterMs: opts.keepAliveAfterMs ?? 1000,
        pingIntervalMs: opts.pingIntervalMs ?? 10_000,
        answerLimitChars: c.server.answerLimitChars,
        hints: opts.hints,
        reload: opts.reload,
      },
      responses,
    );
    return { config: c, router, routes, key: c.server.masterKey };
  };
  let live = build(config);
  const limit = config.server.bodyLimitBytes;
  const receiveMs = config.server.receiveTimeoutMs ?? DEFAULT_RECEIVE_TIMEOUT_MS;
  // what of a refused body is read and thrown away before the connection is closed (see refuse)
  const drainLimit = Math.max(limit, DRAIN_AT_LEAST);
  // agents resend their conversation every turn: what a body shares with the last ones is not parsed again
  const bodies = new BodyParser();

  const fail = (req: IncomingMessage, res: ServerResponse, err: GatewayError) => {
    requests.of(req)?.failed(err);
    sendError(surfaceFor(req), res, err, log, "invalid");
  };

  /**
   * Answers a request whose body is not read (the origin, the key, the route, the size or the time
   * refused it) and closes its connection, without losing the answer to a client still sending.
   *
   * A socket closed on bytes it has not read is reset, and a client that reads its answer once it
   * has sent everything (most do) then sees the reset, not the answer: an SDK sends the whole body
   * again. So the answer goes out at once and whole (its length stated, `Connection: close`), the
   * rest of the body is read and thrown away, and the response ends (Node then closes the
   * connection) when the body has ended, after `drainLimit` more bytes, or at the deadline to
   * receive the request (by default: `receiveMs` from its headers), whichever comes first.
   */
  const refuse = (
    req: IncomingMessage,
    res: ServerResponse,
    err: GatewayError,
    deadline = performance.now() + receiveMs,
  ) => {
    const answer = surfaceFor(req).encodeError(err);
    requests.of(req)?.failed(err);
    req.on("error", ignore);
    if (res.headersSent || res.destroyed) {
      req.destroy();
      return;
    }
    res.writeHead(answer.status, {
      ...answer.headers,
      "content-length": Buffer.byteLength(answer.body),
      connection: "close",
    });
    const left = deadline - performance.now();
    if (req.complete || left <= 0) {
      res.end(answer.body);
      return;
    }
    res.write(answer.body);
    let room = drainLimit;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", end);
      req.off("close", end);
      res.end();
    };
    const onData = (c: Buffer) => {
      room -= c.length;
      if (room < 0) end();
    };
    const timer = setTimeout(end, left);
    req.on("data", onData);
    req.on("end", end);
    req.on("close", end);
    req.resume();
  };

  // web pages: which origins may call, which names a loopback gateway answers to (origin.ts)
  const guard = originGuard(config.server);

  const timeLimits: http.ServerOptions = {
    // the headers within the time to receive a request (Node answers a bare 408 and closes)
    headersTimeout: receiveMs,
    // Node's own limit on a whole request, a backstop for what the deadline below does not watch
    // (the body of a route that reads none): the headers' time and the body's. It ends with the
    // request's last byte: answers that run for minutes are not cut.
    requestTimeout: 2 * receiveMs,
    // how often Node looks at those two: a tenth of the time (its default: every 30 s)
    connectionsCheckingInterval: Math.min(30_000, Math.max(10, Math.round(receiveMs / 10))),
  };
  const server = http.createServer(timeLimits, (req, res) => {
    const trace = requests.begin(req, res, surfaceFor(req).name);
    const verdict = guard(req, res);
    if (verdict !== undefined) {
      if (verdict instanceof GatewayError) {
        log.warn({ origin: req.headers.origin, host: req.headers.host, url: req.url }, verdict.message);
        refuse(req, res, verdict);
      } else req.resume();
      return;
    }
    const path = (req.url ?? "/").split("?")[0]!;
    const { routes, key } = live;
    const route = findRoute(routes, req.method, path);
    // the dashboard asks for the key itself: a login form, or its cookie (routes/dashboard.ts)
    if (key && !OPEN_PATHS.has(path) && !isDashboardPath(path)) {
      const presented = presentedKey(req.headers);
      if (!keyMatches(presented, key)) {
        return refuse(
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
      return refuse(req, res, new GatewayError("not_found", `no route for ${req.method} ${path}`));
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
    // the body within the time to receive a request, from its headers on
    const deadline = performance.now() + receiveMs;
    readBody(req, limit, deadline, receiveMs).then(
      (bytes) => {
        let body: unknown;
        try {
          body = parseBody(bytes, bodies);
        } catch (e) {
          return fail(req, res, e as GatewayError);
        }
        if (trace.capture) trace.captureRequest(body);
        run(body, bytes.length);
      },
      (e: unknown) => {
        if (e instanceof GatewayError) refuse(req, res, e, deadline);
        else req.destroy();
      },
    );
  });
  server.keepAliveTimeout = 65_000;

  return {
    server,
    get router() {
      return live.router;
    },
    get config() {
      return live.config;
    },
    metrics,
    feed,
    journal: opts.journal,
    reload: async (next) => {
      keyCheck(next);
      const needsRestart = FIXED_SERVER_SETTINGS.filter(
        (k) => JSON.stringify(next.server[k]) !== JSON.stringify(config.server[k]),
      );
      // kept as they were: the socket is the one made at the start
      const server = next.server as Record<string, unknown>;
      for (const k of FIXED_SERVER_SETTINGS) {
        if (config.server[k] === undefined) delete server[k];
        else server[k] = config.server[k];
      }
      keysOf(next);
      const fresh = build(next, live.router);
      await fresh.router.discover();
      fresh.router.startWatching();
      const old = live;
      live = fresh;
      old.router.close();
      return { needsRestart };
    },
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
        live.router.close();
        server.close(() => resolve());
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
      }),
  };
}
