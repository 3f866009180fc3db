/**
 * The machinery the three fake backends share: a loopback node:http server that records requests, tracks every
 * socket and timer so close() leaves nothing behind, delivers a response with an optional Fault, and splits a
 * ScriptedReply into the chunks a real server would stream. Nothing here knows a wire format; the fakes do.
 */
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Fault, FakeServer, RecordedRequest, ReplyFn, ScriptedReply } from "./script.js";

/** One request as a handler sees it. */
export interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  method: string;
  pathname: string;
  query: URLSearchParams;
  recorded: RecordedRequest;
  /** Parsed JSON, the raw text when it is not JSON, undefined when empty. */
  body: any;
  bodyIsJson: boolean;
  rawBody: string;
}

/** What a backend answers, already encoded: the chunks are exact bytes (SSE events, NDJSON lines, or one body). */
export interface Payload {
  status?: number;
  headers: Record<string, string>;
  /** Streaming: one element per chunk. Not streaming: exactly one element, the whole body. */
  chunks: string[];
  streaming: boolean;
  /** What the `malformed` fault inserts (streaming) or appends to the truncated body (not streaming). */
  garbage: string;
  /** HTTP/1.0-style body ended by closing the connection (no chunked encoding, no keep-alive). */
  closeDelimited?: boolean;
  /** Streaming: the indexes of the chunks that say the answer is over (left out by the `unfinished` fault). */
  finish?: number[];
  /** Streaming: chunks `from` to `to` (excluded) are sent `times` times over (ScriptedReply.repeat). */
  repeat?: { from: number; to: number; times: number };
  /**
   * Streaming: chunks sent right after the headers, `everyMs` apart, before `chunks` (llama.cpp's
   * prompt progress while it reads the prompt). Not counted by the faults' chunk numbers. After
   * `stallAfter` of them the server hangs (a server stuck reading the prompt).
   */
  prelude?: { chunks: string[]; everyMs: number; stallAfter?: number };
}

/** A backend's own error response for a status, used by the `status` fault when it gives no body. */
export interface ErrorResponse {
  body: string;
  headers: Record<string, string>;
}
export type ErrorFor = (status: number) => ErrorResponse;

export type Handler = (ex: Exchange, host: FakeHost) => Promise<void>;

const DEFAULT_REPLY: ScriptedReply = { text: "Hello from the fake backend." };

export class FakeHost implements FakeServer {
  url = "";
  port = 0;
  readonly requests: RecordedRequest[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly waiters = new Set<() => void>();
  private replySource: ReplyFn | ScriptedReply;
  private keepAlive = true;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly handler: Handler,
    reply: ReplyFn | ScriptedReply | undefined,
  ) {
    this.replySource = reply ?? DEFAULT_REPLY;
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    // A hang must stay a hang: no 408 from node:http after its default 300 s request timeout.
    this.server.requestTimeout = 0;
    this.server.on("connection", (socket: Socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  async listen(port = listenOn.port): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.port = address.port;
    this.url = `http://127.0.0.1:${address.port}`;
  }

  setReply(fn: ReplyFn | ScriptedReply): void {
    this.replySource = fn;
  }

  setKeepAlive(on: boolean): void {
    this.keepAlive = on;
  }

  /** The scripted reply for a request. */
  async reply(recorded: RecordedRequest): Promise<ScriptedReply> {
    const source = this.replySource;
    return typeof source === "function" ? await source(recorded) : source;
  }

  get isClosing(): boolean {
    return this.closing !== undefined;
  }

  /** Resolves true after ms, or false at once when the fake closes first. The timer is cleared by close(). */
  sleep(ms: number): Promise<boolean> {
    if (this.closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        this.waiters.delete(wake);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.waiters.delete(wake);
        resolve(true);
      }, ms);
      this.timers.add(timer);
      this.waiters.add(wake);
    });
  }

  /** Resolves when the client goes away or the fake closes. */
  hang(ex: Exchange): Promise<void> {
    if (this.closing || gone(ex)) return Promise.resolve();
    return new Promise((resolve) => {
      const socket = ex.req.socket;
      const done = () => {
        socket.off("close", done);
        this.waiters.delete(done);
        resolve();
      };
      socket.on("close", done);
      this.waiters.add(done);
    });
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      for (const wake of [...this.waiters]) wake();
      this.waiters.clear();
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      this.sockets.clear();
      this.server.closeAllConnections();
      await closed;
    })();
    return this.closing;
  }

  /**
   * Sends a payload, applying the fault if any. Chunks are counted as they go on the wire; see Fault in script.ts.
   */
  async deliver(ex: Exchange, payload: Payload, fault: Fault | undefined, errorFor: ErrorFor): Promise<void> {
    if (fault) {
      switch (fault.kind) {
        case "status":
          return this.sendStatusFault(ex, fault, errorFor);
        case "resetBeforeHeaders":
          resetSocket(ex.req.socket);
          return;
        case "hangBeforeHeaders":
          return this.hang(ex);
        case "delayFirstByte":
        case "slowLoad":
          if (!(await this.sleep(fault.ms)) || gone(ex)) return;
          break;
        default:
          break;
      }
    }
    if (payload.streaming) return this.deliverStream(ex, payload, fault);
    return this.deliverBody(ex, payload, fault);
  }

  /** A plain response with no fault handling (model lists, errors the backend itself would give, ...). */
  send(
    ex: Exchange,
    status: number,
    body: string,
    headers: Record<string, string>,
    closeDelimited = false,
  ): void {
    if (gone(ex)) return;
    const res = ex.res;
    if (closeDelimited) res.shouldKeepAlive = false;
    res.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(body)) });
    res.end(body);
  }

  private sendStatusFault(ex: Exchange, fault: Extract<Fault, { kind: "status" }>, errorFor: ErrorFor): void {
    const fallback = errorFor(fault.status);
    let headers = fallback.headers;
    const typed = Object.keys(fault.headers ?? {}).some((k) => k.toLowerCase() === "content-type");
    if (fault.body !== undefined && !typed && !looksLikeJson(fault.body)) {
      headers = { "content-type": "text/plain; charset=utf-8" };
    }
    this.send(ex, fault.status, fault.body ?? fallback.body, { ...headers, ...fault.headers });
  }

  private async deliverStream(ex: Exchange, payload: Payload, fault: Fault | undefined): Promise<void> {
    const res = ex.res;
    if (payload.closeDelimited) {
      res.useChunkedEncodingByDefault = false;
      res.shouldKeepAlive = false;
    }
    res.writeHead(payload.status ?? 200, payload.headers);
    res.flushHeaders();
    if (fault?.kind === "emptyStream") {
      res.end();
      return;
    }
    if (payload.prelude) {
      const { chunks, everyMs, stallAfter } = payload.prelude;
      for (const [i, chunk] of chunks.entries()) {
        if (i === stallAfter) return this.hang(ex);
        if (i > 0 && everyMs > 0 && !(await this.sleep(everyMs))) return;
        if (gone(ex)) return;
        await write(res, chunk);
      }
      if (stallAfter !== undefined && stallAfter >= chunks.length) return this.hang(ex);
      if (everyMs > 0 && !(await this.sleep(everyMs))) return;
    }
    const between =
      fault?.kind === "delayBetweenChunks" ? fault.ms : fault?.kind === "slowLoad" ? fault.chunkMs : 0;
    const stopAt =
      fault?.kind === "resetAfterChunks" || fault?.kind === "hangAfterChunks" ? fault.chunks : -1;
    let i = 0;
    for (const chunk of onTheWire(payload, fault)) {
      if (i === stopAt) break;
      if (i > 0 && between > 0 && !(await this.sleep(between))) return;
      if (gone(ex)) return;
      await write(res, chunk);
      i++;
    }
    if (fault?.kind === "resetAfterChunks") {
      await drained(ex.req.socket);
      resetSocket(ex.req.socket);
      return;
    }
    if (fault?.kind === "hangAfterChunks") return this.hang(ex);
    if (!gone(ex)) res.end();
  }

  private async deliverBody(ex: Exchange, payload: Payload, fault: Fault | undefined): Promise<void> {
    const res = ex.res;
    const body = payload.chunks.join("");
    if (payload.closeDelimited) res.shouldKeepAlive = false;
    const status = payload.status ?? 200;
    const head = (length: number) =>
      res.writeHead(status, { ...payload.headers, "content-length": String(length) }).flushHeaders();
    const half = body.slice(0, Math.floor(body.length / 2));
    switch (fault?.kind) {
      case "emptyStream":
        head(0);
        res.end();
        return;
      case "garbageAfterEnd": {
        const trailed = body + payload.garbage;
        head(Buffer.byteLength(trailed));
        res.end(trailed);
        return;
      }
      case "malformed": {
        const broken = half + payload.garbage;
        head(Buffer.byteLength(broken));
        res.end(broken);
        return;
      }
      case "resetAfterChunks":
      case "hangAfterChunks":
        head(Buffer.byteLength(body));
        if (fault.chunks > 0) await write(res, half);
        if (fault.kind === "hangAfterChunks") return this.hang(ex);
        await drained(ex.req.socket);
        resetSocket(ex.req.socket);
        return;
      default:
        head(Buffer.byteLength(body));
        res.end(body);
    }
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("error", () => {});
    req.on("end", () => {
      const rawBody = Buffer.concat(parts).toString("utf8");
      let body: any;
      let bodyIsJson = false;
      if (rawBody.length > 0) {
        try {
          body = JSON.parse(rawBody);
          bodyIsJson = true;
        } catch {
          body = rawBody;
        }
      }
      const target = req.url ?? "/";
      const url = new URL(target, "http://fake.invalid");
      const recorded: RecordedRequest = {
        method: req.method ?? "GET",
        path: target,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      };
      recorded.receivedAt = performance.now();
      if (!this.keepAlive) res.shouldKeepAlive = false;
      res.once("close", () => {
        recorded.closedAt = performance.now();
        recorded.completed = res.writableFinished;
      });
      this.requests.push(recorded);
      const ex: Exchange = {
        req,
        res,
        method: recorded.method,
        pathname: url.pathname,
        query: url.searchParams,
        recorded,
        body,
        bodyIsJson,
        rawBody,
      };
      this.handler(ex, this).catch((err: unknown) => {
        if (!this.closing) console.error("fake backend handler failed:", err);
        if (!res.headersSent && !gone(ex)) {
          this.send(ex, 500, `fake backend error: ${String(err)}\n`, { "content-type": "text/plain" });
        } else {
          res.destroy();
        }
      });
    });
  }
}

/** The port fakes listen on: 0 (OS-assigned) unless a runner (test/fakes/run.ts) asks for one. */
export const listenOn = { port: 0 };

/** Starts a fake on 127.0.0.1 with an OS-assigned port, or the one given (a server started again). */
export async function startFake(
  handler: Handler,
  reply: ReplyFn | ScriptedReply | undefined,
  port?: number,
): Promise<FakeHost> {
  const host = new FakeHost(handler, reply);
  await host.listen(port);
  return host;
}

export function gone(ex: Exchange): boolean {
  return ex.res.destroyed || ex.req.socket.destroyed;
}

/**
 * A stream's chunks as they go on the wire, made one by one: the repeats (Payload.repeat) expanded, the finish
 * chunks left out for `unfinished`, the garbage inserted for `malformed` (after `afterChunks` chunks, or last when
 * the stream is shorter) or appended for `garbageAfterEnd`.
 */
function* onTheWire(payload: Payload, fault: Fault | undefined): Generator<string> {
  const { chunks, repeat } = payload;
  const skip = fault?.kind === "unfinished" ? new Set(payload.finish) : undefined;
  const garbageAt = fault?.kind === "malformed" ? Math.max(fault.afterChunks ?? 1, 0) : -1;
  let sent = 0;
  function* one(index: number): Generator<string> {
    if (skip?.has(index)) return;
    if (sent === garbageAt) {
      sent++;
      yield payload.garbage;
    }
    sent++;
    yield chunks[index] as string;
  }
  for (let i = 0; i < chunks.length; i++) {
    if (repeat && i === repeat.from) {
      for (let t = 0; t < repeat.times; t++) for (let j = repeat.from; j < repeat.to; j++) yield* one(j);
      i = repeat.to - 1;
      continue;
    }
    yield* one(i);
  }
  if (garbageAt >= sent || fault?.kind === "garbageAfterEnd") yield payload.garbage;
}

function write(res: http.ServerResponse, data: string): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve();
      return;
    }
    res.write(data, () => resolve());
  });
}

/** Resolves once everything queued on the socket so far (headers included) has been handed to the OS. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed || !socket.writable) {
      resolve();
      return;
    }
    socket.write("", () => resolve());
  });
}

/** An abortive close (RST) when the platform offers one, else a plain destroy. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
  else socket.destroy();
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Splitting a scripted reply into chunks
// ---------------------------------------------------------------------------------------------------------------

export interface PlannedToolCall {
  index: number;
  id: string;
  name: string;
  /** The arguments as they go on the wire: JSON text of the object, or the scripted raw string verbatim. */
  args: string;
  /** The arguments split into deltas of chunkSize characters (at least one, possibly the empty string). */
  argChunks: string[];
  /** True when the script gave a raw string. */
  raw: boolean;
}

export interface Plan {
  text: string;
  reasoning: string;
  textChunks: string[];
  reasoningChunks: string[];
  toolCalls: PlannedToolCall[];
  finish: "stop" | "length" | "tool_calls";
  /** The stop sequence that ended the answer, when the script says one did. */
  stopSequence?: string;
  chunkSize: number;
  /** Content-bearing chunks: reasoning + text chunks, and per tool call its start and its argument deltas. */
  contentChunks: number;
}

export function planReply(reply: ScriptedReply, makeToolId: () => string): Plan {
  const chunkSize = Math.max(1, Math.floor(reply.chunkSize ?? 4));
  const text = reply.text ?? "";
  const reasoning = reply.reasoning ?? "";
  const toolCalls = (reply.toolCalls ?? []).map((call, index): PlannedToolCall => {
    const raw = typeof call.arguments === "string";
    const args = typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments);
    const argChunks = chunkText(args, chunkSize);
    return { index, id: call.id ?? makeToolId(), name: call.name, args, argChunks, raw };
  });
  const textChunks = chunkText(text, chunkSize).filter((c) => c.length > 0);
  const reasoningChunks = chunkText(reasoning, chunkSize).filter((c) => c.length > 0);
  const finish = reply.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop");
  const contentChunks =
    textChunks.length + reasoningChunks.length + toolCalls.reduce((n, c) => n + 1 + c.argChunks.length, 0);
  const plan: Plan = {
    text,
    reasoning,
    textChunks,
    reasoningChunks,
    toolCalls,
    finish,
    chunkSize,
    contentChunks,
  };
  if (reply.stopSequence !== undefined) plan.stopSequence = reply.stopSequence;
  return plan;
}

/** Splits by code points so a surrogate pair is never cut in half. Always returns at least one element. */
export function chunkText(text: string, size: number): string[] {
  const points = Array.from(text);
  if (points.length === 0) return [""];
  const out: string[] = [];
  for (let i = 0; i < points.length; i += size) out.push(points.slice(i, i + size).join(""));
  return out;
}

/** A rough token count of a request: about four characters a token. */
export function estimateTokens(value: unknown): number {
  const text = typeof value === "string" ? value : (JSON.stringify(value ?? "") ?? "");
  return Math.max(1, Math.ceil(text.length / 4));
}

/** Parses raw tool arguments when they are JSON; returns undefined when they are not. */
export function parseArgs(args: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(args) };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------------------------------------------------

export const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
export const LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789";
export const HEX = "0123456789abcdef";
export const DIGITS = "0123456789";

export function randomString(alphabet: string, length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** One SSE frame with only a data field. */
export function sseData(data: string): string {
  return `data: ${data}\n\n`;
}

/** One SSE frame with an event name. */
export function sseEvent(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

/** Go's encoding/json: compact, with <, >, & and U+2028/U+2029 escaped (HTML-safe). */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** Go's time.Time in JSON (RFC 3339 with nanoseconds, trailing zeros dropped), in UTC. */
export function goTime(date = new Date()): string {
  const base = date.toISOString().slice(0, 19);
  const nanos = date.getUTCMilliseconds() * 1_000_000 + Number(process.hrtime.bigint() % 1_000_000n);
  const fraction = String(nanos).padStart(9, "0").replace(/0+$/, "");
  return fraction ? `${base}.${fraction}Z` : `${base}Z`;
}

/**
 * Python's json.dumps with its defaults: ", " and ": " separators, ensure_ascii (everything outside printable
 * ASCII escaped as \\uXXXX). Used by the tinygrad fake, whose server calls json.dumps(...) bare.
 */
export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
    return String(value);
  }
  if (typeof value === "string") {
    return JSON.stringify(value).replace(
      /[^\x20-\x7e]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (Array.isArray(value)) return `[${value.map((v) => pyJson(v)).join(", ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${pyJson(k)}: ${pyJson(v)}`).join(", ")}}`;
  }
  return "null";
}
