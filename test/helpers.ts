import { spawn } from "node:child_process";
import http from "node:http";
import { createConnection } from "node:net";
import { fileURLToPath } from "node:url";
import { createDispatcher, type Dispatcher } from "../src/backends/http/client.js";
import { parseConfig } from "../src/config/load.js";
import type { GatewayConfig } from "../src/config/types.js";
import { silentLogger } from "../src/log.js";
import { ModelState } from "../src/routing/model-state.js";
import { buildGateway, type Gateway } from "../src/server/app.js";

export interface RunningGateway extends Gateway {
  url: string;
  close(): Promise<void>;
}

export interface StartOptions {
  dispatcher?: Dispatcher;
  keepAliveAfterMs?: number;
  pingIntervalMs?: number;
  discover?: boolean;
  /** Watch the backends after the first discovery, as `clawbridge serve` does. */
  watch?: boolean;
  log?: import("../src/log.js").Logger;
  journal?: import("../src/journal/journal.js").Journal;
}

/** Starts a gateway in this process on a free loopback port. */
export async function startGateway(
  config: GatewayConfig | string,
  opts: StartOptions = {},
): Promise<RunningGateway> {
  const cfg = typeof config === "string" ? parseConfig(config, "test.yaml", {}) : config;
  const dispatcher = opts.dispatcher ?? createDispatcher();
  const gw = buildGateway({
    config: cfg,
    dispatcher,
    log: opts.log ?? silentLogger,
    ...(opts.journal ? { journal: opts.journal } : {}),
    ...(opts.keepAliveAfterMs !== undefined ? { keepAliveAfterMs: opts.keepAliveAfterMs } : {}),
    ...(opts.pingIntervalMs !== undefined ? { pingIntervalMs: opts.pingIntervalMs } : {}),
  });
  if (opts.discover !== false) await gw.router.discover();
  if (opts.watch) gw.router.startWatching();
  const url = await gw.listen("127.0.0.1", 0);
  return {
    ...gw,
    url,
    close: async () => {
      await gw.close();
      await dispatcher.close();
    },
  };
}

/** A YAML config with one backend and one model alias. */
export function oneBackend(
  kind: string,
  url: string,
  model: string,
  extra = "",
  alias = "test-model",
): string {
  return `
backends:
  b:
    kind: ${kind}
    url: "${url}"
${extra}
models:
  ${alias}: { backend: b, model: "${model}" }
`;
}

/**
 * A dispatcher that sends every connection to one loopback port, whatever host the URL names:
 * lets a config that points at a remote address be tested unchanged, without leaving the machine.
 */
export function redirectingDispatcher(port: number): Dispatcher {
  class LoopbackAgent extends http.Agent {
    override createConnection(): ReturnType<typeof createConnection> {
      return createConnection({ host: "127.0.0.1", port });
    }
  }
  return createDispatcher({ http: new LoopbackAgent({ keepAlive: true }) });
}

/** Parses an SSE body into events (name + parsed data; `[DONE]` kept as a string). */
export function parseSse(text: string): Array<{ event?: string; data: any; comment?: boolean }> {
  const out: Array<{ event?: string; data: any }> = [];
  for (const block of text.split("\n\n")) {
    if (!block.trim()) continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (!data.length) continue;
    const joined = data.join("\n");
    let parsed: unknown = joined;
    if (joined !== "[DONE]") parsed = JSON.parse(joined);
    out.push(event === undefined ? { data: parsed } : { event, data: parsed });
  }
  return out;
}

/**
 * Checks an Anthropic event stream's grammar: message_start first, blocks opened, filled and
 * closed in index order, one message_delta with a stop reason, message_stop last. Returns the
 * stop reason. Throws with the offending event on any violation.
 */
export function checkAnthropicStream(events: Array<{ event?: string; data: any }>): string {
  const fail = (msg: string, ev?: unknown) => {
    throw new Error(`${msg}${ev ? `: ${JSON.stringify(ev)}` : ""}`);
  };
  const list = events.filter((e) => e.event !== "ping");
  if (list[0]?.event !== "message_start") fail("stream does not begin with message_start", list[0]);
  let open: number | undefined;
  let next = 0;
  let stop: string | undefined;
  for (const [i, e] of list.entries()) {
    if (e.event !== e.data?.type) fail("event name differs from data.type", e);
    switch (e.event) {
      case "message_start":
        if (i !== 0) fail("second message_start", e);
        break;
      case "content_block_start":
        if (open !== undefined) fail("block opened while another is open", e);
        if (e.data.index !== next) fail(`expected block index ${next}`, e);
        open = e.data.index;
        next++;
        break;
      case "content_block_delta":
        if (e.data.index !== open) fail("delta for a block that is not open", e);
        break;
      case "content_block_stop":
        if (e.data.index !== open) fail("stop for a block that is not open", e);
        open = undefined;
        break;
      case "message_delta":
        if (open !== undefined) fail("message_delta with a block open", e);
        stop = e.data.delta?.stop_reason;
        if (!stop) fail("message_delta without stop_reason", e);
        break;
      case "message_stop":
        if (i !== list.length - 1) fail("events after message_stop", list[i + 1]);
        if (!stop) fail("message_stop before message_delta", e);
        break;
      case "error":
        fail("stream carried an error", e);
        break;
      default:
        fail("unknown event", e);
    }
  }
  if (list.at(-1)?.event !== "message_stop") fail("stream does not end with message_stop", list.at(-1));
  return stop!;
}

/** Checks an OpenAI chunk stream: chunks with one choice, one finish_reason, `[DONE]` last. */
export function checkOpenAIStream(events: Array<{ data: any }>): string {
  const fail = (msg: string, ev?: unknown) => {
    throw new Error(`${msg}${ev ? `: ${JSON.stringify(ev)}` : ""}`);
  };
  if (events.at(-1)?.data !== "[DONE]") fail("stream does not end with [DONE]", events.at(-1));
  let finish: string | undefined;
  for (const e of events.slice(0, -1)) {
    const c = e.data;
    if (c.error) fail("stream carried an error", c);
    if (c.object !== "chat.completion.chunk") fail("not a chat.completion.chunk", c);
    if (c.choices.length === 0) {
      if (!c.usage) fail("chunk with no choice and no usage", c);
      continue;
    }
    if (finish) fail("chunk after the finish_reason", c);
    if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
  }
  if (!finish) fail("no finish_reason");
  return finish!;
}

/** A stage context for calling a stage directly in a test. */
export function stageContext(
  profile: import("../src/ir/contract.js").ModelProfile,
  client: import("../src/ir/types.js").Request,
  notes: import("../src/stages/types.js").Note[] = [],
): import("../src/stages/types.js").StageContext {
  return {
    profile,
    state: new ModelState(profile),
    log: silentLogger,
    notes,
    client,
    signal: new AbortController().signal,
  };
}

/** A minimal IR request, to build on in tests that call stages directly. */
export function emptyRequest(model: string): import("../src/ir/types.js").Request {
  return {
    model,
    system: "",
    messages: [],
    tools: [],
    toolChoice: { type: "auto" },
    limits: {},
    sampling: {},
    thinking: {},
    stream: false,
    metadata: {},
    ignored: [],
  };
}

/** Runs the CLI from the sources (`clawbridge ARGS`) and collects what it printed. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        import.meta.resolve("tsx"),
        fileURLToPath(new URL("../src/cli/main.ts", import.meta.url)),
        ...args,
      ],
      { stdio: ["ignore", "pipe", "pipe"], ...opts },
    );
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.on("exit", (code) => resolve({ code, out }));
  });
}

/**
 * The URL a `clawbridge serve` child prints once it listens (its start-up report ends with the
 * line for OpenAI clients), and what it printed up to then.
 */
export function listenUrl(
  child: import("node:child_process").ChildProcess,
  timeoutMs = 30_000,
): Promise<{ url: string; out: string }> {
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listen line: ${out}`)), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)[\s\S]*OpenAI clients/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, out });
      }
    });
  });
}

/** Waits until `cond` holds, polling every 20 ms; throws after `ms` naming `what` it waited for. */
export async function until(cond: () => boolean, what = "the condition", ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
