import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { createParser } from "eventsource-parser";
import { type ErrorKind, GatewayError } from "../ir/errors.js";
import { Abort, type Signal } from "../ir/signal.js";
import type { Event } from "../ir/types.js";
import { releaseBody } from "./json-body.js";
import { redact } from "../redact.js";

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

/**
 * What the resilience layer wants to know of the exchanges made under one attempt: they carry it
 * on their abort signal (every backend passes its SendContext's signal to postJson, so no backend
 * has to carry it).
 */
export interface ExchangeHooks {
  /** Limit on setting up the connection, ms (0: none). */
  connectMs?: number;
  /** Called when the response head arrives: the backend is no longer loading. */
  onHeaders?(): void;
}

/** The abort signal of an attempt, with the hooks for the exchanges made under it. */
export class ExchangeSignal extends Abort {
  constructor(readonly hooks: ExchangeHooks) {
    super();
  }
}

interface SendOptions {
  method: "GET" | "POST";
  /** The caller's headers; a backend passes the same object every time (see `headList`). */
  headers: Record<string, string>;
  /** Whether the body is JSON: `content-type: application/json` unless the headers name one. */
  json?: boolean;
  body?: string | Buffer;
  signal: Signal;
  dispatcher: Dispatcher;
}

/**
 * One HTTP exchange; resolves with the response head, the body left to stream. A kept-alive
 * connection the server closed just as it was reused fails before any byte came back: that
 * exchange is tried once more on a fresh connection, as Node's http docs advise.
 */
async function send(url: string, opts: SendOptions): Promise<IncomingMessage> {
  // A body from the encoders' pool goes back to it once no exchange can write it any more: every
  // request made with it has finished writing or closed, and no other will be made.
  const body = opts.body;
  let writing = 0;
  let settled = false;
  const release = (): void => {
    if (settled && writing === 0 && Buffer.isBuffer(body)) releaseBody(body);
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
    const hooks = signal instanceof ExchangeSignal ? signal.hooks : undefined;
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
  body: unknown;
  headers: Record<string, string>;
  signal: Signal;
  dispatcher: Dispatcher;
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
      // a Buffer is JSON already encoded (backends/json-body.ts): it goes to the socket as it is
      body: Buffer.isBuffer(opts.body) ? opts.body : JSON.stringify(opts.body),
      signal: opts.signal,
      dispatcher: opts.dispatcher,
    });
  } catch (e) {
    throw connectionError(opts.backend, opts.url, e);
  }
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return { status, headers: res.headers, body: res };
  throw upstreamError(opts.backend, status, await readHead(res), res.headers);
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
  if (status < 200 || status >= 300) throw upstreamError(backend, status, text, res.headers);
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayError("api_error", `backend ${backend}: ${redact(url)} did not answer JSON`);
  }
}

export function connectionError(backend: string, url: string, e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  const err = e as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  if (err?.name === "AbortError") {
    return new GatewayError("api_error", `request to backend ${backend} was aborted`, {
      cause: e,
      retryable: false,
    });
  }
  const code = err?.code ?? err?.cause?.code ?? "";
  const what =
    code === "ECONNREFUSED"
      ? "connection refused — is the server running?"
      : code === "UND_ERR_CONNECT_TIMEOUT"
        ? "connection timed out"
        : code === "ECONNECT_TIMEOUT"
          ? `${err?.message} (timeouts.connect_ms)`
          : code === "ENOTFOUND"
            ? "host not found"
            : code === "ECONNRESET" || code === "EPIPE"
              ? "the connection was reset"
              : (err?.message ?? String(e));
  return new GatewayError("unavailable", `cannot reach backend ${backend} at ${origin(url)}: ${what}`, {
    cause: e,
    retryable: true,
    code: "backend_unreachable",
  });
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** The longest message taken from a server's error body (what it says is within it, or it is garbage). */
const MESSAGE_MAX = 2000;

/** Pulls a human message out of the usual error bodies: OpenAI, Anthropic, Ollama, plain text. */
export function upstreamMessage(text: string): string {
  try {
    const j = JSON.parse(text) as any;
    const m =
      (typeof j?.error === "string" && j.error) ||
      (typeof j?.error?.message === "string" && j.error.message) ||
      (typeof j?.message === "string" && j.message) ||
      (typeof j?.detail === "string" && j.detail);
    if (m) return m.length > MESSAGE_MAX ? `${m.slice(0, MESSAGE_MAX)}…` : m;
  } catch {
    // not JSON: fall through to the text itself
  }
  const trimmed = text.trim();
  if (!trimmed) return "(empty body)";
  const lastLine =
    trimmed
      .split("\n")
      .filter((l) => l.trim())
      .pop() ?? trimmed;
  return lastLine.length > 500 ? `${lastLine.slice(0, 500)}…` : lastLine;
}

/**
 * How servers say a model cannot take `tools`: Ollama ("... does not support tools"), llama.cpp
 * without --jinja ("tools param requires --jinja flag"), vLLM without a tool parser ("\"auto\" tool
 * choice requires --enable-auto-tool-choice"), and generic wordings.
 */
const TOOLS_REFUSED =
  /does not support tools|tools param requires --jinja|tool choice requires --enable-auto-tool-choice|tool(s| calling| use)? (is |are )?not supported/i;

/**
 * How servers say a model cannot think: Ollama (`"qwen2.5" does not support thinking`, and
 * `registry.ollama.ai/library/m:t does not support thinking` before 0.12.5).
 */
const THINKING_REFUSED = /does not support thinking/i;

export function upstreamError(
  backend: string,
  status: number,
  text: string,
  headers: http.IncomingHttpHeaders = {},
): GatewayError {
  const message = upstreamMessage(text);
  const retryAfterHeader = headers["retry-after"];
  const retryAfter = typeof retryAfterHeader === "string" ? Number(retryAfterHeader) || undefined : undefined;
  let kind: ErrorKind;
  let retryable: boolean;
  if (status >= 400 && TOOLS_REFUSED.test(message)) {
    // The tools stage learns from this: the model is switched to emulated tools and retried.
    return new GatewayError("invalid_request", `backend ${backend} answered ${status}: ${message}`, {
      upstreamStatus: status,
      retryable: false,
      code: "tools_unsupported",
    });
  }
  if (status >= 400 && status < 500 && THINKING_REFUSED.test(message)) {
    // Routing learns from this: thinking is no longer sent to the model, and the request is retried.
    return new GatewayError("invalid_request", `backend ${backend} answered ${status}: ${message}`, {
      upstreamStatus: status,
      retryable: false,
      code: "thinking_unsupported",
    });
  }
  if (status === 400 || status === 422) {
    kind = /context|too long|exceed|n_ctx|maximum.*tokens/i.test(message)
      ? "context_length"
      : "invalid_request";
    retryable = false;
  } else if (status === 401 || status === 403) {
    kind = "api_error";
    retryable = true;
    return new GatewayError(
      kind,
      `backend ${backend} refused clawbridge's credentials (${status}): ${message}`,
      {
        upstreamStatus: status,
        retryable,
        code: "backend_auth",
      },
    );
  } else if (status === 404) {
    kind = "not_found";
    retryable = true;
  } else if (status === 413) {
    kind = "request_too_large";
    retryable = false;
  } else if (status === 429) {
    kind = "rate_limit";
    retryable = true;
  } else if (status === 503 || status === 529) {
    kind = "overloaded";
    retryable = true;
  } else {
    kind = "api_error";
    retryable = status >= 500;
  }
  return new GatewayError(kind, `backend ${backend} answered ${status}: ${message}`, {
    upstreamStatus: status,
    retryable,
    retryAfter,
  });
}

/**
 * UTF-8 across network chunks, read as TextDecoder reads it (a byte order mark at the start
 * dropped, a character split between chunks joined, bad bytes replaced the same way) for a fifth
 * of its cost: Node 20's TextDecoder in streaming mode costs ~1.3 ns a byte, StringDecoder ~0.2.
 */
class Utf8Text {
  private readonly decoder = new StringDecoder("utf8");
  private atStart = true;

  write(chunk: Buffer | string): string {
    return typeof chunk === "string" ? chunk : this.dropBom(this.decoder.write(chunk));
  }

  end(): string {
    return this.dropBom(this.decoder.end());
  }

  private dropBom(s: string): string {
    if (!this.atStart || !s) return s;
    this.atStart = false;
    return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  }
}

/** Splits a response body into payloads, chunk by chunk: SSE `data`, or NDJSON lines. */
export interface PayloadSplitter {
  /** The payloads `chunk` completed, pushed to `payloads`. */
  feed(chunk: Buffer | string, payloads: string[]): void;
  /** A payload left without its terminator when the body ended. */
  end(payloads: string[]): void;
}

export function splitterFor(framing: "sse" | "ndjson"): PayloadSplitter {
  return framing === "sse" ? new SseSplitter() : new LineSplitter();
}

/** Splits text into lines (NDJSON), trimmed, empty ones skipped. */
class LineSplitter implements PayloadSplitter {
  private readonly text = new Utf8Text();
  private buf = "";

  /** The lines `chunk` completed. */
  feed(chunk: Buffer | string, lines: string[]): void {
    const seen = this.buf.length;
    this.buf += this.text.write(chunk);
    // what was buffered has no newline: look only at what came now
    let nl = this.buf.indexOf("\n", seen);
    if (nl < 0) return;
    let from = 0;
    while (nl >= 0) {
      const line = this.buf.slice(from, nl).trim();
      if (line) lines.push(line);
      from = nl + 1;
      nl = this.buf.indexOf("\n", from);
    }
    this.buf = this.buf.slice(from);
  }

  /** The last line, when the stream did not end with a newline. */
  end(lines: string[]): void {
    const last = (this.buf + this.text.end()).trim();
    this.buf = "";
    if (last) lines.push(last);
  }
}

/**
 * Server-sent events' data (eventsource-parser: the spec's line endings, comments, fields,
 * multi-line data); the decoders read only the data.
 */
class SseSplitter implements PayloadSplitter {
  private readonly text = new Utf8Text();
  private payloads: string[] = [];
  private readonly parser = createParser({ onEvent: (ev) => this.payloads.push(ev.data) });

  feed(chunk: Buffer | string, payloads: string[]): void {
    this.payloads = payloads;
    this.parser.feed(this.text.write(chunk));
  }

  end(payloads: string[]): void {
    this.payloads = payloads;
    this.parser.feed(`${this.text.end()}\n\n`);
  }
}

/** An error thrown while reading a stream that was already open. */
export function midStreamError(backend: string, e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  const err = e as { name?: string; code?: string; message?: string };
  if (err?.name === "AbortError") {
    return new GatewayError("api_error", `request to backend ${backend} was aborted`, { retryable: false });
  }
  return new GatewayError(
    "api_error",
    `backend ${backend} broke off its answer: ${err?.code === "ECONNRESET" || err?.message === "aborted" ? "connection reset" : (err?.message ?? String(e))}`,
    { cause: e, retryable: true, code: "backend_stream_broken" },
  );
}

/** A wire decoder: payloads in (SSE data or NDJSON lines), IR events out. */
export interface StreamDecoder {
  /** Decodes one payload into `out`; returns true when it was the stream's last. */
  push(payload: string, out: Event[]): boolean;
  /** Closes the answer (stop event), or throws when the stream ended before it finished. */
  end(out: Event[]): void;
}

/**
 * Runs an open response through a decoder, yielding the events of each network chunk as one
 * batch. The body is read to its end so the connection returns to the pool; a broken one is
 * destroyed.
 *
 * This is the loop of the stream's async iterator written out (read what is buffered, wait for
 * `readable`, the end or an error), with the splitting and decoding inside it: the iterator and
 * the generators that were stacked on it cost a few microseconds a batch, and a server streaming
 * tokens one by one sends a batch per token. Reading, backpressure, the error of a destroyed body
 * and the destroy when the caller stops early are the iterator's. A chunk that completes the
 * response carries the decoder's end in its own batch: a short answer that came in one read
 * (a non-streaming client's, most often) goes up the layers once instead of two or three times.
 */
export async function* decodeResponse(
  backend: string,
  res: UpstreamResponse,
  framing: "sse" | "ndjson",
  decoder: StreamDecoder,
): AsyncGenerator<Event[]> {
  const body = res.body;
  const splitter = splitterFor(framing);
  /** The body's end (null) or error, once it came; undefined before. */
  let over: unknown;
  /** Whether the body was read to its last byte (its `end` follows by itself). */
  let whole = false;
  let wake: (() => void) | undefined;
  const kick = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  // What `stream.finished` would report, with three listeners instead of its five and its checks
  // of every kind of stream: the end, an error, or a close before the end.
  const onEnd = (): void => {
    if (over === undefined) over = null;
    kick();
  };
  const onError = (e: unknown): void => {
    if (over === undefined) over = e;
    kick();
  };
  const onClose = (): void => {
    if (over === undefined) over = body.readableEnded ? null : prematureClose();
    kick();
  };
  /** Whether the decoder had the answer's last payload (`[DONE]`, `done: true`, message_stop). */
  let last = false;
  /** The chunk's payloads through the decoder into `out`; what the decoder threw, if it did. */
  const decode = (chunk: Buffer | string | undefined, out: Event[]): unknown => {
    const payloads: string[] = [];
    if (chunk === undefined) splitter.end(payloads);
    else splitter.feed(chunk, payloads);
    // what comes after the last payload is no part of the answer, and is not read
    for (let i = 0; i < payloads.length && !last; i++) {
      try {
        if (decoder.push(payloads[i]!, out)) last = true;
      } catch (e) {
        return e;
      }
    }
    return undefined;
  };
  /** The end of the body (an event or line left without its terminator) and the decoder's. */
  const finish = (out: Event[]): unknown => {
    const failed = last ? undefined : decode(undefined, out);
    if (failed !== undefined) return failed;
    try {
      decoder.end(out);
    } catch (e) {
      return e;
    }
    return undefined;
  };
  body.on("readable", kick);
  body.on("end", onEnd);
  body.on("error", onError);
  body.on("close", onClose);
  if (body.destroyed) over = body.errored ?? (body.readableEnded ? null : prematureClose());
  try {
    for (;;) {
      const chunk: Buffer | string | null = body.destroyed ? null : body.read();
      if (chunk !== null) {
        const out: Event[] = [];
        let failed = decode(chunk, out);
        // the last of the response (Node has it all and nothing is left to read), or of the
        // answer: the end goes with it
        const ends = failed === undefined && (last || (body.complete && body.readableLength === 0));
        if (ends) {
          whole = body.complete && body.readableLength === 0;
          failed = finish(out);
        }
        // what came before a bad payload in the same network chunk still goes out first
        if (out.length) yield out;
        if (failed !== undefined) throw failed;
        if (ends) return;
      } else if (over === null) break;
      else if (over !== undefined) throw over;
      else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
    whole = true;
    const out: Event[] = [];
    const failed = finish(out);
    if (out.length) yield out;
    if (failed !== undefined) throw failed;
  } catch (e) {
    throw midStreamError(backend, e);
  } finally {
    body.off("readable", kick);
    body.off("end", onEnd);
    body.off("error", onError);
    body.off("close", onClose);
    // Read to its end, the body emits `end` and its connection goes back to the pool. After the
    // answer's last payload, what is left of it (the end of the chunked body, most often, or what
    // a server sent after its end) is read and dropped for the same, within a bound. Otherwise
    // (the caller stopped early, an error) it is destroyed, and the connection with it.
    if (!whole && over !== null) {
      if (last && over === undefined && !body.destroyed) discardRest(body);
      else body.destroy();
    }
  }
}

/** How long what a server sends after the answer's last payload is read before the connection is closed. */
const REST_MS = 2000;

/** Reads the rest of a body and drops it, so its connection can serve again; destroys it after REST_MS. */
function discardRest(body: IncomingMessage): void {
  const timer = setTimeout(() => body.destroy(), REST_MS);
  const done = (): void => clearTimeout(timer);
  body.once("end", done);
  body.once("close", done);
  body.resume();
}

/** The error `stream.finished` reports for a body closed before its end. */
function prematureClose(): Error {
  return Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
}
