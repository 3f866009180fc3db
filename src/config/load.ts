import { readFileSync } from "node:fs";
import { type Document, LineCounter, isMap, isNode, isScalar, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, type Where, checkReferences } from "./check.js";
import { describeIssues } from "./issues.js";
import { importLiteLLM } from "./litellm.js";
import { kindOf } from "../backends/registry.js";
import { NativeConfigSchema, LiteLLMConfigSchema } from "./schema.js";
import { DEFAULT_BODY_LIMIT, DEFAULT_PORT, type GatewayConfig } from "./types.js";

export { ConfigError };

/** The end of a path that names a key's own place in the file, not its value's. */
const KEY = Symbol("key");

/** Reads and validates a config file: clawbridge's own format or a LiteLLM config.yaml, unchanged. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the config file (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new ConfigError(`${file}:${pos.line}:${pos.col}: not valid YAML: ${e.message.split("\n")[0]}`);
  }
  const raw = substituteEnv(doc.toJS() ?? {}, file, env);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(`${file}: the config must be a mapping (key: value) at the top level`);
  }
  const where = (path: PropertyKey[]) => locate(doc, lines, file, path);
  if ("model_list" in raw) {
    const parsed = validate(LiteLLMConfigSchema, raw, where);
    return importLiteLLM(parsed, file, where, env);
  }
  const c = validate(NativeConfigSchema, raw, where);
  const backends = Object.entries(c.backends ?? {}).map(([name, b]) => ({
    name,
    kind: b.kind,
    url:
      kindOf(b.kind)?.inProcessUrl ??
      b.url ??
      fail(
        where(["backends", name]),
        `backends.${name}.url`,
        "required: where the server answers (e.g. url: http://127.0.0.1:11434)",
      ),
    ...(b.api_key ? { apiKey: b.api_key } : {}),
    ...(b.headers ? { headers: b.headers } : {}),
    settings: b.settings,
    discover: b.discover ?? true,
    ...(b.start
      ? {
          start: {
            command: b.start.command,
            ...(b.start.cwd ? { cwd: b.start.cwd } : {}),
            ...(b.start.env ? { env: b.start.env } : {}),
            readyTimeoutMs: (b.start.ready_timeout_s ?? 600) * 1000,
            warmup: b.start.warmup ?? [],
          },
        }
      : {}),
    ...(b.concurrency !== undefined ? { concurrency: b.concurrency } : {}),
    ...(b.max_queue !== undefined ? { maxQueue: b.max_queue } : {}),
    ...(b.breaker ? { breaker: b.breaker } : {}),
    ...(b.timeouts ? { timeouts: b.timeouts } : {}),
    ...(b.vram_gb ? { memoryBytes: Math.round(b.vram_gb * 1024 ** 3) } : {}),
  }));
  const models = Object.entries(c.models ?? {}).map(([alias, t]) => ({
    alias,
    targets: Array.isArray(t) ? t : [t],
  }));
  const config: GatewayConfig = {
    source: file,
    server: {
      host: c.server?.host ?? "127.0.0.1",
      port: c.server?.port ?? DEFAULT_PORT,
      bodyLimitBytes: c.server?.body_limit_mb
        ? Math.round(c.server.body_limit_mb * 1024 * 1024)
        : DEFAULT_BODY_LIMIT,
      ...(c.server?.receive_timeout_ms ? { receiveTimeoutMs: c.server.receive_timeout_ms } : {}),
      ...(c.server?.watch_interval_s !== undefined
        ? { watchIntervalMs: Math.round(c.server.watch_interval_s * 1000) }
        : {}),
      ...(c.server?.cors_origins ? { corsOrigins: c.server.cors_origins } : {}),
      ...(c.server?.allowed_hosts ? { allowedHosts: c.server.allowed_hosts } : {}),
      ...(c.server?.answer_limit_mb
        ? { answerLimitChars: Math.round(c.server.answer_limit_mb * 1024 * 1024) }
        : {}),
    },
    log: { level: c.log?.level ?? "info", ...(c.log?.file ? { file: c.log.file } : {}) },
    backends,
    models,
    fallbacks: c.fallbacks ?? {},
    warnings: [],
  };
  if (c.journal !== undefined) {
    const j = typeof c.journal === "boolean" ? { enabled: c.journal } : c.journal;
    config.journal = {
      enabled: j.enabled ?? true,
      ...(j.path !== undefined ? { path: j.path } : {}),
      ...(j.max_mb !== undefined ? { maxMb: j.max_mb } : {}),
      ...(j.max_age_days !== undefined ? { maxAgeDays: j.max_age_days } : {}),
      ...(j.capture !== undefined ? { capture: j.capture } : {}),
    };
  }
  if (c.timeouts) config.timeouts = c.timeouts;
  if (c.lanes) config.backgroundLane = c.lanes.background;
  const key = c.server?.master_key ?? env.CLAWBRIDGE_MASTER_KEY;
  if (key) config.server.masterKey = key;
  checkReferences(config, (path) => where(path));
  return config;
}

function validate<S extends z.ZodType>(schema: S, raw: unknown, where: Where): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const problems = describeIssues(r.error.issues, raw, schema);
  throw new ConfigError(
    problems.map((p) => `${where(p.atKey ? [...p.path, KEY] : p.path)}: ${p.field}: ${p.message}`).join("\n"),
  );
}

function fail(at: string, path: string, message: string): never {
  throw new ConfigError(`${at}: ${path}: ${message}`);
}

/** "file:line" for a path in the document, or just the file when the node is not there. */
function locate(doc: Document, lines: LineCounter, file: string, path: PropertyKey[]): string {
  if (path.at(-1) === KEY) {
    // a key that should not be there: its own line
    const key = path.at(-2);
    const map = path.length > 2 ? doc.getIn(path.slice(0, -2) as unknown[], true) : doc.contents;
    if (isMap(map)) {
      const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (pair && isScalar(pair.key) && pair.key.range)
        return `${file}:${lines.linePos(pair.key.range[0]).line}`;
    }
    return locate(doc, lines, file, path.slice(0, -1));
  }
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) {
      return `${file}:${lines.linePos(node.range[0]).line}`;
    }
  }
  return file;
}

/** `${VAR}` anywhere in a string and LiteLLM's `os.environ/VAR` as a whole value. */
function substituteEnv(v: unknown, file: string, env: NodeJS.ProcessEnv): unknown {
  if (typeof v === "string") {
    const m = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(v);
    if (m) return lookup(m[1]!, file, env);
    return v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => lookup(name, file, env));
  }
  if (Array.isArray(v)) return v.map((x) => substituteEnv(x, file, env));
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substituteEnv(x, file, env)]));
  }
  return v;
}

function lookup(name: string, file: string, env: NodeJS.ProcessEnv): string {
  const value = env[name];
  if (value === undefined) throw new ConfigError(`${file}: environment variable ${name} is not set`);
  return value;
}
