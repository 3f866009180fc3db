/**
 * The one place that collects what happened to a request and writes it once: the request line
 * (info), the journal's entry, the live feed, and the metrics of time and tokens. Every request
 * gets a trace when it arrives (`begin`); the routes and the attempt runner add to it; it is
 * written when the response closes — the client has its answer, or has gone.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { GatewayError } from "../ir/errors.js";
import { newId } from "../ir/ids.js";
import type { Usage } from "../ir/types.js";
import type { CapturedBodies, LiveRequest, Phase, RequestEntry, TimelineEvent } from "../journal/entry.js";
import type { RequestFeed } from "../journal/feed.js";
import type { Journal } from "../journal/journal.js";
import type { Logger } from "../log.js";
import { redact } from "../redact.js";
import type { Note } from "../stages/types.js";
import type { Metrics } from "./metrics.js";

/** Routes a monitor polls: a line only at debug, and not journaled, while they answer. */
const QUIET = new Set(["GET /health", "GET /metrics"]);
/** The dashboard's page and what it reads (routes/dashboard.ts): quiet too, or it would list itself. */
const isDashboard = (route: string) =>
  route === "GET /" || route === "GET /favicon.ico" || route.startsWith("GET /_dashboard/");
/** The most of a streamed answer kept by capture, in characters. */
const ANSWER_CAPTURE_LIMIT = 1024 * 1024;

export interface RequestLogOptions {
  log: Logger;
  metrics: Metrics;
  feed: RequestFeed;
  journal?: Journal | undefined;
  /** The name a model is served under (a label), undefined for one the gateway does not serve. */
  servedAs(model: string): string | undefined;
  /** Whether a backend is configured (a label). */
  isBackend(name: string): boolean;
  /** Keys that must never be written (the master key, the backends' keys). */
  secrets: string[];
}

export class RequestLog {
  private readonly traces = new WeakMap<IncomingMessage, Trace>();

  constructor(readonly opts: RequestLogOptions) {}

  /** Whether bodies are kept. */
  get capture(): boolean {
    return this.opts.journal?.capture ?? false;
  }

  /** Starts a request's trace; it is written when `res` closes. */
  begin(req: IncomingMessage, res: ServerResponse, surface: string): Trace {
    const path = (req.url ?? "/").split("?")[0]!;
    const trace = new Trace(this, `${req.method} ${path}`, surface, req, res);
    this.traces.set(req, trace);
    res.once("close", () => trace.finish());
    return trace;
  }

  of(req: IncomingMessage): Trace | undefined {
    return this.traces.get(req);
  }

  /** Text with URL credentials and every known key replaced by `***`. */
  scrub(text: string): string {
    let s = redact(text);
    for (const k of this.opts.secrets) if (k.length >= 4 && s.includes(k)) s = s.split(k).join("***");
    return s;
  }

  /** @internal a trace is done: one line, one entry, the feed, the metrics. */
  write(t: Trace, e: RequestEntry): void {
    const { log, journal, feed, metrics } = this.opts;
    const quiet = (QUIET.has(e.route) || isDashboard(e.route)) && e.status !== null && e.status < 400;
    const line = {
      req: e.id,
      route: e.route,
      surface: e.surface,
      client: e.client,
      ...(e.model !== undefined ? { model: e.model } : {}),
      ...(e.backend !== undefined ? { served: `${e.backend}/${e.target}` } : {}),
      status: e.outcome === "client_gone" ? "client_gone" : e.status,
      outcome: e.outcome,
      ...(e.queueMs !== undefined ? { queue_ms: e.queueMs } : {}),
      ...(e.ttftMs !== undefined ? { ttft_ms: e.ttftMs } : {}),
      duration_ms: e.durationMs,
      ...(e.tokensIn !== undefined ? { tokens_in: e.tokensIn } : {}),
      ...(e.tokensOut !== undefined ? { tokens_out: e.tokensOut } : {}),
      ...(e.tokensCached !== undefined ? { tokens_cached: e.tokensCached } : {}),
      ...(e.tokensPerSecond !== undefined ? { tokens_per_s: e.tokensPerSecond } : {}),
      ...(e.notes.length ? { notes: [...new Set(e.notes.map((n) => n.subject))] } : {}),
      ...(e.cause !== undefined ? { cause: e.cause } : {}),
    };
    const served = e.backend ? ` → ${e.backend}/${e.target}` : "";
    const msg = `${e.route}${e.model !== undefined ? ` ${e.model}${served}` : ""}: ${line.status} in ${e.durationMs} ms`;
    if (quiet) {
      log.debug(line, msg);
      return;
    }
    if (isDashboard(e.route)) {
      // a refusal (no key) has its line; the dashboard never lists or charts its own requests
      log.info(line, msg);
      return;
    }
    log.info(line, msg);
    feed.done(e);
    journal?.add(e);
    if (t.generation) {
      // only names the gateway serves are labels: a client must not grow the metrics without bound
      const model = (e.model !== undefined && this.opts.servedAs(e.model)) || "other";
      const backend = e.backend && this.opts.isBackend(e.backend) ? e.backend : "none";
      const labels = { model, backend };
      metrics.duration.observe(labels, e.durationMs / 1000);
      if (e.ttftMs !== undefined) metrics.firstToken.observe(labels, e.ttftMs / 1000);
      if (e.tokensIn) metrics.tokens.inc({ ...labels, direction: "input" }, e.tokensIn);
      if (e.tokensOut) metrics.tokens.inc({ ...labels, direction: "output" }, e.tokensOut);
      if (e.tokensCached) metrics.tokens.inc({ ...labels, direction: "cached" }, e.tokensCached);
    }
  }
}

/** What is known of one request so far. */
export class Trace {
  readonly id = newId("req_");
  readonly at = Date.now();
  private readonly t0 = performance.now();
  surface: string;
  model: string | undefined;
  backend: string | undefined;
  target: string | undefined;
  /** Set by a generation route: its time and tokens go to the metrics. */
  generation = false;
  /** The outcome when the route knows it (a stream that failed after it started). */
  outcome: string | undefined;
  private cause: string | undefined;
  private errorKind: string | undefined;
  private queueMs: number | undefined;
  private firstTokenMs: number | undefined;
  private readonly usageSeen: Partial<Usage> = {};
  private readonly notes: Note[] = [];
  private readonly timeline: TimelineEvent[] = [{ event: "received", ms: 0 }];
  private bodies: CapturedBodies | undefined;
  private answerChars = 0;
  private live: LiveRequest | undefined;
  private done = false;

  constructor(
    private readonly owner: RequestLog,
    readonly route: string,
    surface: string,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.surface = surface;
  }

  /** Whether bodies are kept for this request. */
  get capture(): boolean {
    return this.owner.capture;
  }

  private now(): number {
    return Math.round(performance.now() - this.t0);
  }

  mark(event: TimelineEvent["event"], detail?: string): void {
    this.timeline.push(detail === undefined ? { event, ms: this.now() } : { event, ms: this.now(), detail });
  }

  /** A generation began: it shows in the live feed from now on. */
  started(model: string): void {
    this.generation = true;
    this.model = model;
    this.live = { id: this.id, at: this.at, surface: this.surface, model, phase: "received" };
    this.owner.opts.feed.update(this.live);
  }

  phase(p: Phase): void {
    if (!this.live || this.live.phase === p) return;
    this.live.phase = p;
    this.owner.opts.feed.update(this.live);
  }

  queued(lane: string): void {
    this.mark("queued", lane);
    this.phase("waiting");
  }

  placed(waitedMs: number): void {
    this.queueMs = Math.round(waitedMs);
    if (waitedMs > 0) this.mark("started");
  }

  sending(backend: string, model: string): void {
    this.backend = backend;
    this.target = model;
    this.mark("sent upstream", `${backend}/${model}`);
    if (this.live) {
      this.live.backend = backend;
      this.live.target = model;
    }
    this.phase("loading");
  }

  headers(): void {
    this.mark("headers");
    this.phase("reading the prompt");
  }

  /** The backend reported reading the prompt (`words`: "reading the prompt 12,000/20,000"). */
  progress(words: string): void {
    if (!this.live) return;
    this.live.phase = "reading the prompt";
    this.live.progress = words;
    this.owner.opts.feed.update(this.live);
  }

  firstToken(): void {
    if (this.firstTokenMs !== undefined) return;
    this.firstTokenMs = this.now();
    this.mark("first token");
    if (this.live) delete this.live.progress;
    this.phase("generating");
  }

  /** A usage report (partial: later values win). */
  usage(u: Partial<Usage>): void {
    Object.assign(this.usageSeen, u);
  }

  note(n: Note): void {
    this.notes.push(n);
  }

  /** The error the client is answered with. */
  failed(err: GatewayError): void {
    this.cause = err.message;
    this.errorKind = err.kind;
  }

  /** The client's request body (capture). */
  captureRequest(body: unknown): void {
    if (!this.capture || body === undefined) return;
    this.bodies ??= {};
    this.bodies.request = this.owner.scrub(JSON.stringify(body));
  }

  /** The body sent upstream (capture): the last one sent. */
  captureUpstream(body: string | Buffer): void {
    if (!this.capture) return;
    this.bodies ??= {};
    this.bodies.upstream = this.owner.scrub(typeof body === "string" ? body : body.toString("utf8"));
  }

  /** Text of the answer as the client got it (capture), up to a limit. */
  captureAnswer(text: string): void {
    if (!this.capture || this.answerChars >= ANSWER_CAPTURE_LIMIT) return;
    this.bodies ??= {};
    const room = ANSWER_CAPTURE_LIMIT - this.answerChars;
    const part = text.length > room ? text.slice(0, room) : text;
    this.answerChars += part.length;
    this.bodies.answer = (this.bodies.answer ?? "") + part;
  }

  /** Writes the trace (once), when the response has closed. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    const res = this.res;
    const gone = !res.writableFinished;
    const status = res.headersSent ? res.statusCode : null;
    const outcome = gone
      ? "client_gone"
      : (this.outcome ?? (status !== null && status >= 400 ? (this.errorKind ?? "error") : "ok"));
    const durationMs = this.now();
    this.mark("done");
    const u = this.usageSeen;
    const cached = u.cacheReadTokens;
    const tokensIn =
      u.inputTokens !== undefined || cached !== undefined ? (u.inputTokens ?? 0) + (cached ?? 0) : undefined;
    const tokensOut = u.outputTokens;
    // tokens/s: what was generated over the time from the first token to the end
    const genMs = this.firstTokenMs !== undefined ? durationMs - this.firstTokenMs : 0;
    const tps = tokensOut && genMs > 0 ? Math.round((tokensOut / genMs) * 10_000) / 10 : undefined;
    const socket = this.req.socket;
    const entry: RequestEntry = {
      id: this.id,
      at: this.at,
      route: this.route,
      surface: this.surface,
      client: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
      ...(this.model !== undefined ? { model: this.model } : {}),
      ...(this.backend !== undefined ? { backend: this.backend, target: this.target! } : {}),
      status,
      outcome,
      ...(this.cause !== undefined && outcome !== "ok" ? { cause: this.owner.scrub(this.cause) } : {}),
      ...(gone && this.cause === undefined
        ? { cause: "the client closed the connection before the answer ended" }
        : {}),
      ...(this.queueMs !== undefined ? { queueMs: this.queueMs } : {}),
      ...(this.firstTokenMs !== undefined ? { ttftMs: this.firstTokenMs } : {}),
      durationMs,
      ...(tokensIn !== undefined ? { tokensIn } : {}),
      ...(tokensOut !== undefined ? { tokensOut } : {}),
      ...(cached !== undefined ? { tokensCached: cached } : {}),
      ...(tps !== undefined ? { tokensPerSecond: tps } : {}),
      notes: this.notes,
      timeline: this.timeline,
      ...(this.bodies ? { bodies: this.bodies } : {}),
    };
    this.owner.write(this, entry);
  }
}
