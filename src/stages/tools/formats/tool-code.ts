/**
 * Gemma's ```` ```tool_code ```` blocks: Python calls, one a line, maybe wrapped in `print(..)`
 * as Gemma's prompt guide writes them:
 *
 *     ```tool_code
 *     print(get_weather(city="Paris"))
 *     ```
 *
 * The fence candidate hands the block's body here once its closing fence has come.
 */
import type { CallDraft } from "./candidate.js";
import { readPythonCall } from "./python-calls.js";
import type { ToolSet } from "./tool-set.js";

export const TOOL_CODE_LANG = "tool_code";

/** The calls a tool_code block's body makes: every line a call to an offered tool, or nothing. */
export function toolCodeDrafts(body: string, tools: ToolSet): CallDraft[] | undefined {
  const drafts: CallDraft[] = [];
  for (const raw of body.split("\n")) {
    let line = raw.trim();
    if (!line) continue;
    const printed = /^print\s*\(([\s\S]*)\)$/.exec(line);
    if (printed) line = printed[1]!.trim();
    const c = readPythonCall(line, 0);
    if (c.kind !== "ok") return undefined;
    if (line.slice(c.end).trim().replace(/;$/, "")) return undefined;
    const resolved = tools.resolve(c.name);
    if (!resolved) return undefined;
    drafts.push({ name: resolved.tool.name, args: c.args, repairs: resolved.repairs });
  }
  return drafts.length ? drafts : undefined;
}
