import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { StringDecoder } from "node:string_decoder";
import type { ExchangeHooks } from "../../ir/contract.js";
import { GatewayError } from "../../ir/errors.js";
import type { Signal } from "../../ir/signal.js";
import { redact } from "../../redact.js";
import { connectionError, type ErrorTable, midStreamError, upstreamError } from "./errors.js";

/**
 * The HTTP client every backend request goes through: Node's own http client over kept-alive
 * connections, one exchange at a time (`postJson` for a generation, `fetchJson` for discovery),
 * error bodies read within a bound and turned into GatewayErrors (`errors.ts`). What comes back
 * is the open response; `framing.ts` reads it.
 */

/**
 * The connection pools every backend request goes through: keep-alive, and no time limits of
 * their own (local servers may take minutes to load a model before the first byte; time limits
 * belong to the resilience layer, per model profile). Node's own http client: it costs no
 * memory beyond what the server side already loaded.
 */
export interface Dispatcher {
  readonly http: http.Agent;
  readonly https: https.Agent;
  close(): Promise<void>;
}

/**
 * Connections to the backends, kept alive between requests. As many are kept idle as may be open
 * at once: a burst of concurrent requests would otherwise close most of them afterwards and open
 * them anew for the next burst (a connect, a close and a TIME_WAIT each, on both ends).
 */
export function createDispatcher(agents: { http?: http.Agent; https?: https.Agent } = {}): Dispatcher {
  const h =
    agents.http ??
    new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxSockets: 64, maxFreeSockets: 64 });
  const s =
    agents.https ??
    new https.Agent({ keepAlive: true, keepAliveMsecs: 30_000, maxSockets: 64, maxFreeSockets: 64 });
  return {
    http: h,
    https: s,
    close: async () => {
      h.destroy();
      s.destroy();
    },
  };
}

export interface UpstreamResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: IncomingMessage;
}

interface SendOptions {
  method: "GET" | "POST";
  /** The caller's headers; a backend passes the same object every time (see `headList`). */
  headers: Record<string, string>;
  /** Whether the body is JSON: `content-type: application/json` unless the headers name one. */
  json?: boolean;
  body?: string | Buffer;
  /** Called once no request can write `body` any more (see `PostOptions.onBodyDone`). */
  onBodyDone?: () => void;
  signal: Signal;
  /** What the exchange tells its caller (see SendContext.exchange). */
  hooks?: ExchangeHooks;
  dispatcher: Dispatcher;
}

/**
 * One HTTP exchange; resolves with the response head, the body left to stream. A kept-alive
 * connection the server closed just as it was reused fails before any byte came back: that
 * exchange is tried once more on a fresh connection, as Node's http docs advise.
 */
async function send(url: string, opts: SendOptions): Promise<IncomingMessage> {
  // The body's maker hears when no exchange can write it any more: every request made with it
  // has finished writing or closed, and no other will be made.
  let writing = 0;
  let settled = false;
  let told = false;
  const release = (): void => {
    if (!settled || writing > 0 || told) return;
    told = true;
    opts.onBodyDone?.();
  };
  const track = (req: http.ClientRequest): void => {
    writing++;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      writing--;
      release();
    };
    req.once("finish", end);
    req.once("close", end);
  };
  try {
    return await sendOnce(url, opts, track);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { reusedSocket?: boolean };
    if (err.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE") && !opts.signal.aborted) {
      return sendOnce(url, opts, track);
    }
    throw e;
  } finally {
    settled = true;
    release();
  }
}

interface Target {
  secure: boolean;
  options: http.RequestOptions;
  /** The Host header, as Node would make it. */
  host: string;
  /** Basic credentials from the URL, as Node would send them. */
  authorization?: string;
  /** The head of a request with these headers (see `headList`), JSON body or not. */
  heads: WeakMap<Record<string, string>, { plain?: string[]; json?: string[] }>;
}

/** URLs parsed into request options, once each: a backend's few endpoints are asked again and again. */
const targets = new Map<string, Target>();

function targetOf(url: string): Target {
  let t = targets.get(url);
  if (t) return t;
  const u = new URL(url);
  const secure = u.protocol === "https:";
  t = {
    secure,
    options: {
      protocol: u.protocol,
      hostname: u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname,
      port: u.port ? Number(u.port) : secure ? 443 : 80,
      path: `${u.pathname}${u.search}`,
      // the name TLS asks for (SNI) is worked out per request by the agent; plain HTTP has none
      ...(secure ? {} : { servername: "" }),
    },
    // `URL.host` leaves out a default port and keeps an IPv6 address's brackets, as Node's own does
    host: u.host,
    heads: new WeakMap(),
  };
  if (u.username || u.password)
    t.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`;
  // query strings may vary (discovery): the map stays small all the same
  if (targets.size >= 256) targets.clear();
  targets.set(url, t);
  return t;
}

function sendOnce(
  url: string,
  opts: SendOptions,
  track?: (req: http.ClientRequest) => void,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let target: Target;
    try {
      target = targetOf(url);
    } catch (e) {
      reject(e);
      return;
    }
    const { secure } = target;
    const headers = headList(target, opts.headers, opts.json === true);
    if (opts.body !== undefined) headers.push("content-length", String(Buffer.byteLength(opts.body)));
    const signal = opts.signal;
    if (signal.aborted) {
      reject(abortError(signal.reason));
      return;
    }
    const hooks = opts.hooks;
    let response: IncomingMessage | undefined;
    const req = (secure ? https : http).request(
      {
        ...target.options,
        method: opts.method,
        headers,
        agent: secure ? opts.dispatcher.https : opts.dispatcher.http,
      },
      (res) => {
        response = res;
        hooks?.onHeaders?.();
        resolve(res);
      },
    );
    track?.(req);
    req.once("socket", guard);
    // as Node's own `signal` option does it, with a listener that costs next to nothing on the
    // request path's own signals (ir/signal.ts)
    const onAbort = (): void => {
      // A response that came in full is over: there is nothing left to abort, and destroying the
      // request now would destroy its socket with an error just as Node, on the response's `end`
      // (due on the next tick), takes the socket's error listener off to pool it. The error would
      // then have no listener: an uncaught exception. Whoever holds the response reads it to its
      // end or destroys it (decodeResponse, readHead), which closes the socket without an error.
      if (response?.complete) return;
      req.destroy(abortError(signal.reason));
    };
    signal.addEventListener("abort", onAbort);
    req.once("close", () => signal.removeEventListener("abort", onAbort));
    req.on("error", (e: Error & { reusedSocket?: boolean }) => {
      e.reusedSocket = req.reusedSocket;
      reject(e);
    });
    const connectMs = hooks?.connectMs;
    if (connectMs) {
      req.once("socket", (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => {
          const e = Object.assign(new Error(`connection not set up within ${connectMs} ms`), {
            code: "ECONNECT_TIMEOUT",
          });
          req.destroy(e);
        }, connectMs);
        const clear = () => clearTimeout(timer);
        socket.once("connect", clear);
        req.once("close", clear);
      });
    }
    if (opts.body !== undefined) hooks?.onBody?.(opts.body);
    req.end(opts.body);
  });
}

/** Marks a socket that has a listener for its errors of its own (see `guard`). */
const GUARDED = Symbol("clawbridge.guarded");

/**
 * Gives a backend connection a listener for its errors, once in its life. While it serves a request,
 * Node's own listener passes its errors to the request; between requests, the agent's. In the moments
 * between (a response ending, the socket going back to the pool) it has none, and an error then, as
 * a destroy with an error makes, would be thrown from the socket and end the process: this one
 * makes sure none ever is. The error itself reaches whoever needs it through Node's listeners.
 */
function guard(socket: Socket & { [GUARDED]?: true }): void {
  if (socket[GUARDED]) return;
  socket[GUARDED] = true;
  socket.on("error", ignore);
}

function ignore(): void {}

/**
 * The headers as a flat list, as Node writes them out (instead of keeping each in a table to look
 * up before writing it), without the length: worked out once for a URL and a headers object (a
 * backend sends the same ones every time), and copied for each request.
 */
function headList(target: Target, given: Record<string, string>, json: boolean): string[] {
  let cached = target.heads.get(given);
  if (!cached) {
    cached = {};
    target.heads.set(given, cached);
  }
  let list = json ? cached.json : cached.plain;
  if (!list) {
    list = [];
    if (!hasHeader(given, "host")) list.push("host", target.host);
    if (target.authorization && !hasHeader(given, "authorization"))
      list.push("authorization", target.authorization);
    if (json && !hasHeader(given, "content-type")) list.push("content-type", "application/json");
    for (const k in given) list.push(k, given[k]!);
    if (json) cached.json = list;
    else cached.plain = list;
  }
  return list.slice();
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  for (const k in headers) if (k.toLowerCase() === name) return true;
  return false;
}

/** The error a request aborted through its signal fails with (as Node makes it for its `signal` option). */
function abortError(reason: unknown): Error {
  return Object.assign(new Error("The operation was aborted"), {
    name: "AbortError",
    code: "ABORT_ERR",
    cause: reason,
  });
}

async function bodyText(res: IncomingMessage): Promise<string> {
  let s = "";
  res.setEncoding("utf8");
  for await (const chunk of res) s += chunk;
  return s;
}

/**
 * How much of an error body is read: enough for any server's message (a JSON error, the last line
 * of a traceback), and no more, whatever size the server sends.
 */
export const ERROR_HEAD_BYTES = 64 * 1024;

/**
 * The first `max` bytes of a body, as text (`…` marks a cut). A longer body is not read further:
 * it is destroyed, and its connection with it.
 */
export async function readHead(res: IncomingMessage, max = ERROR_HEAD_BYTES): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  let cut = false;
  try {
    // leaving the loop early (the cut, an error) destroys the body
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (chunk.length > max - size) {
        parts.push(chunk.subarray(0, max - size));
        cut = true;
        break;
      }
      parts.push(chunk);
      size += chunk.length;
    }
  } catch {
    // what came before the connection broke is the message
  }
  const text = Buffer.concat(parts).toString("utf8");
  return cut ? `${text}…` : text;
}

/**
 * The most a body read whole (not streamed: a server that answered a stream request with one JSON
 * object) may hold: beyond any real answer, short of what would strain the gateway's memory.
 */
export const WHOLE_BODY_LIMIT = 64 * 1024 * 1024;

/** A body read whole, as text; fails (and destroys it) beyond `max` bytes. */
export async function readWhole(
  backend: string,
  res: IncomingMessage,
  max = WHOLE_BODY_LIMIT,
): Promise<string> {
  const decoder = new StringDecoder("utf8");
  let text = "";
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) {
        throw new GatewayError(
          "api_error",
          `backend ${backend} sent an answer larger than ${Math.round(max / 1024 / 1024)} MB in one piece; clawbridge does not hold more`,
          { code: "backend_answer_too_large", retryable: false },
        );
      }
      text += decoder.write(chunk);
    }
  } catch (e) {
    throw midStreamError(backend, e);
  }
  return text + decoder.end();
}

export interface PostOptions {
  backend: string;
  url: string;
  /** The request's JSON text. */
  body: string | Buffer;
  /**
   * Called once nothing can write `body` any more (every request made with it is done writing
   * it): the maker of a body it lent (a pooled buffer, backends/json-body.ts) takes it back then.
   */
  onBodyDone?: () => void;
  headers: Record<string, string>;
  signal: Signal;
  hooks?: ExchangeHooks;
  dispatcher: Dispatcher;
  /** What the server's error messages mean (its kind's table, `<kind>/errors.ts`). */
  errors?: ErrorTable;
}

/**
 * POSTs JSON and returns the open response when it is 2xx; otherwise throws the upstream's
 * error as a GatewayError, with the server's own message.
 */
export async function postJson(opts: PostOptions): Promise<UpstreamResponse> {
  let res: IncomingMessage;
  try {
    res = await send(opts.url, {
      method: "POST",
      headers: opts.headers,
      json: true,
      body: opts.body,
      ...(opts.onBodyDone ? { onBodyDone: opts.onBodyDone } : {}),
      signal: opts.signal,
      ...(opts.hooks ? { hooks: opts.hooks } : {}),
      dispatcher: opts.dispatcher,
    });
  } catch (e) {
    throw connectionError(opts.backend, opts.url, e);
  }
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return { status, headers: res.headers, body: res };
  throw upstreamError(opts.backend, status, await readHead(res), res.headers, opts.errors);
}

const NO_HEADERS: Record<string, string> = {};

/** GETs (or POSTs) JSON for discovery; throws GatewayError on failure. */
export async function fetchJson(
  backend: string,
  url: string,
  dispatcher: Dispatcher,
  init: {
    method?: "GET" | "POST";
    body?: unknown;
    headers?: Record<string, string>;
    timeoutMs?: number;
    /** What the server's error messages mean (its kind's table). */
    errors?: ErrorTable;
  } = {},
): Promise<unknown> {
  let text: string;
  let res: IncomingMessage;
  let status: number;
  try {
    res = await send(url, {
      method: init.method ?? "GET",
      headers: init.headers ?? NO_HEADERS,
      json: init.body !== undefined,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(init.timeoutMs ?? 5000),
      dispatcher,
    });
    status = res.statusCode ?? 0;
    text = status >= 200 && status < 300 ? await bodyText(res) : await readHead(res);
  } catch (e) {
    throw connectionError(backend, url, e);
  }
  if (status < 200 || status >= 300) throw upstreamError(backend, status, text, res.headers, init.errors);
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayError("api_error", `backend ${backend}: ${redact(url)} did not answer JSON`);
  }
}
