/**
 * The dashboard: the page at `/`, its script and style (built from ui/ into dist/ui/ by
 * scripts/build.mjs, served from the package: nothing from elsewhere), and what it reads:
 *
 * - `GET /_dashboard/api/state` — backends and their health, models and their windows, queues and lanes;
 * - `GET /_dashboard/api/requests?model=&status=&client=&limit=` — recent requests (the journal's, or
 *   the last ones of this run when there is no journal), with each failure explained;
 * - `GET /_dashboard/api/requests/{id}` — one request in full (bodies when captured);
 * - `GET /_dashboard/events` — an event stream: `snapshot` (the requests in flight), then `update` (one
 *   started or changed phase) and `done` (one finished, its entry).
 *
 * With a master key, every one of them answers only a caller with the key: as `x-api-key`/Bearer, or
 * the cookie that `/?key=KEY` sets (an HMAC of the key, HttpOnly, SameSite=Strict: another site's page
 * never sends it). A caller without it gets the login form and nothing else. All are GETs from the
 * page's own origin, so the origin guard (origin.ts) lets them through as it lets any same-origin read.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { kindOf, listedAs } from "../../backends/registry.js";
import { explainFailure } from "../../doctor/explain.js";
import type { RequestEntry } from "../../journal/entry.js";
import type { RequestFeed } from "../../journal/feed.js";
import { redact } from "../../redact.js";
import { keyMatches, presentedKey } from "../auth.js";
import { sendJson } from "../answer.js";
import type { Handler, RouteContext } from "./route.js";

/** Where the dashboard's own requests go: none of them is a request line or a journal entry. */
export const DASHBOARD_PREFIX = "/_dashboard/";
const COOKIE = "clawbridge_dashboard";
/** Entries of this run kept in memory: what a gateway without a journal lists, and the newest before the journal has them. */
const RECENT = 500;
/** Of those, the last ones kept with their bodies (captured bodies can be large). */
const RECENT_FULL = 20;
/** How often an event stream sends a comment to keep proxies from closing it. */
const KEEPALIVE_MS = 15_000;

/** Whether a path is the dashboard's (the page or what it reads). */
export function isDashboardPath(path: string): boolean {
  return path === "/" || path === FAVICON || path.startsWith(DASHBOARD_PREFIX);
}
/** What a browser asks of every site: answered with nothing (not a 401 in the log each time). */
const FAVICON = "/favicon.ico";

/**
 * The finished requests of this run, newest last, kept per feed (one per gateway, across reloads):
 * `list` without their bodies; `full`, the last few with them, for a detail asked for before the
 * journal has written it (it writes every tenth of a second) or when there is no journal.
 */
interface Recent {
  list: RequestEntry[];
  full: RequestEntry[];
}
const recentByFeed = new WeakMap<RequestFeed, Recent>();
function recentOf(feed: RequestFeed): Recent {
  let kept = recentByFeed.get(feed);
  if (!kept) {
    const r: Recent = { list: [], full: [] };
    kept = r;
    recentByFeed.set(feed, r);
    feed.on("done", (e) => {
      const { bodies: _bodies, ...bare } = e;
      r.list.push(bare);
      if (r.list.length > RECENT) r.list.splice(0, r.list.length - RECENT);
      r.full.push(e);
      if (r.full.length > RECENT_FULL) r.full.shift();
    });
  }
  return kept;
}

/** The cookie's value for a key: not the key itself. */
function tokenFor(key: string): string {
  return createHmac("sha256", key).update("clawbridge dashboard").digest("hex");
}

function cookieOf(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const [name, ...v] = part.trim().split("=");
    if (name === COOKIE) return v.join("=");
  }
  return undefined;
}

function authorized(req: IncomingMessage, key: string | undefined): boolean {
  if (!key) return true;
  if (keyMatches(presentedKey(req.headers), key)) return true;
  const c = cookieOf(req);
  if (c === undefined) return false;
  const a = Buffer.from(c);
  const b = Buffer.from(tokenFor(key));
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The package's root: the folder above this module with a package.json (src/… under tsx, dist/cli/ bundled). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  return dirname(fileURLToPath(import.meta.url));
}

const ASSETS: Record<string, string> = {
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};
const assetCache = new Map<string, Buffer>();
function asset(name: string): Buffer | undefined {
  const hit = assetCache.get(name);
  if (hit) return hit;
  const file = join(packageRoot(), "dist", "ui", name);
  if (!existsSync(file)) return undefined;
  const body = readFileSync(file);
  assetCache.set(name, body);
  return body;
}

const SECURITY_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

function html(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>clawbridge</title><link rel="stylesheet" href="/_dashboard/app.css"></head>
<body><div id="app"></div><script src="/_dashboard/app.js"></script></body></html>`;

const login = (wrong: boolean) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>clawbridge — sign in</title><link rel="stylesheet" href="/_dashboard/app.css"></head>
<body class="login"><form method="get" action="/" class="login-box">
<h1>clawbridge</h1><p>This gateway has a master key. Enter it to see the dashboard.</p>
${wrong ? '<p class="error" role="alert">That is not the master key.</p>' : ""}
<label>Master key <input type="password" name="key" autocomplete="current-password" autofocus required></label>
<button type="submit">Open the dashboard</button></form></body></html>`;

export const dashboard = (ctx: RouteContext): Handler => {
  const { config, router, requests } = ctx;
  const { feed, journal } = requests.opts;
  const recent = recentOf(feed);
  const key = config.server.masterKey;

  const explained = (e: RequestEntry) => {
    if (e.outcome === "ok") return e;
    const backend = e.backend ? config.backends.find((b) => b.name === e.backend) : undefined;
    const hints = backend ? kindOf(backend.kind)?.doctor : undefined;
    const why = explainFailure(e, hints, (backend?.settings ?? {}) as Record<string, unknown>);
    return why ? { ...e, explanation: why } : e;
  };

  const state = () => ({
    config: config.source,
    backends: [...router.backends.values()].map((b) => {
      const h = router.health(b.name);
      const r = router.resilience(b.name);
      return {
        name: b.name,
        kind: kindOf(b.kind)?.label ?? b.kind,
        url: redact(b.baseUrl),
        state: h?.state ?? "up",
        since: (h?.since ?? new Date()).toISOString(),
        ...(h?.reason ? { reason: redact(h.reason) } : {}),
        listed: h?.models ?? null,
        gone: h?.gone ?? [],
        ...(r
          ? {
              queue: {
                running: r.queue.active,
                limit: r.queue.limit || null,
                waiting: {
                  foreground: r.queue.waiting("foreground"),
                  background: r.queue.waiting("background"),
                },
                maxQueue: r.queue.maxQueue,
              },
              circuit: r.breaker.state,
              failures: r.breaker.failures,
              ...(r.breaker.suspect ? { suspect: true } : {}),
            }
          : {}),
      };
    }),
    models: router
      .models()
      .filter((m) => m.id !== "*")
      .map((m) => {
        const found = router.discovered.get(m.backend);
        const kind = router.backends.get(m.backend)?.kind ?? "";
        const names = listedAs(kind, m.model);
        return {
          id: m.id,
          backend: m.backend,
          model: m.model,
          source: m.source,
          contextWindow: m.contextWindow ?? null,
          windowFrom: m.context?.why ?? null,
          // available now: its backend is not down and listed it at its last answer
          loaded:
            router.health(m.backend)?.state !== "down" &&
            Array.isArray(found) &&
            found.some((d) => names.includes(d.name)),
        };
      }),
  });

  const list = (url: URL) => {
    const model = url.searchParams.get("model") || undefined;
    const status = url.searchParams.get("status") || undefined;
    const client = url.searchParams.get("client") || undefined;
    const limit = Math.min(Math.max(Number(url.searchParams.get("limit")) || 100, 1), 1000);
    const matches = (e: RequestEntry) =>
      (!model || e.model === model) &&
      (!client || e.client.startsWith(client)) &&
      (!status ||
        (/^\d{3}$/.test(status)
          ? String(e.status) === status
          : /^\dxx$/i.test(status)
            ? e.status !== null && Math.floor(e.status / 100) === Number(status[0])
            : e.outcome === status));
    const byId = new Map<string, RequestEntry>();
    if (journal) {
      const rows = journal.list({
        limit: client ? Math.max(limit * 5, 1000) : limit,
        ...(model ? { model } : {}),
        ...(status ? { status } : {}),
      });
      for (const { seq: _seq, ...e } of rows) byId.set(e.id, e);
    }
    // the newest of this run, which the journal writes within a tenth of a second
    for (const e of recent.list) if (!byId.has(e.id)) byId.set(e.id, e);
    const all = [...byId.values()].filter(matches).sort((a, b) => a.at - b.at);
    return all.slice(-limit).map(({ bodies: _b, ...e }) => explained(e as RequestEntry));
  };

  const one = (id: string) => {
    const row = journal?.get(id);
    const e = row
      ? (({ seq: _s, ...rest }) => rest)(row)
      : (recent.full.find((x) => x.id === id) ?? recent.list.find((x) => x.id === id));
    if (!e) return undefined;
    return { ...explained(e as RequestEntry), captureOn: requests.capture };
  };

  const events = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "text/event-stream",
      connection: "keep-alive",
    });
    const send = (event: string, data: unknown) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const onUpdate = (r: unknown) => send("update", r);
    const onDone = (e: RequestEntry) => {
      const { bodies: _b, ...rest } = e;
      send("done", explained(rest as RequestEntry));
    };
    send("snapshot", feed.inFlight());
    feed.on("update", onUpdate);
    feed.on("done", onDone);
    const ping = setInterval(() => res.write(": keep-alive\n\n"), KEEPALIVE_MS);
    ping.unref();
    const stop = () => {
      clearInterval(ping);
      feed.off("update", onUpdate);
      feed.off("done", onDone);
    };
    req.once("close", stop);
    res.once("close", stop);
  };

  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://gateway");
    const path = url.pathname;
    if (path.startsWith(`${DASHBOARD_PREFIX}`) && path.slice(DASHBOARD_PREFIX.length) in ASSETS) {
      // the script and style hold nothing of the gateway's: the login form needs the style
      const name = path.slice(DASHBOARD_PREFIX.length);
      const body = asset(name);
      if (!body) return sendJson(res, 500, { error: "the dashboard is not built: run `npm run build`" });
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": ASSETS[name]!,
        "content-length": body.length,
      });
      res.end(body);
      return;
    }
    if (path === FAVICON) {
      res.writeHead(204, { "cache-control": "max-age=86400" });
      res.end();
      return;
    }
    if (path === "/") {
      const given = url.searchParams.get("key");
      if (key && given !== null) {
        if (!keyMatches(given, key)) return html(res, 401, login(true));
        // the key leaves the address: the page is loaded again without it, with the cookie
        res.writeHead(303, {
          ...SECURITY_HEADERS,
          location: "/",
          "set-cookie": `${COOKIE}=${tokenFor(key)}; Path=/; HttpOnly; SameSite=Strict`,
          "content-length": 0,
        });
        res.end();
        return;
      }
      if (!authorized(req, key)) return html(res, 401, login(false));
      return html(res, 200, PAGE);
    }
    if (!authorized(req, key)) return sendJson(res, 401, { error: "the dashboard needs the master key" });
    if (path === `${DASHBOARD_PREFIX}events`) return events(req, res);
    if (path === `${DASHBOARD_PREFIX}api/state`) return sendJson(res, 200, state());
    if (path === `${DASHBOARD_PREFIX}api/requests`) return sendJson(res, 200, { requests: list(url) });
    const m = /^\/_dashboard\/api\/requests\/([A-Za-z0-9_-]+)$/.exec(path);
    if (m) {
      const e = one(m[1]!);
      const live = e ? undefined : feed.inFlight().find((r) => r.id === m[1]);
      if (e) return sendJson(res, 200, e);
      if (live) return sendJson(res, 200, { ...live, inFlight: true });
      return sendJson(res, 404, { error: `no request ${m[1]}` });
    }
    sendJson(res, 404, { error: `no dashboard page ${path}` });
  };
};
