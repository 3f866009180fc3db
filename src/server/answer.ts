/** Answering a request whole: a JSON body, or an error in the dialect the request was in. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { GatewayError } from "../ir/errors.js";
import type { Logger } from "../log.js";
import { anthropicSurface } from "../surfaces/anthropic/index.js";
import { openaiSurface } from "../surfaces/openai/index.js";
import type { Surface } from "../surfaces/types.js";

/** Which dialect an error on this request should be in. */
export function surfaceFor(req: IncomingMessage): Surface {
  const url = req.url ?? "";
  if (url.startsWith("/v1/messages") || url.startsWith("/messages")) return anthropicSurface;
  if (url.startsWith("/v1/chat") || url.startsWith("/chat")) return openaiSurface;
  return req.headers["anthropic-version"] ? anthropicSurface : openaiSurface;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  contentType = "application/json",
): void {
  const body = typeof value === "string" ? value : JSON.stringify(value);
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** An error in the surface's dialect; a response already under way is ended instead. */
export function sendError(
  surface: Surface,
  res: ServerResponse,
  err: GatewayError,
  log: Logger,
  outcome: string,
): void {
  if (res.headersSent || res.destroyed) {
    if (!res.destroyed) res.end();
    return;
  }
  const answer = surface.encodeError(err);
  res.writeHead(answer.status, { ...answer.headers, "content-length": Buffer.byteLength(answer.body) });
  res.end(answer.body);
  if (outcome === "invalid") log.debug({ status: answer.status, err: err.message }, "rejected a request");
}
