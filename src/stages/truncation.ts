import { contextOverflowError, GatewayError } from "../ir/errors.js";
import type { Event, EventStream, Request, Usage } from "../ir/types.js";
import type { StageContext } from "./types.js";

/** Prompts smaller than this are not judged by their count alone: too little to tell a cut from a miscount. */
const MIN_JUDGED = 256;
/** A server that reports fewer than this share of an exact count has cut the prompt. */
const CUT_BELOW_EXACT = 0.9;
/** The same against a calibrated estimate (before calibration, counts alone are not judged). */
const CUT_BELOW = 0.6;
/** Answers learned from before the estimate is trusted to judge. */
const CALIBRATED = 5;
/** A window learned from a cut is never taken below this. */
const MIN_LEARNED_WINDOW = 1024;

/**
 * Catches what a server does silently with a prompt too long for it, and makes it seen:
 * - an empty 200 answer (LM Studio's way to overflow) becomes an error the client can act on;
 * - far fewer prompt tokens reported than were sent (Ollama cuts the start of the prompt at its
 *   num_ctx) is a warning in the log and a counter, and the window is lowered to what the server
 *   really took, so the next request gets the overflow error and the client compacts;
 * - a server's own overflow error is reworded the way agent clients recognise.
 * It also calibrates the estimate from the counts the server reports. `start` is held back until
 * the answer has something in it, so an empty answer is still a proper HTTP error.
 */
export async function* truncation(
  events: EventStream,
  _req: Request,
  ctx: StageContext,
): AsyncGenerator<Event[]> {
  let held: Event[] = [];
  let answered = false;
  let judged = false;
  let output = 0;
  let reported = false;
  const usage = (u: Partial<Usage>) => {
    output = Math.max(output, u.outputTokens ?? 0);
    if (!reported && (u.inputTokens !== undefined || u.cacheReadTokens !== undefined)) {
      reported = true;
      ctx.promptTokens?.(u.inputTokens ?? 0, u.cacheReadTokens);
    }
    if (!judged && u.inputTokens) {
      judged = true;
      judge(u, ctx);
    }
  };
  try {
    for await (const batch of events) {
      if (answered) {
        for (const e of batch) if (e.type === "usage") usage(e.usage);
        yield batch;
        continue;
      }
      // until the answer has content, start and usage wait (an empty answer is still an error)
      const out: Event[] = [];
      for (const e of batch) {
        if (e.type === "usage") usage(e.usage);
        if (!answered) {
          if (e.type === "start" || e.type === "usage") {
            held.push(e);
            continue;
          }
          if (e.type === "stop" && output === 0) {
            const err = emptyAnswer(ctx);
            if (err) throw err;
          }
          answered = true;
          out.push(...held);
          held = [];
        }
        out.push(e);
      }
      if (out.length) yield out;
    }
    if (held.length) yield held;
  } catch (e) {
    throw reworded(e, answered, ctx);
  }
}

/**
 * What the server counted against what was sent. A cut is certain when the count stops exactly
 * at a window the model is known to have (its num_ctx, trained or served context) or fills the
 * whole window; likely when it falls far short of an exact or well-calibrated count. Certain
 * cuts are learned from; every cut is warned of and counted.
 */
function judge(usage: Partial<Usage>, ctx: StageContext): void {
  const sent = ctx.prompt;
  if (!sent) return;
  const { profile, state, log } = ctx;
  const input = usage.inputTokens ?? 0;
  const cached = (usage.cacheReadTokens ?? 0) + (usage.cacheWriteTokens ?? 0);
  const reported = input + cached;
  const { calibration } = state;
  const window = state.window;
  const known = [window, profile.numCtx, state.context?.trained, state.context?.served];
  const capped = sent.tokens > reported && known.includes(reported);
  const filled = window !== undefined && reported >= window && sent.tokens < window;
  const threshold = sent.exact ? CUT_BELOW_EXACT : calibration.samples >= CALIBRATED ? CUT_BELOW : 0;
  const short = sent.tokens >= MIN_JUDGED && reported < sent.tokens * threshold;
  if (!capped && !filled && !short) {
    if (!sent.exact) calibration.observe(sent.features, reported);
    return;
  }
  ctx.count?.("prompt_truncated");
  log.warn(
    { model: profile.alias, backend: profile.backend.name, sent: sent.tokens, counted: reported, window },
    `the backend cut the prompt silently: it took ${reported} tokens of ${sent.exact ? "" : "~"}${sent.tokens} sent; the start of the conversation (system prompt, tools) was lost and the answer may be nonsense`,
  );
  if (filled) {
    // the estimate fell short and the server filled its window: a lower bound still teaches
    calibration.observe(sent.features, reported);
    return;
  }
  if (capped || sent.exact) learnWindow(reported, `the backend cut a prompt at ${reported} tokens`, ctx);
}

/** A server that turned out to serve less than believed: later requests are kept inside that. */
function learnWindow(served: number, why: string, ctx: StageContext): void {
  const { profile, log } = ctx;
  if (served < MIN_LEARNED_WINDOW) return;
  const learned = ctx.state.learnWindow(served, why);
  if (learned)
    log.warn(
      { model: profile.alias, backend: profile.backend.name, window: served, was: learned.was },
      learned.warning,
    );
}

/** An answer with nothing in it: an overflow in disguise when the prompt was large. */
function emptyAnswer(ctx: StageContext): GatewayError | undefined {
  const sent = ctx.prompt;
  const window = ctx.state.window;
  const name = ctx.profile.backend.name;
  if (!sent) return undefined;
  // the smallest window the model may have: the one in use, or less where the server said less
  const served = ctx.state.context?.served;
  const limit = Math.min(window ?? Number.POSITIVE_INFINITY, served ?? Number.POSITIVE_INFINITY);
  const large = Number.isFinite(limit) ? sent.tokens >= limit / 2 : sent.tokens >= 4096;
  if (!large) {
    ctx.log.warn({ model: ctx.profile.alias, backend: name }, "the backend answered with nothing");
    return undefined;
  }
  ctx.count?.("empty_answer");
  return new GatewayError(
    "context_length",
    `prompt is too long for backend ${name}: it answered with an empty stream to a prompt of ~${sent.tokens} tokens${window !== undefined ? ` (window ${window})` : ""}, the way servers overflow silently`,
    { code: "context_length_exceeded", retryable: false },
  );
}

/** A server's overflow error in the words agent clients act on; an empty stream judged as above. */
function reworded(e: unknown, answered: boolean, ctx: StageContext): unknown {
  if (!(e instanceof GatewayError)) return e;
  if (e.code === "backend_stream_incomplete" && !answered) return emptyAnswer(ctx) ?? e;
  if (e.kind !== "context_length" || e.overflow) return e;
  const said = overflowIn(e.message);
  if (!said) {
    if (/prompt is too long/i.test(e.message)) return e;
    return new GatewayError("context_length", `prompt is too long: ${e.message}`, {
      code: "context_length_exceeded",
      retryable: false,
      ...(e.upstreamStatus !== undefined ? { upstreamStatus: e.upstreamStatus } : {}),
      cause: e,
    });
  }
  if (said.window !== undefined) learnWindow(said.window, `the backend's window is ${said.window}`, ctx);
  const max = said.prompt > said.max ? said.max : said.prompt - 1;
  return contextOverflowError(said.prompt, max);
}

interface SaidOverflow {
  prompt: number;
  /** The most the prompt could have been. */
  max: number;
  /** The server's whole window, when it said. */
  window?: number;
}

/** The numbers in the overflow errors of llama.cpp, vLLM, OpenAI and Anthropic. */
function overflowIn(message: string): SaidOverflow | undefined {
  let m = /request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)/.exec(message);
  if (m) return { prompt: +m[1]!, max: +m[2]!, window: +m[2]! };
  m =
    /is too large: (\d+)\. This model's maximum context length is (\d+) tokens and your request has (\d+) input tokens/.exec(
      message,
    );
  if (m) return { prompt: +m[3]!, max: +m[2]! - +m[1]!, window: +m[2]! };
  m =
    /maximum context length is (\d+) tokens\. However, you requested \d+ tokens \((\d+) in the messages, (\d+) in the completion\)/.exec(
      message,
    );
  if (m) return { prompt: +m[2]!, max: +m[1]! - +m[3]!, window: +m[1]! };
  m =
    /maximum context length is (\d+) tokens\. However, your (?:request has|messages resulted in) (\d+)/.exec(
      message,
    );
  if (m) return { prompt: +m[2]!, max: +m[1]!, window: +m[1]! };
  m = /prompt is too long: (\d+) tokens > (\d+) maximum/.exec(message);
  if (m) return { prompt: +m[1]!, max: +m[2]! };
  return undefined;
}
