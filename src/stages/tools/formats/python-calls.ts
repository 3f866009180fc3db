/**
 * Python call syntax, as several formats write tool calls: `name(key="value", n=3)`. Shared by
 * Llama 3's built-in tools (`<|python_tag|>name.call(..)`), Llama 3.2's pythonic lists
 * (`[a(..), b(..)]`) and Gemma's ```` ```tool_code ```` blocks.
 */
import { parseJsonLenient } from "../repair.js";

/** One `name(kwargs)` read from the text. */
export type PythonCall =
  | { kind: "ok"; name: string; args: Record<string, unknown>; end: number }
  /** The text so far could still become a call: its closing parenthesis has not come. */
  | { kind: "wait" }
  | { kind: "fail" };

const NAME = /^[A-Za-z_][\w.]*/;

/**
 * The call `name(k=v, ...)` starting at `i` (no blanks before it). Only keyword arguments with
 * literal values make a call: positional arguments or expressions are code, not a call.
 */
export function readPythonCall(s: string, i: number): PythonCall {
  if (i >= s.length) return { kind: "wait" };
  const m = NAME.exec(s.slice(i, i + 200));
  if (!m) return { kind: "fail" };
  const open = i + m[0].length;
  if (open >= s.length) return m[0].length < 200 ? { kind: "wait" } : { kind: "fail" };
  if (s[open] !== "(") return { kind: "fail" };
  const close = closingParen(s, open);
  if (close < 0) return { kind: "wait" };
  const args = parsePythonKwargs(s.slice(open + 1, close));
  if (!args) return { kind: "fail" };
  return { kind: "ok", name: m[0], args, end: close + 1 };
}

/** The index of the `)` matching the `(` at `open`, or -1 while it has not come. */
export function closingParen(s: string, open: number): number {
  let depth = 0;
  let quote = "";
  for (let i = open; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return i;
  }
  return -1;
}

/**
 * Parses Python-style keyword arguments (`query="x", n=3, flag=True`). Values are Python
 * literals, read leniently as JSON. Returns undefined for anything else (positional arguments,
 * expressions): not a call we can stand behind.
 */
export function parsePythonKwargs(src: string): Record<string, unknown> | undefined {
  const args: Record<string, unknown> = {};
  let i = 0;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  for (;;) {
    ws();
    if (i >= src.length) return args;
    const key = /^[A-Za-z_]\w*/.exec(src.slice(i));
    if (!key) return undefined;
    i += key[0].length;
    ws();
    if (src[i] !== "=") return undefined;
    i++;
    ws();
    const end = pythonValueEnd(src, i);
    if (end === undefined) return undefined;
    const parsed = parseJsonLenient(src.slice(i, end));
    if (!parsed) return undefined;
    args[key[0]] = parsed.value;
    i = end;
    ws();
    if (i >= src.length) return args;
    if (src[i] !== ",") return undefined;
    i++;
  }
}

/** Where the Python value starting at `i` ends: the next top-level comma, or the end. */
function pythonValueEnd(src: string, i: number): number | undefined {
  let depth = 0;
  let quote: string | undefined;
  for (; i < src.length; i++) {
    const c = src[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) return i;
  }
  return quote ? undefined : i;
}
