import type { GatewayError } from "../ir/errors.js";
import type { Event, Request, Response } from "../ir/types.js";

/** Encodes one response's event stream as the client's SSE, one event at a time. */
export interface StreamEncoder {
  /** What the client gets at once, before the backend has said anything. */
  open(): string;
  event(ev: Event): string;
  /** A keep-alive the client's parser ignores. */
  ping(): string;
  /** An error after the stream started: an event in the client's dialect, then the end. */
  error(err: GatewayError): string;
  /** Whether the stream has been properly finished (stop or error written). */
  readonly finished: boolean;
}

export interface ResponseMeta {
  /** The id the client sees. */
  id: string;
  /** The model name the client asked for: what it sees back. */
  model: string;
  /** Estimated input tokens, until the backend reports them. */
  inputTokensEstimate: number;
}

export interface ErrorAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** What a client speaks: decode its request, encode our answer and our errors in its dialect. */
export interface Surface {
  readonly name: "anthropic" | "openai" | "responses";
  /** What the ids of its answers begin with (`msg_`, `chatcmpl-`, `resp_`). */
  readonly idPrefix: string;
  decode(body: unknown): Request;
  streamEncoder(req: Request, meta: ResponseMeta): StreamEncoder;
  encodeResponse(res: Response, req: Request, meta: ResponseMeta): string;
  encodeError(err: GatewayError): ErrorAnswer;
}
