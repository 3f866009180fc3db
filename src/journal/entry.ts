/**
 * One request as the gateway saw it: what the request line says, what the journal keeps, what the
 * live feed hands a dashboard. Written once, when the client has its answer or has gone.
 */
import type { Note } from "../stages/types.js";

/** Where a request is while it runs (the live feed). */
export type Phase = "received" | "waiting" | "loading" | "reading the prompt" | "generating";

/** A moment in a request's life, in ms from when it was received. */
export interface TimelineEvent {
  event: "received" | "queued" | "started" | "sent upstream" | "headers" | "first token" | "done";
  ms: number;
  /** What the event concerns: the target a request was sent to, the lane it waited in. */
  detail?: string;
}

/** The bodies of a request, kept only with `journal.capture` on; credentials redacted. */
export interface CapturedBodies {
  /** The client's request, as it sent it (JSON). */
  request?: string;
  /** The last request sent upstream (JSON, as the backend received it). */
  upstream?: string;
  /** The answer as the client got it (JSON, or the event stream's text). */
  answer?: string;
}

export interface RequestEntry {
  /** The gateway's id for the request (`req_…`); the answer's own id is in `answerId`. */
  id: string;
  /** When it was received, ms since the epoch. */
  at: number;
  /** `METHOD /path`. */
  route: string;
  /** The client's dialect: anthropic, openai, responses. */
  surface: string;
  /** The client's address and port. */
  client: string;
  /** The model the client asked for. */
  model?: string;
  /** Where it was served: the last target tried. */
  backend?: string;
  target?: string;
  /** The HTTP status the client got; null when it left before any. */
  status: number | null;
  /** `ok`, an error kind (`not_found`, `timeout`…), `client_gone`, `incomplete`. */
  outcome: string;
  /** Why it failed, in plain words. */
  cause?: string;
  queueMs?: number;
  ttftMs?: number;
  durationMs: number;
  tokensIn?: number;
  tokensOut?: number;
  tokensCached?: number;
  tokensPerSecond?: number;
  /** What the stages changed, with why. */
  notes: Note[];
  timeline: TimelineEvent[];
  bodies?: CapturedBodies;
}

/** A request in flight, as the live feed shows it. */
export interface LiveRequest {
  id: string;
  at: number;
  surface: string;
  model?: string;
  backend?: string;
  target?: string;
  phase: Phase;
  /** How far the phase has come, in words, where the backend says (llama.cpp: "reading the prompt 12,000/20,000"). */
  progress?: string;
}
