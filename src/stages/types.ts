import type { Features } from "../context/estimate.js";
import type { Signal } from "../ir/signal.js";
import type { EventStream, Request } from "../ir/types.js";
import type { Logger } from "../log.js";
import type { ModelProfile, ToolMode } from "../ir/contract.js";
import type { ModelState } from "../routing/model-state.js";

/**
 * What a note is about: its label in `clawbridge_reshaped_total`. A closed list: a note never
 * names its subject from the request (a field's name, a block's type, a message's index), or a
 * client could grow the metrics without bound; those go in its detail.
 */
export const NOTE_SUBJECTS = [
  // a field at the top of the body that this surface does not know
  "ignored_field",
  // a content or system block of a type the surface does not know
  "ignored_block",
  // a tool of a type that exists only on the client's own API (Anthropic's server-side tools)
  "ignored_tool",
  "cache_control",
  // a system message folded into the system prompt
  "system",
  "messages",
  "thinking",
  "response_format",
  "images",
  "tool history",
  "tools",
  "tool_choice",
  "context",
  "max_tokens",
  // sampling settings the backend's wire has no place for (the IR's names)
  "temperature",
  "topP",
  "topK",
  "stop",
  "seed",
  "presencePenalty",
  "frequencyPenalty",
] as const;

export type NoteSubject = (typeof NOTE_SUBJECTS)[number];

/**
 * Something a stage changed or dropped on the way: counted by its subject in the metrics, logged
 * with its detail (what was done, and why).
 */
export interface Note {
  subject: NoteSubject;
  detail: string;
}

/** What a stage knows of the request it works on: one per target tried. */
export interface StageContext {
  /** The model's profile: read-only, resolved from config and discovery. */
  profile: ModelProfile;
  /** What is learned of the model while serving (its window as served, a refusal of tools, the token calibration). */
  state: ModelState;
  log: Logger;
  /** Things changed or dropped on the way, for the log and the counters. */
  notes: Note[];
  /** The client's request as decoded, before any stage reshaped it. */
  client: Request;
  /** Aborted when the client goes away. */
  signal: Signal;
  /** Set by the tools stage: how tool calls travel for this request. */
  toolMode?: ToolMode;
  /** Set by the context stage: the prompt tokens of the request as sent, for the response stages. */
  prompt?: PromptCount;
  /**
   * A note made by a response stage about the answer (the request stages' notes have gone out
   * by then): to the request's trace and the counters at once.
   */
  answerNote?(note: Note): void;
  /** Counts of things stages did to the answer (rescued calls, repairs), for the metrics. */
  count?(what: string, n?: number): void;
  /** The prompt tokens the backend reported: read afresh, and held by its prompt cache (undefined: it does not say). */
  promptTokens?(evaluated: number, cached: number | undefined): void;
}

/** The prompt tokens of a request: counted by the server (exact) or estimated. */
export interface PromptCount {
  tokens: number;
  exact: boolean;
  /** What the prompt is made of, for learning from what the backend reports. */
  features: Features;
}

/** A request stage reshapes the request for its target. */
export type RequestStage = (req: Request, ctx: StageContext) => Request | Promise<Request>;

/**
 * A response stage transforms the event stream, a batch at a time (it yields no empty batch).
 * `req` is the request as the backend got it.
 */
export type ResponseStage = (events: EventStream, req: Request, ctx: StageContext) => EventStream;
