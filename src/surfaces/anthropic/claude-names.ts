/**
 * Claude's model names, which the Anthropic dialect's clients send whatever the gateway serves:
 * Claude Code and the SDKs ask for dated ids (`claude-sonnet-4-5-20250929`), older names
 * (`claude-3-5-sonnet-20241022`) or newer ones than the config lists. Where the config has
 * aliases for Claude's tiers (`claude-sonnet-4-5`, as `clawbridge init` writes them), such a name
 * means the alias of its family (opus, sonnet, haiku), not a 404 and not the catch-all's model.
 */

const FAMILIES = ["opus", "sonnet", "haiku"] as const;
export type ClaudeFamily = (typeof FAMILIES)[number];

/** The tier a Claude model name belongs to, or undefined for a name that is not Claude's. */
export function claudeFamily(name: string): ClaudeFamily | undefined {
  const segments = name.toLowerCase().split("-");
  if (segments[0] !== "claude") return undefined;
  return FAMILIES.find((f) => segments.includes(f));
}

/**
 * The alias among `aliases` that a Claude name not among them means: one of the same family,
 * the one sharing the most leading `-` parts with the name, and of those one that the name
 * begins with whole (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`,
 * `claude-sonnet-4-20250514` → `claude-sonnet-4` where both are aliases); undefined when the
 * name is not Claude's or its family has no alias.
 */
export function claudeTierAlias(name: string, aliases: Iterable<string>): string | undefined {
  const family = claudeFamily(name);
  if (!family) return undefined;
  const parts = name.toLowerCase().split("-");
  let best: string | undefined;
  let bestScore = -1;
  for (const alias of aliases) {
    if (claudeFamily(alias) !== family) continue;
    const own = alias.toLowerCase().split("-");
    let n = 0;
    while (n < own.length && own[n] === parts[n]) n++;
    const score = 2 * n + (n === own.length ? 1 : 0);
    if (score > bestScore) {
      best = alias;
      bestScore = score;
    }
  }
  return best;
}
