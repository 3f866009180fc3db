import type { z } from "zod";

/**
 * A config problem as the user reads it: the field's path in the file's own terms, what was found,
 * what is allowed and, where it is plain, the fix ("write 8192", "did you mean context_window?").
 * Made from zod's issues (which carry the path and, for enums, the options) and the value as read.
 */
export interface Problem {
  /** The path of the node to point at (for a misspelled key: the key itself). */
  path: PropertyKey[];
  /** The field as written in messages: `models.m.tool_mode`. */
  field: string;
  message: string;
  /** Point at the key rather than its value (a key that should not be there). */
  atKey?: boolean;
  /** A required key missing where a misspelling of it stands (reported once, as the misspelling). */
  slip?: string;
}

type Issue = z.core.$ZodIssue;

/** Every problem zod found, the deepest first within one union branch, in the file's order otherwise. */
export function describeIssues(issues: readonly Issue[], raw: unknown, schema: z.ZodType): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) collect(issue, [], raw, schema, out);
  const unknown = new Set(out.filter((p) => p.atKey).map((p) => p.field));
  return out.filter((p) => !(p.slip && unknown.has(p.slip)));
}

function collect(issue: Issue, base: PropertyKey[], raw: unknown, schema: z.ZodType, out: Problem[]): void {
  const path = [...base, ...(issue.path as PropertyKey[])];
  if (issue.code === "invalid_union") {
    // the branch whose shape the value has (an object for a mapping, an array for a list) says what is wrong in it
    const fitting = issue.errors.filter(
      (branch) =>
        !(branch.length === 1 && branch[0]!.code === "invalid_type" && branch[0]!.path.length === 0),
    );
    if (fitting.length > 0) {
      for (const inner of fitting[0]!) collect(inner, path, raw, schema, out);
      return;
    }
    const expected = issue.errors.map((b) => (b[0] as { expected?: string }).expected ?? "");
    out.push(
      problem(path, `expected ${expected.map(kindOfValue).join(" or ")}, got ${shown(valueAt(raw, path))}`),
    );
    return;
  }
  const value = valueAt(raw, path);
  switch (issue.code) {
    case "unrecognized_keys": {
      const known = keysAt(schema, path);
      for (const key of issue.keys) {
        out.push({ ...problem([...path, key], unknownKey(key, known)), atKey: true });
      }
      return;
    }
    case "invalid_type": {
      const slip = value === undefined ? slipFor(raw, path) : undefined;
      const p = problem(path, wrongType(issue.expected, value, path, slip));
      out.push(slip ? { ...p, slip: fieldOf([...path.slice(0, -1), slip]) } : p);
      return;
    }
    case "invalid_value": {
      const allowed = issue.values.map((v) => String(v));
      const near = typeof value === "string" ? closest(value, allowed) : undefined;
      out.push(
        problem(
          path,
          `${value === undefined ? "required" : `${shown(value)} is not allowed`}: one of ${allowed.join(", ")}${
            near ? ` (did you mean ${near}?)` : ""
          }`,
        ),
      );
      return;
    }
    case "invalid_format":
      out.push(problem(path, issue.format === "url" ? badUrl(value) : `${shown(value)}: ${issue.message}`));
      return;
    case "too_small":
    case "too_big":
      out.push(problem(path, outOfRange(issue, value)));
      return;
    case "custom":
      // a key the entry does not take, said so where the entry was checked (a backend's kind)
      if (issue.params?.unknownKey) {
        out.push({ ...problem(path, issue.message), atKey: true });
        return;
      }
      out.push(problem(path, issue.message));
      return;
    default:
      out.push(problem(path, value === undefined && path.length ? "required" : issue.message));
  }
}

function problem(path: PropertyKey[], message: string): Problem {
  return { path, field: fieldOf(path) || "(top level)", message };
}

function fieldOf(path: PropertyKey[]): string {
  return path.map(String).join(".");
}

/** A misspelled key: the nearest allowed one, or what is allowed there when none is near. */
export function unknownKey(key: string, known: readonly string[] | undefined): string {
  if (!known?.length) return "unknown setting";
  const near = closest(key, known);
  return near
    ? `unknown setting (did you mean ${near}?)`
    : `unknown setting; known here: ${known.join(", ")}`;
}

/** A key beside a missing required one that is a misspelling of it. */
function slipFor(raw: unknown, path: PropertyKey[]): string | undefined {
  const parent = valueAt(raw, path.slice(0, -1));
  const key = String(path.at(-1) ?? "");
  if (!parent || typeof parent !== "object" || Array.isArray(parent)) return undefined;
  return Object.keys(parent).find((k) => k !== key && closest(k, [key]));
}

function wrongType(expected: string, value: unknown, path: PropertyKey[], slip: string | undefined): string {
  if (value === undefined || value === null)
    return `required (${kindOfValue(expected)})${slip ? `: is '${slip}' meant to be ${String(path.at(-1))}?` : ""}`;
  const got = `expected ${kindOfValue(expected)}, got ${shown(value)}`;
  if ((expected === "number" || expected === "int") && typeof value === "string") {
    const fix = numberFor(value, String(path.at(-1) ?? ""));
    return fix !== undefined ? `${got}: write ${fix}` : got;
  }
  if (expected === "boolean" && typeof value === "string") return `${got}: write true or false`;
  if (expected === "string" && (typeof value === "number" || typeof value === "boolean"))
    return `${got}: quote it ("${value}")`;
  return got;
}

function kindOfValue(expected: string): string {
  switch (expected) {
    case "number":
      return "a number";
    case "int":
      return "a whole number";
    case "boolean":
      return "true or false";
    case "string":
      return "text";
    case "object":
      return "a mapping of settings";
    case "array":
      return "a list";
    default:
      return expected;
  }
}

const SIZES: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
const DURATIONS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
};

/**
 * The number meant by text such as "8k" (8192), "30s" in a `_ms` field (30000), "8MB" in a `_mb`
 * field (8), or "4096" in quotes; undefined when it is not plainly a number.
 */
export function numberFor(text: string, key: string): number | undefined {
  const t = text.trim().replace(/_/g, "");
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(t);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  if (key.endsWith("_ms") || key.endsWith("_s")) {
    const ms = DURATIONS_MS[unit];
    if (ms === undefined) return undefined;
    return key.endsWith("_ms") ? n * ms : (n * ms) / 1000;
  }
  const size = unit.replace(/i?b$/, "");
  if (key.endsWith("_mb") && size === "m") return n;
  if (key.endsWith("_gb") && size === "g") return n;
  if (key.endsWith("_mb") && size === "g") return n * 1024;
  const f = SIZES[size];
  return f === undefined ? undefined : Math.round(n * f);
}

function badUrl(value: unknown): string {
  if (typeof value !== "string") return `expected a URL, got ${shown(value)}`;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && /^[\w.-]+(:\d+)?(\/.*)?$/.test(value))
    return `'${value}' has no scheme: write http://${value}`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1];
  if (scheme && !/^https?$/i.test(scheme))
    return `'${value}': expected an http:// or https:// URL (e.g. http://127.0.0.1:11434)`;
  return `'${value}' is not a URL: expected one such as http://127.0.0.1:11434`;
}

function outOfRange(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig, value: unknown): string {
  const small = issue.code === "too_small";
  const bound = Number(small ? issue.minimum : (issue as z.core.$ZodIssueTooBig).maximum);
  if (issue.origin === "array" || issue.origin === "set")
    return small ? `must list at least ${bound} item(s)` : `must list at most ${bound} item(s)`;
  if (issue.origin === "string")
    return small
      ? bound <= 1
        ? "must not be empty"
        : `must be at least ${bound} characters`
      : issue.message;
  const words = small
    ? issue.inclusive
      ? `at least ${bound}`
      : `more than ${bound}`
    : issue.inclusive
      ? `at most ${bound}`
      : `less than ${bound}`;
  return `${shown(value)} is out of range: must be ${words}`;
}

function shown(value: unknown): string {
  if (typeof value === "string") return `'${value}'`;
  if (Array.isArray(value)) return "a list";
  if (value && typeof value === "object") return "a mapping";
  return String(value);
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let v = raw;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** The keys a strict object takes at `path` in the schema (undefined where the schema does not say). */
export function keysAt(schema: z.ZodType, path: PropertyKey[]): string[] | undefined {
  let s: unknown = schema;
  for (let i = 0; ; i++) {
    s = unwrap(s);
    const def = defOf(s);
    if (!def) return undefined;
    if (i === path.length) {
      if (def.type === "object")
        // strict (a `never` catch-all) or plain: its keys are all it takes; loose: it does not say
        return def.catchall === undefined || defOf(def.catchall)?.type === "never"
          ? Object.keys(def.shape as object)
          : undefined;
      if (def.type === "union")
        for (const o of def.options as unknown[]) {
          const k = keysAt(o as z.ZodType, []);
          if (k) return k;
        }
      return undefined;
    }
    const step = path[i]!;
    if (def.type === "object") s = (def.shape as Record<PropertyKey, unknown>)[step];
    else if (def.type === "record") s = def.valueType;
    else if (def.type === "array") s = def.element;
    else if (def.type === "union") {
      const rest = path.slice(i);
      for (const o of def.options as unknown[]) {
        const k = keysAt(o as z.ZodType, rest);
        if (k) return k;
      }
      return undefined;
    } else return undefined;
  }
}

function defOf(s: unknown): Record<string, unknown> | undefined {
  return (s as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod?.def;
}

function unwrap(s: unknown): unknown {
  for (;;) {
    const def = defOf(s);
    if (!def) return s;
    if (def.type === "optional" || def.type === "nullable" || def.type === "default") s = def.innerType;
    else if (def.type === "pipe") s = def.in;
    else return s;
  }
}

/** The allowed word nearest to `word`, when it is near enough to be a slip. */
export function closest(word: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  const w = word.toLowerCase();
  for (const a of allowed) {
    const d = distance(w, a.toLowerCase());
    if (d < bestD) {
      best = a;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  const near = bestD <= Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  const prefix = best.toLowerCase().startsWith(w) || w.startsWith(best.toLowerCase());
  return near || (prefix && Math.min(w.length, best.length) >= 3) ? best : undefined;
}

/** Edits between two words, a swap of neighbours counting as one (optimal string alignment). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
