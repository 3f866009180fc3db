/**
 * One error type for the whole gateway. Surfaces turn it into their client's dialect; backends
 * turn upstream failures into it. `kind` says what went wrong in terms both dialects can express.
 */
export type ErrorKind =
  | "invalid_request"
  | "context_length"
  | "authentication"
  | "permission"
  | "not_found"
  | "request_too_large"
  /** The client did not send its request in time (server.receive_timeout_ms). */
  | "request_timeout"
  | "rate_limit"
  | "api_error"
  /** The backend cannot be reached (refused, reset, host unknown) or its circuit is open: 503, which clients retry. */
  | "unavailable"
  | "overloaded"
  | "timeout";

const STATUS: Record<ErrorKind, number> = {
  invalid_request: 400,
  context_length: 400,
  authentication: 401,
  permission: 403,
  not_found: 404,
  request_too_large: 413,
  request_timeout: 408,
  rate_limit: 429,
  api_error: 500,
  unavailable: 503,
  overloaded: 529,
  timeout: 504,
};

export interface GatewayErrorOptions {
  /** The request field the error is about (OpenAI's `param`). */
  param?: string;
  /** A machine-readable code (OpenAI's `code`, e.g. `model_not_found`). */
  code?: string;
  /** Seconds the client should wait before retrying (Retry-After). */
  retryAfter?: number;
  /** Whether another attempt (retry, replica, fallback) may succeed. */
  retryable?: boolean;
  /** The upstream's status, when the error came from a backend. */
  upstreamStatus?: number;
  /** context_length: the prompt's tokens and the most that fits, for each dialect's own wording. */
  overflow?: ContextOverflow;
  cause?: unknown;
}

/** A prompt that does not fit: `promptTokens` > `maxTokens` (the window less the output reserved). */
export interface ContextOverflow {
  promptTokens: number;
  maxTokens: number;
  /** What to change so it fits (a first turn, which compacting cannot shorten): said after the standard words. */
  advice?: string;
}

export class GatewayError extends Error {
  readonly kind: ErrorKind;
  readonly param?: string;
  readonly code?: string;
  readonly retryAfter?: number;
  readonly retryable: boolean;
  readonly upstreamStatus?: number;
  readonly overflow?: ContextOverflow;

  constructor(kind: ErrorKind, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.kind = kind;
    this.param = options.param;
    this.code = options.code;
    this.retryAfter = options.retryAfter;
    this.upstreamStatus = options.upstreamStatus;
    this.overflow = options.overflow;
    this.retryable =
      options.retryable ??
      (kind === "api_error" ||
        kind === "unavailable" ||
        kind === "overloaded" ||
        kind === "rate_limit" ||
        kind === "timeout");
  }

  get status(): number {
    return STATUS[this.kind];
  }
}

/**
 * The overflow error agent clients recognise and compact on. The message is Anthropic's
 * (`prompt is too long: N tokens > M maximum`); the OpenAI surface words it as OpenAI does.
 */
export function contextOverflowError(promptTokens: number, maxTokens: number, advice?: string): GatewayError {
  return new GatewayError(
    "context_length",
    `prompt is too long: ${promptTokens} tokens > ${maxTokens} maximum${advice ? `. ${advice}` : ""}`,
    {
      overflow: advice ? { promptTokens, maxTokens, advice } : { promptTokens, maxTokens },
      code: "context_length_exceeded",
      retryable: false,
    },
  );
}

/** Any thrown value as a GatewayError; unknown failures become `api_error` with their message. */
export function toGatewayError(e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new GatewayError("api_error", `internal error: ${message}`, { cause: e, retryable: false });
}
