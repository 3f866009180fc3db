import { countPrompt, estimatePrompt } from "../context/count.js";
import { messageFeatures } from "../context/estimate.js";
import { dropRounds } from "../context/fit.js";
import { windowAdvice } from "../context/window.js";
import { contextOverflowError } from "../ir/errors.js";
import type { Message, Request } from "../ir/types.js";
import type { ModelProfile } from "../ir/contract.js";
import type { PromptCount, StageContext } from "./types.js";

/** The server is asked for an exact count only when the estimate comes this close to the window. */
const EXACT_FROM = 0.7;
/** Output kept free by default: this many tokens, or an eighth of a small window. */
const DEFAULT_RESERVE = 1024;
/**
 * drop-oldest frees this share of the window beyond what it must (a low-water mark): the cut then
 * stays put, and the server's cache with it, for the next turns until the conversation has grown
 * by as much again.
 */
const LOW_WATER = 0.25;

/**
 * Keeps the request inside the model's window. Counts the prompt as it will be sent (system
 * prompt, tool definitions and emulated tool text included): estimated, or counted by the server
 * near the limit. When prompt + the output kept free exceed the window, answers with the
 * overflow error agent clients compact on — or, where the profile says `drop-oldest`, drops the
 * oldest turns and says so. Clamps the output limit to what is left.
 */
export function context(req: Request, ctx: StageContext): Request | Promise<Request> {
  const { profile, state } = ctx;
  const window = state.window;
  const estimate = estimatePrompt(req, state.calibration);
  ctx.prompt = estimate;
  if (window === undefined) return req;
  const reserve = reserveFor(req, profile, window);
  const exact = estimate.tokens + reserve > window * EXACT_FROM && profile.backend.countTokens !== undefined;
  // well inside the window (the common case): settled here, without waiting for anything
  if (!exact && estimate.tokens + reserve <= window) return clampOutput(req, estimate, window, ctx);
  return fit(req, ctx, window, reserve, estimate, exact);
}

/** Near or past the window: the server's own count where it can give one, then the fit policy. */
async function fit(
  req: Request,
  ctx: StageContext,
  window: number,
  reserve: number,
  estimate: PromptCount,
  exact: boolean,
): Promise<Request> {
  const { profile, state } = ctx;
  let count = estimate;
  if (exact) {
    count = await countPrompt(req, state, true, ctx.log, estimate);
    ctx.prompt = count;
  }
  if (count.tokens + reserve <= window) return clampOutput(req, count, window, ctx);
  if (profile.fitPolicy !== "drop-oldest") throw overflow(req, ctx, count.tokens, window, reserve);

  // drop-oldest: whole rounds go from the oldest after the pinned task, in steps of a quarter of
  // the window (so the cut moves rarely); a server that counts checks the cut
  const tokensOf = (m: Message) => state.calibration.estimate(messageFeatures(m));
  const step = Math.max(1, Math.floor(window * LOW_WATER));
  let fitted = req;
  let dropped = 0;
  let need = count.tokens + reserve - window;
  for (let attempt = 0; attempt < 3; attempt++) {
    const cut = dropRounds(req.messages, tokensOf, need, step);
    if (!cut) break;
    fitted = { ...req, messages: cut.messages };
    dropped = cut.dropped;
    count = await countPrompt(fitted, state, count.exact, ctx.log);
    if (count.tokens + reserve <= window) break;
    // the estimate was short: what is still over is needed on top
    need = Math.max(need + 1, cut.freed + count.tokens + reserve - window);
  }
  ctx.prompt = count;
  if (count.tokens + reserve > window) throw overflow(req, ctx, count.tokens, window, reserve);
  const said = `${dropped} oldest message(s) dropped to fit the window of ${window} tokens (prompt now ${count.tokens}${count.exact ? "" : " estimated"}); the system prompt, the task and the latest turn kept`;
  ctx.notes.push({ subject: "context", detail: said });
  ctx.log.warn({ model: profile.alias, backend: profile.backend.name, dropped, window }, said);
  return clampOutput(fitted, count, window, ctx);
}

/**
 * The overflow error. A first turn (no answer in it yet) that does not fit cannot be compacted by
 * the client: the error also names the setting to raise.
 */
function overflow(req: Request, ctx: StageContext, tokens: number, window: number, reserve: number) {
  const first = !req.messages.some((m) => m.role === "assistant");
  const advice = first ? windowAdvice(ctx.profile, ctx.state.context, window) : undefined;
  return contextOverflowError(tokens, window - reserve, advice);
}

/** Output tokens that must stay free: what the client asked for, at most the profile's reserve. */
function reserveFor(req: Request, profile: ModelProfile, window: number): number {
  const reserve = profile.reserveOutputTokens ?? Math.min(DEFAULT_RESERVE, Math.floor(window / 8));
  const asked = req.limits.maxOutputTokens;
  return Math.max(1, asked !== undefined ? Math.min(asked, reserve) : reserve);
}

function clampOutput(req: Request, count: PromptCount, window: number, ctx: StageContext): Request {
  const room = window - count.tokens;
  const asked = req.limits.maxOutputTokens;
  if (asked === undefined || asked <= room) return req;
  ctx.notes.push({
    subject: "max_tokens",
    detail: `${asked} clamped to ${room}, what is left of the ${window}-token window after a prompt of ${count.tokens}`,
  });
  return { ...req, limits: { ...req.limits, maxOutputTokens: room } };
}
