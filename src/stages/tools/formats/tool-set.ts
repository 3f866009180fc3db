import type { Tool } from "../../../ir/types.js";

/** The tools offered in this request, by name. Only these names make a call. */
export class ToolSet {
  private readonly byName = new Map<string, Tool>();

  constructor(tools: readonly Tool[]) {
    for (const t of tools) this.byName.set(t.name, t);
  }

  get size(): number {
    return this.byName.size;
  }

  /**
   * The offered tool a written name means: exact, or with the `functions.` namespace some models
   * put in front (an OpenAI habit). Nothing looser: a near miss is not a call.
   */
  resolve(name: string): { tool: Tool; repairs: string[] } | undefined {
    const exact = this.byName.get(name);
    if (exact) return { tool: exact, repairs: [] };
    const m = /^(?:functions|tools)\.(.+)$/.exec(name);
    const bare = m ? this.byName.get(m[1]!) : undefined;
    return bare ? { tool: bare, repairs: ["name_prefix"] } : undefined;
  }

  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }
}
