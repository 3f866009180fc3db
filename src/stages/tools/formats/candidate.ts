/**
 * What every tool-call format shares: a candidate is the recogniser for one format, started by the
 * scanner where the format's tag (or line-start JSON, or fence) appears, and stepped as text
 * streams in until it accepts calls or rejects the text.
 */
import type { JsonTracker } from "./json-tracker.js";
import type { ToolSet } from "./tool-set.js";

/** The format a call was found in (reported with each rescued call). */
export type ToolFormat =
  | "hermes"
  | "qwen3_coder"
  | "llama3"
  | "mistral"
  | "json"
  | "json_fence"
  | "tool_calls"
  | "pythonic"
  | "tool_code"
  | "harmony";

/** What a format gives out before its calls besides them (Harmony's reasoning and preambles). */
export interface Lead {
  type: "text" | "thinking";
  text: string;
}

/** A call as written, before its arguments meet the schema. */
export interface CallDraft {
  name: string;
  args: Record<string, unknown>;
  repairs: string[];
}

/** A call found, its arguments checked against the tool's schema. */
export interface ScanCall {
  type: "call";
  name: string;
  input: Record<string, unknown>;
  format: ToolFormat;
  /** Repairs made (lenient parse and schema coercion), by kind. */
  repairs: string[];
  /** What still does not fit the schema (the call stands; the tool reports its own error). */
  problems: string[];
  /** Found inside a `<think>` block of the text. */
  thinking?: boolean;
}

/** What a candidate's recogniser needs from the scanner. */
export interface Env {
  tools: ToolSet;
  /**
   * Checks drafts against their schemas. `truncated`: the answer ended inside the call; then a
   * call missing a required argument is not trusted and undefined comes back.
   */
  finish(
    drafts: CallDraft[],
    format: ToolFormat,
    truncated: boolean,
    repairs: string[],
  ): ScanCall[] | undefined;
}

/**
 * A candidate's decision on the text held so far (which begins where the candidate began):
 * wait for more; accept calls that end at `end`; or reject, releasing `release` characters as
 * text (with `skip`: a JSON value whose rest must not trigger again; `fence`: what follows is
 * inside a code fence).
 */
export type Step =
  | { kind: "wait" }
  | { kind: "accept"; end: number; calls: ScanCall[]; lead?: Lead[] }
  | { kind: "reject"; release: number; skip?: JsonTracker; fence?: boolean };

export interface Candidate {
  step(buf: string, final: boolean): Step;
}

export const WAIT = { kind: "wait" } as const;
/** Not a call: give back the first character, so the rest is scanned again. */
export const REJECT_ONE: Step = { kind: "reject", release: 1 };

export const TAGS = {
  toolCall: "<tool_call>",
  toolCalls: "<tool_calls>",
  toolCallsEnd: "</tool_calls>",
  harmonyStart: "<|start|>",
  harmonyChannel: "<|channel|>",
  toolCallEnd: "</tool_call>",
  function: "<function=",
  functionEnd: "</function>",
  parameter: "<parameter=",
  pythonTag: "<|python_tag|>",
  mistral: "[TOOL_CALLS]",
  mistralArgs: "[ARGS]",
  mistralCallId: "[CALL_ID]",
  fence: "```",
} as const;

const WS = /\s/;

export function skipWs(s: string, i: number): number {
  while (i < s.length && WS.test(s[i]!)) i++;
  return i;
}

/** `s` from `i` could still grow into `word` (and is not it yet). */
export function couldBe(s: string, i: number, word: string): boolean {
  const rest = s.slice(i, i + word.length);
  return rest.length < word.length && word.startsWith(rest);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export type Read<T> =
  | { kind: "wait" }
  | { kind: "fail" }
  | ({ kind: "ok"; end: number; truncated: boolean } & T);

/** A body read into call drafts, not yet checked against the schemas. */
export type Drafts = Read<{ drafts: CallDraft[]; repairs: string[]; format: ToolFormat }>;
