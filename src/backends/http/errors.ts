import type http from "node:http";
import { type ErrorKind, GatewayError } from "../../ir/errors.js";

/**
 * What an upstream failure means, from how it failed: a connection that could not be made, a
 * stream broken off, or an HTTP error status and the server's message. Most of it the status
 * says; where the message says more (a model that cannot take tools, a prompt over the window),
 * it is read against a table of the real messages: each backend kind keeps its servers' in its
 * own folder (`<kind>/errors.ts`, declared as the kind's `errors`), and `ANY_SERVER` below holds
 * the wordings any server may use.
 */

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
 * What a server's message tells beyond its status: a model that cannot take tools (the tools stage
 * learns from it: the model is switched to emulated tools and the request tried again), a prompt
 * over the context window (reworded so that agent clients compact), or a plain refusal that must
 * not be taken for either.
 */
export type UpstreamMeaning =
  | "tools_unsupported"
  | "thinking_unsupported"
  | "context_length"
  | "invalid_request";

/** A message a server really sends, and where that is known from. */
export interface SeenMessage {
  /** The server, as its users know it (not a kind: a kind is a wire, many servers speak it). */
  server: string;
  status: number;
  /** The message as `upstreamMessage` takes it from the body. */
  message: string;
  /** Where it is from: the file of the server's source, or the page of its docs, that says it. */
  source: string;
}

/** One way servers say something. */
export interface ErrorPattern {
  means: UpstreamMeaning;
  /** The statuses it is read on: "error" for any of 400 and up. */
  status: "error" | readonly number[];
  match: RegExp;
  /** The real messages it is there for: the tests hold every one to it. */
  seen: readonly SeenMessage[];
}

/** A kind's patterns, the first that matches wins; `ANY_SERVER` is read after them. */
export type ErrorTable = readonly ErrorPattern[];

/** Wordings any server may use (an OpenAI-compatible server nobody wrote a table for). */
export const ANY_SERVER: ErrorTable = [
  {
    means: "tools_unsupported",
    status: "error",
    match: /tool(s| calling| use)? (is |are )?not supported/i,
    seen: [],
  },
  {
    means: "thinking_unsupported",
    status: "error",
    match: /does not support thinking/i,
    seen: [],
  },
  {
    means: "context_length",
    status: [400, 422],
    match: /context|too long|exceed|n_ctx|maximum.*tokens/i,
    seen: [],
  },
];

/** What the message means by `table` (then `ANY_SERVER`), or undefined: its status says it all. */
export function meaningOf(
  status: number,
  message: string,
  table: ErrorTable = [],
): UpstreamMeaning | undefined {
  for (const t of [table, ANY_SERVER])
    for (const p of t) {
      const applies = p.status === "error" ? status >= 400 : p.status.includes(status);
      if (applies && p.match.test(message)) return p.means;
    }
  return undefined;
}

/** The GatewayError for an upstream error status, with the server's own message. */
export function upstreamError(
  backend: string,
  status: number,
  text: string,
  headers: http.IncomingHttpHeaders = {},
  table: ErrorTable = [],
): GatewayError {
  const message = upstreamMessage(text);
  const retryAfterHeader = headers["retry-after"];
  const retryAfter = typeof retryAfterHeader === "string" ? Number(retryAfterHeader) || undefined : undefined;
  const meaning = meaningOf(status, message, table);
  if (meaning === "tools_unsupported") {
    // The tools stage learns from this: the model is switched to emulated tools and retried.
    return new GatewayError("invalid_request", `backend ${backend} answered ${status}: ${message}`, {
      upstreamStatus: status,
      retryable: false,
      code: "tools_unsupported",
    });
  }
  if (meaning === "thinking_unsupported" && status < 500) {
    // Routing learns from this: thinking is no longer sent to the model, and the request is retried.
    return new GatewayError("invalid_request", `backend ${backend} answered ${status}: ${message}`, {
      upstreamStatus: status,
      retryable: false,
      code: "thinking_unsupported",
    });
  }
  let kind: ErrorKind;
  let retryable: boolean;
  if (status === 400 || status === 422) {
    kind = meaning === "context_length" ? "context_length" : "invalid_request";
    retryable = false;
  } else if (status === 401 || status === 403) {
    return new GatewayError(
      "api_error",
      `backend ${backend} refused clawbridge's credentials (${status}): ${message}`,
      { upstreamStatus: status, retryable: true, code: "backend_auth" },
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
