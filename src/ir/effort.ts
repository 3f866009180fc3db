import type { ThinkingEffort, ThinkingRequest } from "./types.js";

/**
 * An effort as clients name it (OpenAI reasoning_effort, Anthropic output_config.effort) in the
 * IR's levels; undefined for one that is not an effort ("none" turns thinking off, decoded apart).
 */
export function effortOf(name: string): ThinkingEffort | undefined {
  switch (name) {
    case "minimal":
    case "low":
      return "low";
    case "medium":
      return "medium";
    case "high":
      return "high";
    case "xhigh":
    case "max":
      return "max";
    default:
      return undefined;
  }
}

/** The request's thinking with an effort set, where the name is one. */
export function withEffort(t: ThinkingRequest, name: string | undefined): ThinkingRequest {
  const effort = name === undefined ? undefined : effortOf(name);
  return effort ? { ...t, effort } : t;
}
