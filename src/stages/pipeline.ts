import type { Request } from "../ir/types.js";
import { context } from "./context.js";
import { format } from "./format.js";
import { formatCheck } from "./format-check.js";
import { normalize } from "./normalize.js";
import { thinking } from "./thinking.js";
import { toolStage } from "./tools/mode.js";
import { rescue } from "./tools/rescue.js";
import { truncation } from "./truncation.js";
import type { RequestStage, ResponseStage, StageContext } from "./types.js";

// The stages every request and answer go through, in order. A new behaviour is a new stage
// here; each reads the model profile and does nothing where it does not apply.

/** The stages that reshape a request into what its backend is sent (and what count_tokens counts). */
export const shapingStages: readonly RequestStage[] = [toolStage, normalize, thinking, format];

/** Every request stage: the shaping ones, then the context stage that keeps it inside the window. */
export const requestStages: readonly RequestStage[] = [...shapingStages, context];

/** Applied innermost first: the first stage sees the backend's events. */
export const responseStages: readonly ResponseStage[] = [truncation, rescue, formatCheck];

/**
 * Runs request stages in order. A stage that had nothing to wait for is not awaited (each await
 * is a turn of the event loop): when none had, the answer is the request itself, not a promise.
 */
export function runStages(
  stages: readonly RequestStage[],
  req: Request,
  ctx: StageContext,
): Request | Promise<Request> {
  for (let i = 0; i < stages.length; i++) {
    const r = stages[i]!(req, ctx);
    if (r instanceof Promise) return r.then((next) => runStages(stages.slice(i + 1), next, ctx));
    req = r;
  }
  return req;
}
