import { createConnection } from "node:net";
import { fetchJson } from "../backends/http.js";
import { readConfigObject } from "../clients/json-file.js";
import { openclawConfigPath } from "../clients/openclaw.js";
import { LOCAL_SERVERS } from "../config/detect.js";
import { ConfigError } from "../config/load.js";
import { GatewayError } from "../ir/errors.js";
import type { Event, Request } from "../ir/types.js";
import { silentLogger } from "../log.js";
import { loadServed, type Served } from "../cli/served.js";
import { OPENCLAW_MIN_CONTEXT } from "../context/window.js";
import { redact } from "../redact.js";

export type Status = "ok" | "warn" | "fail" | "skip";

/** One finding: what was checked, what was found, and what to do about it. */
export interface Check {
  id: string;
  status: Status;
  title: string;
  detail?: string;
  fix?: string;
}

export interface DoctorOptions {
  config?: string;
  /** OpenClaw's config file (default: where OpenClaw reads it). */
  openclawConfig?: string;
  /** Send a real request to each model: tool-call and streaming probes. */
  probe?: boolean;
  probeTimeoutMs?: number;
}

type Obj = Record<string, any>;

/** Every check, in order; never throws: a check that cannot run says why. */
export async function runDoctor(o: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [];
  // what it says names backend URLs: their credentials stay out of it
  const add = (c: Check) =>
    checks.push({
      ...c,
      ...(c.detail !== undefined ? { detail: redact(c.detail) } : {}),
      ...(c.fix !== undefined ? { fix: redact(c.fix) } : {}),
    });
  let served: Served;
  try {
    served = await loadServed(o.config);
  } catch (e) {
    add({
      id: "config",
      status: "fail",
      title: "configuration",
      detail: (e as Error).message,
      fix: e instanceof ConfigError ? "correct the line named above" : "see README, Configuration",
    });
    return checks;
  }
  try {
    add({ id: "config", status: "ok", title: "configuration", detail: served.config.source });
    await backendChecks(served, add);
    modelChecks(served, add);
    await portCheck(served, add);
    openclawChecks(served, o.openclawConfig ?? openclawConfigPath(), add);
    if (o.probe) await probes(served, o.probeTimeoutMs ?? 120_000, add);
  } finally {
    await served.close();
  }
  return checks;
}

async function backendChecks(s: Served, add: (c: Check) => void): Promise<void> {
  if (!s.config.backends.length)
    add({
      id: "backends",
      status: "fail",
      title: "backends",
      detail: "no backend is configured, and none was found on the default local ports",
      fix: "start a model server (`ollama serve`) or run `clawbridge init`",
    });
  for (const b of s.config.backends) {
    const found = s.router.discovered.get(b.name);
    const id = `backend:${b.name}`;
    if (b.kind === "embedded") {
      add({
        id,
        status: found instanceof GatewayError ? "fail" : "ok",
        title: `backend ${b.name} (in-process GGUF models)`,
        detail:
          found instanceof GatewayError ? found.message : `${found?.length ?? 0} model(s) found on disk`,
      });
      continue;
    }
    const path = new URL(b.url).pathname.replace(/\/+$/, "");
    if (b.kind === "ollama" && path)
      add({
        id: `${id}:url`,
        status: "warn",
        title: `backend ${b.name}: base URL`,
        detail: `${b.url} has a path (${path}); Ollama's native API hangs off the root`,
        fix: `url: ${new URL(b.url).origin}`,
      });
    if (b.kind === "openai-compat" && path && !/^\/v\d+$/.test(path))
      add({
        id: `${id}:url`,
        status: "warn",
        title: `backend ${b.name}: base URL`,
        detail: `${b.url}: OpenAI-compatible servers answer under /v1`,
        fix: `url: ${new URL(b.url).origin}/v1`,
      });
    if (!(found instanceof GatewayError)) {
      add({
        id,
        status: "ok",
        title: `backend ${b.name} reachable`,
        detail: `${b.url}, ${found?.length ?? 0} model(s)`,
      });
      continue;
    }
    const check: Check = { id, status: "fail", title: `backend ${b.name} reachable`, detail: found.message };
    // Is it the port? Something answering where this kind of server usually listens says so.
    const usual = LOCAL_SERVERS.filter(
      (l) => l.kind === b.kind && new URL(l.url).port !== new URL(b.url).port,
    );
    for (const l of usual) {
      const answered = await fetchJson("probe", l.url + l.probe, s.dispatcher, { timeoutMs: 1500 }).then(
        () => true,
        () => false,
      );
      if (answered) {
        check.fix = `a ${l.name} server answers at ${l.url}: set url: ${l.url} for backend ${b.name}`;
        break;
      }
    }
    // Is it the kind? An Ollama URL that answers the OpenAI API, or the other way round.
    if (!check.fix) {
      const root = new URL(b.url).origin;
      const other = b.kind === "ollama" ? `${root}/v1/models` : `${root}/api/tags`;
      const answered = await fetchJson("probe", other, s.dispatcher, { timeoutMs: 1500 }).then(
        () => true,
        () => false,
      );
      if (answered)
        check.fix =
          b.kind === "ollama"
            ? `this server speaks the OpenAI API, not Ollama's: set kind: openai-compat and url: ${root}/v1`
            : `this is an Ollama server: set kind: ollama and url: ${root}`;
    }
    check.fix ??= /refused/.test(found.message)
      ? `nothing listens at ${new URL(b.url).origin}: start the server (${startHint(b.kind, b.flavor)}) or correct the port`
      : "check the URL and that the server is up";
    add(check);
  }
}

function startHint(kind: string, flavor?: string): string {
  if (kind === "ollama") return "`ollama serve`";
  if (flavor === "llamacpp") return "`llama-server -m model.gguf --port 8080`";
  if (flavor === "tinygrad") return "`python3 tinygrad/apps/llm.py --serve PORT`";
  if (flavor === "vllm") return "`vllm serve MODEL`";
  return "its start command";
}

function modelChecks(s: Served, add: (c: Check) => void): void {
  for (const { id, profile: p } of s.models) {
    const listed = s.router.discovered.get(p.backend.name);
    if (Array.isArray(listed)) {
      const names = new Set(listed.flatMap((d) => [d.name, d.name.replace(/:latest$/, "")]));
      if (!names.has(p.model) && !names.has(`${p.model}:latest`) && p.backend.kind !== "anthropic")
        add({
          id: `model:${id}:present`,
          status: "fail",
          title: `model ${id}: present on ${p.backend.name}`,
          detail: `${p.backend.name} does not have ${p.model} (it has: ${
            [...listed]
              .map((d) => d.name)
              .slice(0, 10)
              .join(", ") || "nothing"
          })`,
          fix:
            p.backend.kind === "ollama"
              ? `ollama pull ${p.model}`
              : `load ${p.model} in the server, or correct model: in the config`,
        });
    }
    const c = p.context;
    const window = p.contextWindow;
    const detail = window
      ? `${window} tokens (${c?.why ?? "configured"})`
      : "not known: the server does not say and the config does not state it";
    add({
      id: `model:${id}:context`,
      status: !window || c?.warnings.length ? "warn" : "ok",
      title: `model ${id}: context window`,
      detail: c?.warnings.length ? `${detail}; ${c.warnings.join("; ")}` : detail,
      ...(!window ? { fix: `set context_window for ${id} (the window the server runs with)` } : {}),
    });
    if (window && window < OPENCLAW_MIN_CONTEXT)
      add({
        id: `model:${id}:openclaw-minimum`,
        status: "warn",
        title: `model ${id}: big enough for OpenClaw`,
        detail: `${window} tokens; OpenClaw's first prompt alone is ~12k tokens and it needs ~16k`,
        fix: "serve the model with a larger window (Ollama: context_window / vram_gb; llama.cpp: -c 16384)",
      });
    if (p.supportsTools === false || !p.backend.caps.tools)
      add({
        id: `model:${id}:tools`,
        status: "warn",
        title: `model ${id}: tool calls`,
        detail:
          p.toolMode === "strip"
            ? "no native tool support, and tool_mode: strip drops tools: the agent cannot use any"
            : `no native tool support${p.backend.caps.tools ? "" : " on this server"}: clawbridge emulates tools in the prompt and rescues the calls`,
        fix:
          p.toolMode === "strip"
            ? "tool_mode: auto (emulation) lets the agent use tools"
            : "works as it is; for the most reliable tool use, serve a model with native tools (qwen2.5, llama3.1+, mistral-nemo)",
      });
  }
}

async function portCheck(s: Served, add: (c: Check) => void): Promise<void> {
  const { host, port } = s.config.server;
  const h = ["0.0.0.0", "::"].includes(host) ? "127.0.0.1" : host;
  const open = await new Promise<boolean>((resolve) => {
    const sock = createConnection({ host: h, port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
  if (!open) {
    add({
      id: "gateway:port",
      status: "ok",
      title: `port ${port} free for clawbridge`,
      detail: "clawbridge is not running",
    });
    return;
  }
  const key = s.config.server.masterKey;
  const health = (await fetchJson("gateway", `${s.baseUrl}/health`, s.dispatcher, {
    timeoutMs: 2000,
    ...(key ? { headers: { "x-api-key": key } } : {}),
  }).catch(() => undefined)) as Obj | undefined;
  if (health && typeof health === "object" && "models" in health)
    add({ id: "gateway:port", status: "ok", title: `clawbridge running on port ${port}`, detail: s.baseUrl });
  else if (key && health && typeof health === "object" && health.status === "ok")
    // a gateway with a master key tells a caller without it only that it is up
    add({
      id: "gateway:port",
      status: "warn",
      title: `clawbridge running on port ${port}`,
      detail: `${s.baseUrl} answers /health, but not to the master key in the config`,
      fix: "restart clawbridge with this config, or correct server.master_key",
    });
  else
    add({
      id: "gateway:port",
      status: "fail",
      title: `port ${port} free for clawbridge`,
      detail: `another program listens on ${h}:${port}`,
      fix: `stop it, or set server.port (e.g. ${port + 1}) and run \`clawbridge openclaw\` again`,
    });
}

function openclawChecks(s: Served, path: string, add: (c: Check) => void): void {
  let cfg: Obj | undefined;
  try {
    cfg = readConfigObject(path) as Obj | undefined;
  } catch (e) {
    add({ id: "openclaw:config", status: "fail", title: "OpenClaw config", detail: (e as Error).message });
    return;
  }
  if (!cfg) {
    add({
      id: "openclaw:config",
      status: "skip",
      title: "OpenClaw config",
      detail: `no ${path}`,
      fix: "run `clawbridge openclaw` to point OpenClaw at clawbridge",
    });
    return;
  }
  const providers = (cfg.models?.providers ?? {}) as Record<string, Obj>;
  const gw = new URL(s.baseUrl);
  const sameGateway = (u: unknown) => {
    try {
      const x = new URL(String(u));
      const local = (h: string) => ["127.0.0.1", "localhost", "[::1]", "::1"].includes(h);
      return x.port === gw.port && (x.hostname === gw.hostname || (local(x.hostname) && local(gw.hostname)));
    } catch {
      return false;
    }
  };
  const ours = Object.entries(providers).filter(([, p]) => sameGateway(p?.baseUrl));
  const primary = String(cfg.agents?.defaults?.model?.primary ?? "");
  if (!ours.length) {
    const named = providers.clawbridge;
    add({
      id: "openclaw:provider",
      status: "fail",
      title: "OpenClaw points at clawbridge",
      detail: named
        ? `its clawbridge provider points at ${named.baseUrl}, but clawbridge serves ${s.baseUrl}`
        : `no provider in ${path} points at ${s.baseUrl}`,
      fix: "clawbridge openclaw",
    });
    return;
  }
  for (const [name, p] of ours) {
    const base = String(p.baseUrl).replace(/\/+$/, "");
    const api = p.api ?? "anthropic-messages";
    if (api === "openai-completions" && !base.endsWith("/v1"))
      add({
        id: `openclaw:${name}:url`,
        status: "fail",
        title: `OpenClaw provider ${name}: base URL`,
        detail: `api openai-completions with baseUrl ${base}: OpenClaw will call ${base}/chat/completions, which does not exist`,
        fix: `baseUrl: "${base}/v1" (or run \`clawbridge openclaw\`)`,
      });
    else if (api === "anthropic-messages" && base.endsWith("/v1"))
      add({
        id: `openclaw:${name}:url`,
        status: "fail",
        title: `OpenClaw provider ${name}: base URL`,
        detail: `api anthropic-messages with baseUrl ${base}: OpenClaw appends /v1/messages itself (→ /v1/v1/messages)`,
        fix: `baseUrl: "${base.replace(/\/v1$/, "")}" (or run \`clawbridge openclaw\`)`,
      });
    else
      add({
        id: `openclaw:${name}:url`,
        status: "ok",
        title: `OpenClaw provider ${name} points at clawbridge`,
        detail: base,
      });
    const key = s.config.server.masterKey;
    if (key && p.apiKey !== key)
      add({
        id: `openclaw:${name}:key`,
        status: "fail",
        title: `OpenClaw provider ${name}: key`,
        detail: "its apiKey is not clawbridge's master key: every request will get 401",
        fix: "clawbridge openclaw (writes the key)",
      });
    const servedIds = new Map(s.models.map((m) => [m.id, m.profile]));
    for (const m of (p.models ?? []) as Obj[]) {
      const profile = servedIds.get(m.id);
      if (!profile) {
        add({
          id: `openclaw:${name}:${m.id}`,
          status: "fail",
          title: `OpenClaw model ${name}/${m.id}`,
          detail: "clawbridge does not serve this model",
          fix: "clawbridge openclaw (rewrites the model list)",
        });
        continue;
      }
      const told = Number(m.contextWindow);
      const window = profile.contextWindow;
      if (window && told > window)
        add({
          id: `openclaw:${name}:${m.id}:context`,
          status: "fail",
          title: `OpenClaw model ${name}/${m.id}: context window`,
          detail: `OpenClaw believes ${told} tokens, the server serves ${window}: it will send prompts that do not fit (clawbridge refuses them with an overflow error, so OpenClaw compacts more than it needs to, or fails)`,
          fix: "clawbridge openclaw (writes the real windows)",
        });
      else if (window && told)
        add({
          id: `openclaw:${name}:${m.id}:context`,
          status: "ok",
          title: `OpenClaw model ${name}/${m.id}: context window`,
          detail: `${told} ≤ ${window} served`,
        });
    }
    if (primary.startsWith(`${name}/`) && !servedIds.has(primary.slice(name.length + 1)))
      add({
        id: "openclaw:primary",
        status: "fail",
        title: "OpenClaw's primary model",
        detail: `${primary} is not served by clawbridge`,
        fix: "clawbridge openclaw --primary MODEL",
      });
  }
}

function probeRequest(model: string, tools: boolean): Request {
  return {
    model,
    system: "",
    messages: [
      {
        role: "user",
        parts: [
          {
            type: "text",
            text: tools
              ? "What time is it? Use the get_time tool."
              : "Count from 1 to 20, separated by spaces.",
          },
        ],
      },
    ],
    tools: tools
      ? [
          {
            name: "get_time",
            description: "The current time",
            inputSchema: { type: "object", properties: { zone: { type: "string" } } },
          },
        ]
      : [],
    toolChoice: { type: "auto" },
    limits: { maxOutputTokens: tools ? 128 : 64 },
    sampling: { temperature: 0 },
    thinking: {},
    stream: true,
    metadata: {},
    ignored: [],
  };
}

/** A real request to each model: does it call a tool, and how fast does it stream. */
async function probes(s: Served, timeoutMs: number, add: (c: Check) => void): Promise<void> {
  for (const { id, profile } of s.models) {
    if (profile.backend.kind === "anthropic") continue;
    const listed = s.router.discovered.get(profile.backend.name);
    if (listed instanceof GatewayError) continue;
    // streaming: time to first token and tokens per second
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const started = performance.now();
      let first: number | undefined;
      let out = 0;
      for await (const batch of s.router.stream(probeRequest(id, false), signal, silentLogger)) {
        for (const e of batch) {
          if (e.type === "textDelta" && first === undefined) first = performance.now();
          if (e.type === "usage" && e.usage.outputTokens) out = e.usage.outputTokens;
        }
      }
      const end = performance.now();
      const ttft = first !== undefined ? first - started : undefined;
      const rate =
        first !== undefined && out > 1 && end > first ? ((out - 1) * 1000) / (end - first) : undefined;
      add({
        id: `model:${id}:stream`,
        status: ttft === undefined ? "warn" : "ok",
        title: `model ${id}: streaming`,
        detail:
          ttft === undefined
            ? "the stream carried no text"
            : `first token after ${(ttft / 1000).toFixed(2)} s${rate ? `, ${rate.toFixed(1)} tokens/s` : ""}`,
      });
    } catch (e) {
      add({
        id: `model:${id}:stream`,
        status: "fail",
        title: `model ${id}: streaming`,
        detail: (e as Error).message,
      });
      continue;
    }
    // tools: a call asked for plainly
    const counted: string[] = [];
    try {
      const events: Event[] = [];
      for await (const batch of s.router.stream(
        probeRequest(id, true),
        AbortSignal.timeout(timeoutMs),
        silentLogger,
        {
          count: (what) => counted.push(what),
        },
      ))
        events.push(...batch);
      const called = events.some((e) => e.type === "toolCallStart");
      const rescued = counted.some((w) => w.startsWith("rescued"));
      const emulated = profile.supportsTools === false || !profile.backend.caps.tools;
      add({
        id: `model:${id}:tool-probe`,
        status: !called ? "warn" : "ok",
        title: `model ${id}: tool-call probe`,
        detail: !called
          ? "asked to call a tool, it answered in text: agents will struggle with this model"
          : emulated
            ? "called the tool through emulation (the model has no native tools)"
            : rescued
              ? "called the tool, written as text: clawbridge rescues it (tool_mode auto)"
              : "called the tool natively",
        ...(!called ? { fix: "pick a model trained for tool use (qwen2.5, llama3.1+, mistral-nemo)" } : {}),
      });
    } catch (e) {
      add({
        id: `model:${id}:tool-probe`,
        status: "fail",
        title: `model ${id}: tool-call probe`,
        detail: (e as Error).message,
      });
    }
  }
}

/** Used by `clawbridge doctor`'s text output. */
export function renderChecks(checks: Check[]): string {
  const mark: Record<Status, string> = { ok: "ok  ", warn: "WARN", fail: "FAIL", skip: "--  " };
  return checks
    .map(
      (c) =>
        `${mark[c.status]}  ${c.title}${c.detail ? `: ${c.detail}` : ""}${c.fix ? `\n      fix: ${c.fix}` : ""}`,
    )
    .join("\n");
}
