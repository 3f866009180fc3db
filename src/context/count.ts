import type { Backend } from "../ir/contract.js";
import type { Request } from "../ir/types.js";
import type { Logger } from "../log.js";
import type { ModelState } from "../routing/model-state.js";
import type { PromptCount } from "../stages/types.js";
import type { Calibration } from "./calibrate.js";
import { requestFeatures } from "./estimate.js";

/** After a server failed to count, it is not asked again for this long. */
const RETRY_COUNT_AFTER_MS = 60_000;
const countFailedAt = new WeakMap<Backend, number>();

/** The calibrated estimate of a request's prompt tokens: no server asked, nothing awaited. */
export function estimatePrompt(req: Request, calibration: Calibration): PromptCount {
  const features = requestFeatures(req);
  return { tokens: calibration.estimate(features), exact: false, features };
}

/**
 * The prompt tokens of a request as it will be sent: the calibrated estimate, or — when `exact`
 * is asked and the backend can tokenize — the server's own count (which also calibrates the
 * estimate). A server that fails to count leaves the estimate standing.
 */
export async function countPrompt(
  req: Request,
  model: ModelState,
  exact: boolean,
  log?: Logger,
  /** The estimate of this same request, when it was made already. */
  estimated?: PromptCount,
): Promise<PromptCount> {
  const estimate = estimated ?? estimatePrompt(req, model.calibration);
  const { features } = estimate;
  const { profile } = model;
  const backend = profile.backend;
  if (!exact || !backend.countTokens) return estimate;
  const failed = countFailedAt.get(backend);
  if (failed !== undefined && Date.now() - failed < RETRY_COUNT_AFTER_MS) return estimate;
  try {
    const tokens = await backend.countTokens(req, profile);
    model.calibration.observe(features, tokens);
    return { tokens, exact: true, features };
  } catch (e) {
    countFailedAt.set(backend, Date.now());
    log?.warn(
      { backend: backend.name, err: (e as Error)?.message ?? String(e) },
      "the backend could not count the prompt; using the estimate",
    );
    return estimate;
  }
}
