import type { Request, ThinkingEffort } from "../ir/types.js";
import type { StageContext } from "./types.js";

/**
 * Thinking, as the model can: a model known not to think (discovery, a profile's
 * `supports_thinking`, or the server's refusal learned while serving) is sent no thinking at all —
 * the client's request for it is dropped and noted, never a 400. Where the wire has an effort knob,
 * a budget the client gave becomes an effort.
 */
export function thinking(req: Request, ctx: StageContext): Request {
  const t = req.thinking;
  if (t.enabled === undefined && t.effort === undefined && t.budgetTokens === undefined) return req;
  if (ctx.state.supportsThinking === false) {
    if (t.enabled) {
      ctx.notes.push({
        subject: "thinking",
        detail: "not sent (the model cannot think); it answers without reasoning",
      });
      if (ctx.state.firstTime("thinking dropped"))
        ctx.log.info(
          { model: ctx.profile.alias, backend: ctx.profile.backend.name },
          "the model cannot think: clients' thinking requests are dropped for it",
        );
    }
    return { ...req, thinking: {} };
  }
  if (
    t.enabled &&
    t.effort === undefined &&
    t.budgetTokens !== undefined &&
    ctx.profile.backend.caps.thinkingEffort
  )
    return { ...req, thinking: { ...t, effort: effortOfBudget(t.budgetTokens) } };
  return req;
}

/** A thinking budget in tokens as an effort level: Claude Code's 31,999 is high. */
export function effortOfBudget(budget: number): ThinkingEffort {
  if (budget <= 4096) return "low";
  if (budget <= 16384) return "medium";
  return "high";
}
