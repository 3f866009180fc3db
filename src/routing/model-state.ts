import { Calibration } from "../context/calibrate.js";
import type { ContextInfo, ModelProfile, ToolModeSetting } from "../ir/contract.js";

/**
 * What is learned about one model on one backend while serving, beside its read-only profile:
 * the window the server really took (found by truncation detection), a refusal of tools, the
 * calibration of the token estimate, a refusal of thinking. Changed only through its methods; stages read it through
 * their context (`ctx.model`), where they read the profile for what was resolved at the start.
 */
export class ModelState {
  /** The token estimate's costs, corrected from the counts the backend reports. */
  readonly calibration = new Calibration();
  private current: ModelProfile;
  /** A window lower than the profile's, learned from what the server took. */
  private learned: { window: number; context: ContextInfo } | undefined;
  private refused = false;
  private noThinking = false;
  private readonly said = new Set<string>();

  constructor(profile: ModelProfile) {
    this.current = profile;
  }

  /** What was resolved from config and discovery. */
  get profile(): ModelProfile {
    return this.current;
  }

  /**
   * The model resolved again (discovery answered): its new profile. A window learned before is
   * forgotten (discovery says what the server serves now); a refusal of tools is not.
   */
  resolved(profile: ModelProfile): void {
    this.current = profile;
    this.learned = undefined;
  }

  /** The window requests are kept inside: the profile's, or less where the server took less. */
  get window(): number | undefined {
    return this.learned?.window ?? this.current.contextWindow;
  }

  /** Where the window in use came from. */
  get context(): ContextInfo | undefined {
    return this.learned?.context ?? this.current.context;
  }

  /**
   * The server took only `served` tokens of a prompt (it cut the rest): later requests are kept
   * inside that. Returns the window it replaces, or undefined where it is not lower.
   */
  learnWindow(served: number, why: string): { was: number; warning: string } | undefined {
    const was = this.window;
    if (was === undefined || served >= was) return undefined;
    const warning = `${why}: the window is ${served} from now on, not ${was}`;
    const before = this.context;
    this.learned = {
      window: served,
      context: Object.freeze({
        ...(before ?? {}),
        served,
        servedFrom: "what the backend took",
        source: "truncation",
        why,
        warnings: Object.freeze([...(before?.warnings ?? []), warning]),
      }),
    };
    return { was, warning };
  }

  /** The model answered that it does not support tools: from now on they are emulated. */
  refuseTools(): void {
    this.refused = true;
  }

  /** Native tool support: none once refused, else what the profile says. */
  get supportsTools(): boolean | undefined {
    return this.refused ? false : this.current.supportsTools;
  }

  /** The tool mode: a model that refused tools has them emulated where native calls were set. */
  get toolMode(): ToolModeSetting | undefined {
    const mode = this.current.toolMode;
    return this.refused && (mode === "native" || mode === "rescue") ? "emulate" : mode;
  }

  /** The model answered that it cannot think: thinking is no longer sent to it. */
  refuseThinking(): void {
    this.noThinking = true;
  }

  /** Whether the model can think: not once refused, else what the profile says (undefined: unknown). */
  get supportsThinking(): boolean | undefined {
    return this.noThinking ? false : this.current.supportsThinking;
  }

  /** True the first time something is said of this model (a warning given once, not per request). */
  firstTime(what: string): boolean {
    if (this.said.has(what)) return false;
    this.said.add(what);
    return true;
  }
}
