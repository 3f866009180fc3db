/**
 * The fast paths, behind one door.
 *
 * clawbridge has one simple way to do everything on the request path: parse the body with
 * JSON.parse, check it with zod, build the upstream body as objects and JSON.stringify it, parse
 * every streamed payload with JSON.parse. A few shortcuts stand beside that simple way, each
 * giving exactly what it gives, and each kept only while the benchmark shows it clearly pays
 * (docs/fast-paths.md has the figures and the verdicts). This module is where they are named,
 * explained and switched: `fastPath(name)` is asked where the choice is made, and
 * `CLAWBRIDGE_FAST_PATHS=0` in the environment turns every one of them off, so that the whole
 * test suite runs on the simple way as well (`npm run test:unit:simple`).
 *
 * The reuse design. An agent resends its whole conversation every turn; what a body shares with
 * the last ones, byte for byte, is the same value as then. The parse cache (`parse-cache`) takes
 * the top-level members and `messages` elements a body shares with a recent one from that one's
 * parse, so that one object is read by several requests, now and later. That is safe on one rule,
 * written here and kept in one place each:
 *
 *   A request body as parsed (`server/parse-cache.ts`) is frozen all the way down, and so are the
 *   messages of the request decoded from it (`surfaces/parts.ts`), whatever the body's size and
 *   whichever way it was parsed. Nothing on the request path changes them in place (an attempt
 *   throws a TypeError in every test, not only in those with large bodies); a stage that needs a
 *   change makes a new object.
 *
 * Nothing else takes a value by its identity: the body writer finds long strings again by their
 * content and tool definitions by value (`backends/json-body.ts`). Keeping the IR decoded from a
 * shared message, and the JSON text encoded from it, by identity did not pay, and was taken out.
 *
 * Fast paths that do not reuse anything across requests — a hand-written check that a body is
 * well-formed before zod (`plain-check`), the upstream body written straight to bytes
 * (`body-writer`), a stream payload read from a template of the last one (`templates`) — are
 * held to the simple way by differential tests (test/backends/json-body.test.ts,
 * test/surfaces/plain-check.test.ts, test/server/parse-cache.test.ts, test/backends/chunk-decode.test.ts)
 * that run whichever way the switch is set.
 */

/** Every fast path there is, with where it lives. */
export const FAST_PATHS = {
  /** server/parse-cache.ts: a body's bytes shared with a recent body are not parsed again. */
  "parse-cache": "server/parse-cache.ts",
  /** surfaces/*\/decode.ts with surfaces/plain.ts: a well-formed body is checked by hand, not by zod. */
  "plain-check": "surfaces/plain.ts",
  /** backends/json-body.ts: the upstream body written straight to bytes, long strings and tools kept. */
  "body-writer": "backends/json-body.ts",
  /** backends/json-body.ts: upstream bodies written into pooled buffers, given back once sent. */
  "body-pool": "backends/json-body.ts",
  /** backends/json-template.ts: a stream payload that differs from the last only in its token's text. */
  templates: "backends/json-template.ts",
  /** ir/signal.ts: a light abort signal instead of AbortController's. */
  "light-abort": "ir/signal.ts",
} as const;

export type FastPath = keyof typeof FAST_PATHS;

const ALL = Object.keys(FAST_PATHS) as FastPath[];

/**
 * Which fast paths a setting turns on. Unset, empty, `1` or `on`: all; `0` or `off`: none;
 * otherwise a comma-separated list: names turn those on (and no others), `-name` turns that one
 * off (and leaves the rest on). Unknown names are an error: a typo would silently measure the wrong thing.
 */
export function parseFastPaths(setting: string | undefined): Set<FastPath> {
  const s = (setting ?? "").trim().toLowerCase();
  if (s === "" || s === "1" || s === "on" || s === "true") return new Set(ALL);
  if (s === "0" || s === "off" || s === "false") return new Set();
  const items = s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  const minus = items.filter((x) => x.startsWith("-")).map((x) => x.slice(1));
  const plus = items.filter((x) => !x.startsWith("-"));
  for (const name of [...minus, ...plus])
    if (!(name in FAST_PATHS))
      throw new Error(
        `CLAWBRIDGE_FAST_PATHS: no fast path named "${name}" (there are: ${ALL.join(", ")}; or 0 / 1)`,
      );
  const on = new Set<FastPath>(plus.length ? (plus as FastPath[]) : ALL);
  for (const name of minus) on.delete(name as FastPath);
  return on;
}

let enabled: Set<FastPath> | undefined;

/** Whether a fast path is on (read from CLAWBRIDGE_FAST_PATHS the first time it is asked). */
export function fastPath(name: FastPath): boolean {
  enabled ??= parseFastPaths(process.env.CLAWBRIDGE_FAST_PATHS);
  return enabled.has(name);
}

/** The fast paths that are on, in their order (for the log at start-up). */
export function fastPathsOn(): FastPath[] {
  return ALL.filter((n) => fastPath(n));
}

/**
 * Tests: sets which fast paths are on, as CLAWBRIDGE_FAST_PATHS would; returns what puts the
 * setting back. A test of a fast path itself turns it on this way, so that it tests it whichever
 * way the suite runs.
 */
export function setFastPaths(setting: string): () => void {
  const before = enabled;
  enabled = parseFastPaths(setting);
  return () => {
    enabled = before;
  };
}
