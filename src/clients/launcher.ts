/**
 * What `clawbridge launch <client>` needs to know of one agent client: how to find it, how to install it, how
 * much window it needs, and how to point it at the gateway for one run only (environment, command-line overrides
 * or a temporary config file; never a change to the user's own settings). Each client's file exports one.
 */

/** The gateway and model a launched client is pointed at. */
export interface LaunchTarget {
  /** The gateway's base URL, without /v1. */
  baseUrl: string;
  /** What the client presents as its key (the master key, or any value when there is none). */
  apiKey: string;
  /** The model the client uses. */
  model: string;
  /** Its window, when known. */
  contextWindow?: number;
  /** Every model the gateway serves, with its window when known. */
  models: Array<{ id: string; contextWindow?: number }>;
  /** A folder of its own for this run (removed after it): where a temporary config goes. */
  scratch: string;
  /** The environment the client would otherwise get. */
  env: NodeJS.ProcessEnv;
}

/** How to start the client for one run. */
export interface LaunchPlan {
  /** Put before the user's own arguments (e.g. `-c` overrides). */
  args: string[];
  /** Set (over the inherited environment) for the client's process. */
  env: Record<string, string>;
}

export interface LaunchClient {
  /** The name `launch` takes. */
  name: string;
  /** What a person calls it. */
  title: string;
  /** The executable looked for on PATH. */
  command: string;
  /** The npm package that installs it. */
  npmPackage: string;
  /**
   * The smallest window it works in: its own system prompt and tool definitions alone take most of a
   * small one. Below it `launch` warns.
   */
  minWindow: number;
  /** What takes the window (said in the warning). */
  windowNeed: string;
  /** The model to use when none is named: from the ids served. */
  defaultModel(ids: string[]): string;
  plan(t: LaunchTarget): LaunchPlan;
  /** What this client in particular should be warned of for a model. */
  warnings?(model: string, contextWindow?: number): string[];
}
