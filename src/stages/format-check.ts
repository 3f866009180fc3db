/**
 * The format check: an answer to a structured-output request (OpenAI response_format, Anthropic
 * output_config.format, Responses text.format) is checked against the asked JSON schema, where
 * the backend constrained it or not, and what it finds is said: a note on the request (the
 * journal, the dashboard, `clawbridge_reshaped_total`) and a warning in the log with the first
 * things wrong.
 *
 * For a client that does not stream, the answer's text is held to the end and, when it is not the
 * asked shape but holds a value that is (a model that wrapped its JSON in a ```json fence or a
 * sentence, as unconstrained models do), the client gets that value: the repair is noted too. A
 * streamed answer has already gone out: it is checked, never changed. A turn that ends in a tool
 * call is not the answer and is not checked, nor is one cut at its token limit (it is noted).
 *
 * Schemas are interpreted (@cfworker/json-schema), never compiled to code: a client's schema is
 * data. One the validator cannot read leaves the answer unchecked, and the note says so.
 */
import { type OutputUnit, Validator } from "@cfworker/json-schema";
import type { Event, EventStream } from "../ir/types.js";
import type { ResponseStage, StageContext } from "./types.js";

/** The things wrong that a warning lists. */
const LISTED = 3;

export const formatCheck: ResponseStage = (events, _req, ctx) => {
  const asked = ctx.client.format;
  if (!asked) return events;
  return check(events, asked.schema ?? { type: "object" }, !ctx.client.stream, ctx);
};

/** What a check of one answer's text found. */
export type Verdict =
  | { ok: true }
  | { ok: true; repaired: string }
  | { ok: false; problems: string[] }
  | { ok: "unchecked"; why: string };

/** The text against the schema; `repair`: look for a value of the asked shape inside the text. */
export function judge(text: string, schema: Record<string, unknown>, repair: boolean): Verdict {
  let validator: Validator;
  try {
    // a copy: the validator marks up the schema it is given, and the request's is frozen (shared)
    validator = new Validator(structuredClone(schema) as never, "2020-12", false);
  } catch (e) {
    return { ok: "unchecked", why: `the schema cannot be read (${(e as Error).message})` };
  }
  const test = (value: unknown): string[] => {
    try {
      const r = validator.validate(value);
      return r.valid ? [] : describe(r.errors);
    } catch (e) {
      return [`the schema cannot be applied (${(e as Error).message})`];
    }
  };
  const parsed = parse(text);
  if (parsed.ok) {
    const problems = test(parsed.value);
    return problems.length ? { ok: false, problems } : { ok: true };
  }
  if (repair) {
    const found = candidates(text).find((c) => test(c.value).length === 0);
    if (found) return { ok: true, repaired: found.text };
  }
  return { ok: false, problems: [`not JSON: ${parsed.error}`] };
}

function parse(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

interface Candidate {
  text: string;
  value: unknown;
}

/**
 * JSON values inside a text, in the order a model puts them: the body of a ```json (or bare ```)
 * fence, then the span from the first `{` or `[` to the last matching `}` or `]`.
 */
function candidates(text: string): Candidate[] {
  const spans: string[] = [];
  for (const m of text.matchAll(/```[a-zA-Z0-9_-]*[ \t]*\r?\n([\s\S]*?)\r?\n?```/g)) spans.push(m[1]!.trim());
  for (const [open, close] of [
    ["{", "}"],
    ["[", "]"],
  ] as const) {
    const a = text.indexOf(open);
    const b = text.lastIndexOf(close);
    if (a >= 0 && b > a) spans.push(text.slice(a, b + 1));
  }
  const out: Candidate[] = [];
  for (const s of spans) {
    const p = parse(s);
    if (p.ok) out.push({ text: s, value: p.value });
  }
  return out;
}

/** The validator's findings as a reader wants them: where, and what. */
function describe(errors: OutputUnit[]): string[] {
  // the innermost findings say what is wrong; the outer ones only that something below is
  const inner = errors.filter(
    (e) => !errors.some((o) => o !== e && o.instanceLocation.startsWith(`${e.instanceLocation}/`)),
  );
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of inner.length ? inner : errors) {
    const where = e.instanceLocation.replace(/^#/, "") || "/";
    const line = `${where}: ${e.error}`;
    if (!seen.has(line)) {
      seen.add(line);
      out.push(line);
    }
  }
  return out;
}

async function* check(
  events: EventStream,
  schema: Record<string, unknown>,
  hold: boolean,
  ctx: StageContext,
): AsyncGenerator<Event[]> {
  let text = "";
  /** Text events held back (a client that does not stream): released as they were, or repaired. */
  let held: Event[] | undefined = hold ? [] : undefined;
  let called = false;
  let stop: Extract<Event, { type: "stop" }> | undefined;
  const release = (): Event[] => {
    const out = held ?? [];
    held = undefined;
    return out;
  };
  for await (const batch of events) {
    const out: Event[] = [];
    for (const e of batch) {
      if (e.type === "textDelta") {
        text += e.text;
        if (held) {
          held.push(e);
          continue;
        }
      } else if (e.type === "toolCallStart") {
        // a tool turn, not the answer: what was held goes out in its place, unchecked
        called = true;
        out.push(...release());
      } else if (e.type === "stop") {
        stop = e;
        if (!called) {
          const verdict = settle(text, schema, e, held !== undefined, ctx);
          if (verdict && "repaired" in verdict) held = [{ type: "textDelta", text: verdict.repaired }];
        }
        out.push(...release());
      }
      out.push(e);
    }
    if (out.length) yield out;
  }
  // a stream that ended without its stop: what was held goes out as it came
  if (!stop && held?.length) yield release();
}

/** Judges the finished answer and says what was found. */
function settle(
  text: string,
  schema: Record<string, unknown>,
  stop: Extract<Event, { type: "stop" }>,
  repair: boolean,
  ctx: StageContext,
): Verdict | undefined {
  const who = { model: ctx.profile.alias, backend: ctx.profile.backend.name };
  if (stop.reason === "max_tokens") {
    ctx.answerNote?.({
      subject: "response_format",
      detail: "the answer was cut at its token limit: not checked against the asked shape",
    });
    return undefined;
  }
  if (stop.reason === "refusal") return undefined;
  const verdict = judge(text, schema, repair);
  if (verdict.ok === true) {
    if ("repaired" in verdict) {
      ctx.answerNote?.({
        subject: "response_format",
        detail:
          "the answer held the asked JSON inside other text (a fence or a sentence): the client got the JSON alone",
      });
      ctx.log.info(who, "structured output: the JSON the model wrapped in other text was taken out of it");
    }
    return verdict;
  }
  if (verdict.ok === "unchecked") {
    ctx.answerNote?.({ subject: "response_format", detail: `answer not checked: ${verdict.why}` });
    return verdict;
  }
  const listed = verdict.problems.slice(0, LISTED);
  const more = verdict.problems.length - listed.length;
  const detail = `the answer is not the asked shape: ${listed.join("; ")}${more > 0 ? ` (and ${more} more)` : ""}`;
  ctx.answerNote?.({ subject: "response_format", detail });
  ctx.log.warn({ ...who, problems: listed }, `structured output: ${detail}`);
  return verdict;
}
