import { kindOf } from "../backends/registry.js";
import type { BackendConfig, TargetConfig } from "../config/types.js";
import { chooseWindow } from "../context/window.js";
import type { Backend, DiscoveredModel, ModelProfile, Timeouts } from "../ir/contract.js";
import { mergeTimeouts } from "./timeouts.js";

/** Where a model is served: its backend object, the backend's config, the top level's time limits. */
export interface Place {
  backend: Backend;
  config: BackendConfig | undefined;
  timeouts: Partial<Timeouts> | undefined;
}

/**
 * The one mapping from configuration to a profile: the target's settings as they were read (the
 * config's fields are the profile's, `ModelSettings`), over the defaults, with what is resolved
 * from the backend and discovery — the window, tool support, memory, time limits. Frozen.
 */
export function profileOf(
  alias: string,
  target: TargetConfig,
  at: Place,
  discovered?: DiscoveredModel,
): ModelProfile {
  const { backend: _, timeouts, ...settings } = target;
  const window = chooseWindow({
    ...(target.contextWindow !== undefined ? { configuredWindow: target.contextWindow } : {}),
    ...(target.numCtx !== undefined ? { configuredNumCtx: target.numCtx } : {}),
    ...(at.config?.memoryBytes !== undefined ? { memoryBytes: at.config.memoryBytes } : {}),
    ...(discovered ? { discovered } : {}),
    perRequest: discovered?.windowPerRequest ?? kindOf(at.backend.kind)?.windowPerRequest ?? false,
  });
  return freeze({
    ...settings,
    alias,
    backend: at.backend,
    dropParams: target.dropParams ?? true,
    supportsTools: target.supportsTools ?? discovered?.tools,
    supportsThinking: target.supportsThinking ?? discovered?.thinking,
    supportsVision: target.supportsVision ?? discovered?.vision,
    contextWindow: window.window,
    numCtx: window.numCtx,
    context: Object.freeze({ ...window.info, warnings: Object.freeze([...window.info.warnings]) }),
    memoryBytes: at.config?.memoryBytes,
    timeouts: Object.freeze(mergeTimeouts(at.timeouts, at.config?.timeouts, timeouts)),
  });
}

/** The profile of a model a backend lists and the config does not name: served under its own name. */
export function discoveredProfile(d: DiscoveredModel, at: Place): ModelProfile {
  return profileOf(d.name, { backend: at.backend.name, model: d.name }, at, d);
}

/** The profile frozen, without the fields nothing set. */
function freeze(p: ModelProfile): ModelProfile {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (v !== undefined) out[k] = v;
  if (p.extraBody) Object.freeze(p.extraBody);
  return Object.freeze(out) as ModelProfile;
}
