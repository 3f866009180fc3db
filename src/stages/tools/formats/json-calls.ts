/** The calls a parsed JSON value makes, in any of the shapes models write them. */
import type { Tool } from "../../../ir/types.js";
import { parseJsonLenient } from "../repair.js";
import { type CallDraft, isObject } from "./candidate.js";
import { CALL_KEYS } from "./json-tracker.js";
import type { ToolSet } from "./tool-set.js";

const ARG_KEYS = ["arguments", "parameters", "input", "args"] as const;

/**
 * The calls a parsed JSON value makes: one object or an array of them, each
 * `{name, arguments|parameters|input|args}` or OpenAI's `{type: "function", function: {..}}`.
 * All or nothing: an array with one element that is not a call is not a call at all.
 *
 * `loose` (inside a tool-call tag, where the tag already says "this is a call"): arguments may
 * be missing (a tool without parameters) or written flat beside the name.
 * Strict (bare JSON, fences): every key must be a call key, and arguments must be present.
 */
export function draftsFromJson(
  value: unknown,
  tools: ToolSet,
  nativeArgKey: (typeof ARG_KEYS)[number],
  loose: boolean,
): CallDraft[] | undefined {
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) return undefined;
  const out: CallDraft[] = [];
  for (const item of items) {
    const d = draftFromObject(item, tools, nativeArgKey, loose);
    if (!d) return undefined;
    out.push(d);
  }
  return out;
}

function draftFromObject(
  item: unknown,
  tools: ToolSet,
  nativeArgKey: string,
  loose: boolean,
): CallDraft | undefined {
  if (!isObject(item)) return undefined;
  // OpenAI's shape: {"type": "function", "function": {"name": .., "arguments": ".."}}
  if (isObject(item.function) && typeof item.name !== "string") {
    if (!loose && Object.keys(item).some((k) => !CALL_KEYS.has(k))) return undefined;
    return draftFromObject(item.function, tools, "arguments", loose);
  }
  if (typeof item.name !== "string") return undefined;
  const resolved = tools.resolve(item.name);
  if (!resolved) return undefined;
  const repairs = [...resolved.repairs];
  const keys = Object.keys(item);
  if (!loose && keys.some((k) => !CALL_KEYS.has(k))) return undefined;

  const argKey = ARG_KEYS.find((k) => k in item);
  let args: unknown;
  if (argKey) {
    args = item[argKey];
    if (argKey !== nativeArgKey) repairs.push(`${argKey}_for_${nativeArgKey}`);
  } else if (loose) {
    // {"name": "get_weather", "city": "Paris"}: the arguments written beside the name
    const flat = Object.fromEntries(Object.entries(item).filter(([k]) => k !== "name" && k !== "id"));
    if (Object.keys(flat).length) repairs.push("flat_arguments");
    args = flat;
  } else return undefined;

  if (args === null || args === undefined || args === "") args = {};
  if (typeof args === "string") {
    // arguments as a JSON string inside the JSON (OpenAI's wire habit)
    const parsed = parseJsonLenient(args);
    if (!parsed || !isObject(parsed.value)) return undefined;
    repairs.push("arguments_as_string", ...parsed.repairs);
    args = parsed.value;
  }
  if (!isObject(args)) return undefined;
  // A tool *definition* ({name, description, parameters: {type: "object", properties}}) printed
  // by a model explaining its tools is not a call.
  if (looksLikeSchema(args) && !schemaHasProperty(resolved.tool, "properties")) return undefined;
  return { name: resolved.tool.name, args, repairs };
}

function looksLikeSchema(args: Record<string, unknown>): boolean {
  return args.type === "object" && isObject(args.properties);
}

function schemaHasProperty(tool: Tool, prop: string): boolean {
  const props = tool.inputSchema.properties;
  return isObject(props) && prop in props;
}
