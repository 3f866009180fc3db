/**
 * The generation routes, `POST /v1/messages` and `POST /v1/chat/completions`: a request in a
 * surface's dialect, routed to a backend, its answer streamed or collected back in that dialect.
 */
import type { ServerResponse } from "node:http";
import { DEFAULT_ANSWER_LIMIT } from "../../config/types.js";
import { collect } from "../../ir/collect.js";
import { GatewayError, toGatewayError } from "../../ir/errors.js";
import { newId } from "../../ir/ids.js";
import { newAbort, type Signal } from "../../ir/signal.js";
import type { Event, Request } from "../../ir/types.js";
import type { RouteObserver } from "../../routing/router.js";
import type { ResponseMeta, StreamEncoder, Surface } from "../../surfaces/types.js";
import { sendError } from "../answer.js";
import type { Trace } from "../request-log.js";
import type { Handler, RouteContext } from "./route.js";

/** What answering a generation needs from the gateway. */
type HandlerDeps = Pick<
  RouteContext,
  "router" | "metrics" | "requests" | "log" | "keepAliveAfterMs" | "pingIntervalMs" | "answerLimitChars"
>;

/** The route for a surface's generation endpoint. */
export const generation =
  (surface: Surface) =>
  (ctx: RouteContext): Handler =>
  (req, res, body, bodyBytes) =>
    handleGeneration(surface, body, bodyBytes, res, ctx, ctx.requests.of(req));

/**
 * Writes a streaming answer to the socket: what is written between two flushes goes out as one
 * string, one buffer and one system call. The handler flushes after each batch of events (what
 * one network read of the backend's answer carried); anything else written (the opening, pings)
 * is flushed at the latest when the event loop next polls for I/O.
 */
class Writer {
  private pending = "";
  private scheduled = false;
  /** `capture`: a trace that keeps what is written (the journal's capture). */
  constructor(
    private readonly res: ServerResponse,
    private readonly capture?: Trace,
  ) {}
  write(s: string): void {
    if (!s || this.res.destroyed) return;
    this.capture?.captureAnswer(s);
    this.pending += s;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }
  /** Writes `s` now, after anything pending (one write for both). */
  writeNow(s: string): void {
    this.capture?.captureAnswer(s);
    const all = this.pending + s;
    this.pending = "";
    if (all && !this.res.destroyed) this.res.write(all);
  }
  readonly flush = (): void => {
    this.scheduled = false;
    if (!this.pending) return;
    const s = this.pending;
    this.pending = "";
    if (!this.res.destroyed) this.res.write(s);
  };
  /** Writes what is pending and ends the response. */
  end(): void {
    const s = this.pending;
    this.pending = "";
    if (this.res.destroyed) return;
    if (s) this.res.end(s);
    else this.res.end();
  }
}

/**
 * Answers one generation request: decoded request in, the client's own wire out. The same path
 * serves streaming and non-streaming clients; only the encoder differs.
 */
async function handleGeneration(
  surface: Surface,
  body: unknown,
  bodyBytes: number,
  res: ServerResponse,
  deps: HandlerDeps,
  trace: Trace | undefined,
): Promise<void> {
  if (trace) trace.surface = surface.name;
  let req: Request;
  try {
    req = surface.decode(body);
  } catch (e) {
    const err = toGatewayError(e);
    trace?.failed(err);
    return sendError(surface, res, err, deps.log, "invalid");
  }
  trace?.started(req.model);
  const log = deps.log;
  const meta: ResponseMeta = {
    id: newId(surface.idPrefix),
    model: req.model,
    // A placeholder until the backend reports its count (message_start must carry a number):
    // the request's size in bytes is a fair estimate at no cost on the hot path.
    inputTokensEstimate: Math.ceil(bodyBytes / 4),
  };
  const abort = newAbort();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);

  // a streaming answer, opened early when the request has to wait
  const live = req.stream
    ? new LiveStream(surface.streamEncoder(req, meta), res, deps.pingIntervalMs, trace)
    : undefined;
  const observer: RouteObserver = {
    note: (subject, detail) => {
      deps.metrics.reshaped.inc({ what: subject });
      trace?.note({ subject, detail });
    },
    count: (what: string, n = 1) => deps.metrics.toolCalls.inc({ what }, n),
    promptTokens: (model, evaluated, cached) => {
      deps.metrics.promptTokens.inc({ model, from: "evaluated" }, evaluated);
      if (cached !== undefined) deps.metrics.promptTokens.inc({ model, from: "cache" }, cached);
    },
    switched: (from: { backend: { name: string } }, err: GatewayError) =>
      deps.metrics.switched.inc({ from_backend: from.backend.name, kind: err.kind }),
    queued: (backend, lane) => {
      deps.metrics.queued.inc({ backend, lane });
      trace?.queued(lane);
      // it will be a while: the client gets its stream opened now, and pings while it waits
      live?.keepAlive();
    },
    started: (backend, lane, waitedMs) => {
      deps.metrics.queueWait.observe({ backend, lane }, waitedMs / 1000);
      trace?.placed(waitedMs);
    },
    // the backend is reading a long prompt: the client hears of it (a ping per report)
    // (and the live feed, how far)
    progress: (_p, words) => {
      live?.progressed();
      trace?.progress(words);
    },
  };
  if (trace) {
    observer.sending = (backend, model) => trace.sending(backend, model);
    observer.headers = () => trace.headers();
    if (trace.capture) observer.upstream = (b) => trace.captureUpstream(b);
  }
  let outcome = "ok";
  try {
    const events = deps.router.stream(req, abort, log, observer)[Symbol.asyncIterator]();
    if (live) outcome = await streamAnswer(live, events, deps, abort, trace);
    else {
      // the whole answer is held before it is sent: up to a limit, whatever the backend sends
      const chars = deps.answerLimitChars ?? DEFAULT_ANSWER_LIMIT;
      const answer = await collect(iterable(trace ? traced(events, trace) : events), req.model, {
        chars,
        error: () => tooLong(chars),
      });
      // as in a stream: the estimate stands when the backend reported no count
      if (!answer.usage.inputTokens && answer.usage.cacheReadTokens === undefined)
        answer.usage.inputTokens = meta.inputTokensEstimate;
      const body = surface.encodeResponse(answer, req, meta);
      trace?.usage(answer.usage);
      trace?.captureAnswer(body);
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    }
  } catch (e) {
    const err = toGatewayError(e);
    outcome = abort.aborted ? "client_gone" : err.kind;
    trace?.failed(err);
    if (!abort.aborted) sendError(surface, res, err, deps.log, outcome);
  } finally {
    res.off("close", onClose);
    if (trace) trace.outcome = outcome;
    // only names the gateway serves are labels: a client must not be able to grow the metrics without bound
    const model = deps.router.servedAs(req.model) ?? "other";
    deps.metrics.requests.inc({ surface: surface.name, model, outcome });
  }
}

/** A non-streaming answer past the limit: an error, not the gateway's memory. */
function tooLong(chars: number): GatewayError {
  const mb = +(chars / 1024 / 1024).toFixed(2);
  return new GatewayError(
    "api_error",
    `the answer grew past ${mb} MB, the most a non-streaming answer may hold (server.answer_limit_mb): ask for a stream (stream: true), or raise the limit`,
    { code: "answer_too_large", retryable: false },
  );
}

/** The events, telling the trace of the first token and the usage reports as they pass. */
function traced(it: AsyncIterator<Event[]>, trace: Trace): AsyncIterator<Event[]> {
  return {
    next: async () => {
      const r = await it.next();
      if (!r.done) see(r.value, trace);
      return r;
    },
    return: (v) => it.return?.(v) ?? Promise.resolve({ done: true, value: v }),
  };
}

/** What a batch of events tells the trace: the first token, the usage. */
function see(batch: Event[], trace: Trace): void {
  for (const ev of batch) {
    if (ev.type === "usage") trace.usage(ev.usage);
    else if (ev.type !== "start" && ev.type !== "stop") trace.firstToken();
  }
}

function iterable<T>(it: AsyncIterator<T>): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => it };
}

/**
 * A streaming answer's socket: opened at most once (status, headers, the encoder's opening), and
 * kept alive with pings while the backend is silent.
 */
class LiveStream {
  readonly out: Writer;
  opened = false;
  /** The answer's first event came: no more pings. */
  answering = false;
  private ping: NodeJS.Timeout | undefined;

  constructor(
    readonly encoder: StreamEncoder,
    readonly res: ServerResponse,
    private readonly pingIntervalMs: number,
    readonly trace: Trace | undefined,
  ) {
    this.out = new Writer(res, trace?.capture ? trace : undefined);
  }

  open(): void {
    if (this.opened || this.res.destroyed) return;
    this.opened = true;
    this.res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    this.out.write(this.encoder.open());
  }

  /**
   * Opens the stream if it is not open, with a ping at once (Anthropic clients get message_start
   * then `ping` events; OpenAI clients the role chunk then `: keep-alive` comment lines), and
   * pings every interval until stopped.
   */
  keepAlive(): void {
    if (this.ping || this.res.destroyed) return;
    this.open();
    this.out.write(this.encoder.ping());
    this.ping = setInterval(() => this.out.write(this.encoder.ping()), this.pingIntervalMs);
  }

  /**
   * The backend reported reading the prompt: the stream is opened and kept alive as for a wait,
   * and each report is a ping of its own, so a client with a short read timeout hears something
   * as often as the server reports.
   */
  progressed(): void {
    if (this.res.destroyed || this.answering) return;
    if (!this.ping) this.keepAlive();
    else this.out.write(this.encoder.ping());
  }

  stopPings(): void {
    clearInterval(this.ping);
    this.ping = undefined;
  }
}

/**
 * Streams the answer. Headers wait for the backend's first event, so a failure that comes fast
 * (an unknown model, a backend that is down, a full queue) is a real HTTP error with its status.
 * The stream is opened early, and kept alive with pings, as soon as the answer will be slow: the
 * request has to wait in a backend's queue, or nothing came within `keepAliveAfterMs` (a model
 * loading, a long prompt being read). After that, a failure is an error event in the dialect.
 */
async function streamAnswer(
  live: LiveStream,
  events: AsyncIterator<Event[]>,
  deps: HandlerDeps,
  signal: Signal,
  trace: Trace | undefined,
): Promise<string> {
  const { out, encoder } = live;
  let first: IteratorResult<Event[]>;
  const waitOpen = setTimeout(() => live.keepAlive(), deps.keepAliveAfterMs);
  try {
    first = await events.next();
  } catch (e) {
    clearTimeout(waitOpen);
    live.stopPings();
    if (!live.opened) throw e;
    if (signal.aborted) return "client_gone";
    const err = toGatewayError(e);
    trace?.failed(err);
    out.write(encoder.error(err));
    out.end();
    return err.kind;
  } finally {
    clearTimeout(waitOpen);
    live.stopPings();
  }
  live.answering = true;
  live.open();

  try {
    let r = first;
    while (!r.done) {
      let s = "";
      if (trace) see(r.value, trace);
      for (const ev of r.value) s += encoder.event(ev);
      out.writeNow(s);
      // A client that does not read holds the rest of the answer where it is: in the backend,
      // whose connection is not read either until the client's socket takes more.
      if (live.res.writableNeedDrain) await drained(live.res);
      r = await events.next();
    }
    if (!encoder.finished) {
      const err = new GatewayError("api_error", "the backend's answer ended before it finished");
      trace?.failed(err);
      out.write(encoder.error(err));
      out.end();
      return "incomplete";
    }
    out.end();
    return "ok";
  } catch (e) {
    if (signal.aborted) return "client_gone";
    const err = toGatewayError(e);
    trace?.failed(err);
    out.write(encoder.error(err));
    out.end();
    return err.kind;
  }
}

/** Resolves when the socket takes more (`drain`), or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
