import type { IncomingMessage, ServerResponse } from "node:http";
import { isIPv4, isIPv6 } from "node:net";
import { GatewayError } from "../ir/errors.js";
import { isLoopback } from "./auth.js";

/**
 * What web pages may do with the gateway. Any page the user opens can send requests to a server on
 * the user's machine: a form or a `no-cors` fetch (a `text/plain` POST) reaches it unread, and a
 * page whose name is rebound to 127.0.0.1 (DNS rebinding) reads the answers, as its own origin.
 * Browsers say who is asking: `Origin` names the page, `Host` the name the page used for us.
 *
 * - A request with an `Origin` is answered only when that origin is in `server.cors_origins`
 *   (none by default; `*` allows every page, by explicit choice). Allowed origins get CORS
 *   headers, and their preflights (OPTIONS) are answered, so a browser client the user chose works.
 * - On a loopback bind, a request is answered only when its `Host` is a loopback name (localhost,
 *   127.x.x.x, [::1]) or one listed in `server.allowed_hosts`. Elsewhere the master key guards it.
 *
 * Clients that are not browsers send no `Origin` and address the gateway by its own name: they
 * see no difference.
 */

export interface OriginSettings {
  host: string;
  corsOrigins?: readonly string[];
  allowedHosts?: readonly string[];
}

/** The guard's verdict: go on, the answer was given (a preflight), or refuse with this error. */
export type Verdict = undefined | "answered" | GatewayError;

/** Headers of the gateway's answers that a page may read: the rest of a client's needs are safelisted. */
const EXPOSED = "retry-after";

/** How long a browser may keep a preflight's answer (Chromium caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_S = 600;

/** The checks for a gateway with these settings; run on every request before anything else. */
export function originGuard(
  settings: OriginSettings,
): (req: IncomingMessage, res: ServerResponse) => Verdict {
  const origins = new Set((settings.corsOrigins ?? []).map(normalizeOrigin));
  const anyOrigin = origins.has("*");
  const hosts = new Set((settings.allowedHosts ?? []).map((h) => h.toLowerCase().replace(/\.$/, "")));
  const checkHost = isLoopback(settings.host) && !hosts.has("*");

  return (req, res) => {
    if (checkHost) {
      const host = req.headers.host;
      if (host !== undefined && !hostAllowed(host, hosts)) return hostRefused(host);
    }
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    const normalized = origin.toLowerCase();
    if (!anyOrigin && !origins.has(normalized)) return originRefused(origin);
    res.setHeader("access-control-allow-origin", origin);
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (!preflight) {
      res.setHeader("vary", "Origin");
      res.setHeader("access-control-expose-headers", EXPOSED);
      return undefined;
    }
    // The origin is one the user allowed: whatever headers its client sends (authorization,
    // x-api-key, anthropic-*, x-stainless-*…) are allowed with it.
    const asked = req.headers["access-control-request-headers"];
    const headers: Record<string, string | number> = {
      "access-control-allow-methods": "GET, POST, OPTIONS",
      "access-control-max-age": PREFLIGHT_MAX_AGE_S,
      vary: "Origin, Access-Control-Request-Headers, Access-Control-Request-Private-Network",
      "content-length": 0,
    };
    if (asked) headers["access-control-allow-headers"] = asked;
    // Chromium's Private Network Access: a public page asking a loopback server says so
    if (req.headers["access-control-request-private-network"] === "true")
      headers["access-control-allow-private-network"] = "true";
    res.writeHead(204, headers);
    res.end();
    return "answered";
  };
}

/**
 * An origin as browsers write it in `Origin`: scheme, host and port, lower case, no path, the
 * default port left out. `*` and `null` (sandboxed pages, files) stay as they are.
 * Throws on what is not an origin.
 */
export function normalizeOrigin(spec: string): string {
  const s = spec.trim();
  if (s === "*" || s.toLowerCase() === "null") return s.toLowerCase();
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#\s@]+)\/?$/i.exec(s);
  if (!m) {
    throw new Error(
      `${JSON.stringify(spec)} is not an origin: write scheme://host[:port] (e.g. http://localhost:3000), with no path`,
    );
  }
  const scheme = m[1]!.toLowerCase();
  if (scheme === "http" || scheme === "https") return new URL(s).origin;
  // other schemes (browser extensions: chrome-extension://ID) have no port rules to apply
  return `${scheme}://${m[2]!.toLowerCase()}`;
}

/** Whether `spec` can be listed in server.allowed_hosts: a host name or address, with a port or not, or `*`. */
export function isHostSpec(spec: string): boolean {
  if (spec === "*") return true;
  try {
    const u = new URL(`http://${spec}`);
    return u.username === "" && u.pathname === "/" && !u.search && !u.hash && `${u.host}`.length > 0;
  } catch {
    return false;
  }
}

/** Whether a `Host` header names this machine's loopback interface, or a name the user listed (with or without its port). */
export function hostAllowed(header: string, listed: ReadonlySet<string> = new Set()): boolean {
  const full = header.trim().toLowerCase().replace(/\.$/, "");
  const name = hostnameOf(full);
  if (name === undefined) return false;
  return isLoopbackName(name) || listed.has(name) || listed.has(full) || listed.has(`[${name}]`);
}

/** The host name of a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`); IPv6 without its brackets. */
function hostnameOf(host: string): string | undefined {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) return undefined;
    const rest = host.slice(end + 1);
    if (rest && !/^:\d*$/.test(rest)) return undefined;
    return host.slice(1, end);
  }
  const colon = host.indexOf(":");
  if (colon >= 0 && !/^\d*$/.test(host.slice(colon + 1))) return undefined;
  return (colon >= 0 ? host.slice(0, colon) : host).replace(/\.$/, "");
}

/** localhost, 127.0.0.0/8, ::1 and IPv4-mapped 127.x: the names no DNS answer can point elsewhere. */
function isLoopbackName(name: string): boolean {
  if (name === "localhost") return true;
  if (isIPv4(name)) return name.startsWith("127.");
  if (isIPv6(name)) {
    if (name === "::1" || name === "0:0:0:0:0:0:0:1") return true;
    // ::ffff:127.0.0.1, which URLs write ::ffff:7f00:1
    return /^(?:::|0:0:0:0:0:)ffff:(?:127\.|7f[0-9a-f]{2}:)/.test(name);
  }
  return false;
}

/** A value from a request, safe to quote in a message: bounded, printable. */
function quoted(value: string): string {
  const v = value.length > 200 ? `${value.slice(0, 200)}…` : value;
  return JSON.stringify(v);
}

function hostRefused(host: string): GatewayError {
  return new GatewayError(
    "permission",
    `refused: this request is addressed to host ${quoted(host)}, and clawbridge on a loopback address answers only requests for localhost, 127.0.0.1 or [::1] (a web page can rebind its own name to this machine). To reach clawbridge by this name, add it to server.allowed_hosts in the config`,
    { code: "host_not_allowed" },
  );
}

function originRefused(origin: string): GatewayError {
  return new GatewayError(
    "permission",
    `refused: this request comes from the web page at origin ${quoted(origin)}, and clawbridge answers web pages only from the origins the user allowed. To let a browser client on this origin use clawbridge, add ${quoted(origin)} to server.cors_origins in the config`,
    { code: "origin_not_allowed" },
  );
}
