/** What a route is, and what the gateway gives every route. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { GatewayConfig } from "../../config/types.js";
import type { Logger } from "../../log.js";
import type { Router } from "../../routing/router.js";
import type { Metrics } from "../metrics.js";
import type { RequestLog } from "../request-log.js";

/** What a reload came to: taken (and what only a restart changes), or refused and why. */
export type ReloadOutcome =
  | { ok: true; source: string; models: string[]; needsRestart: string[] }
  | { ok: false; error: string };

/** Answers one request; `body` is the parsed JSON body for a route that reads one. */
export type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  body: unknown,
  bodyBytes: number,
) => void | Promise<void>;

export interface Route {
  handler: Handler;
  /** Whether the route reads a JSON body. */
  body: boolean;
}

export interface RouteContext {
  config: GatewayConfig;
  router: Router;
  metrics: Metrics;
  /** Each request's trace: what the routes learn goes there, written once when it ends. */
  requests: RequestLog;
  log: Logger;
  /** How long to wait for the backend's first event before opening the stream and keeping it alive. */
  keepAliveAfterMs: number;
  /** Interval of keep-alive pings while the backend is silent. */
  pingIntervalMs: number;
  /** The most text a non-streaming answer may hold, in characters (server.answer_limit_mb). */
  answerLimitChars?: number | undefined;
  /** Lines for /health when nothing is configured: how to add a backend. */
  hints?: string[] | undefined;
  /** Re-reads the config file (POST /admin/reload); none when there is no file to read. */
  reload?: (() => Promise<ReloadOutcome>) | undefined;
}
