/**
 * The fault-injection suite: every way a local server fails, against the fake backends (every
 * HTTP kind: the OpenAI-compatible flavors, Ollama, Anthropic), each over connections kept alive
 * and over connections closed after every response (`Connection: close`; TinyGrad's are always
 * closed), with time limits scaled down from minutes to milliseconds. Each case states what the
 * client sees, in both dialects, streaming and not; after each, the gateway still answers a normal
 * request, and nothing was left unhandled (an error event no one listens to kills the process):
 *
 * | fault                          | not streaming                 | streaming                                            |
 * | ------------------------------ | ----------------------------- | ---------------------------------------------------- |
 * | connection refused             | 500 api_error                 | 500 api_error (fast: before the stream opens)        |
 * | reset before headers           | 500 api_error                 | 500 api_error                                        |
 * | reset mid-stream               | 500 api_error                 | 200, text, then an error event (api_error)           |
 * | hang before the first byte     | 504 timeout (load_ms)         | 200, opened early, pings, error event (timeout)      |
 * | hang after the headers         | 504 timeout (first_token_ms)  | 200, opened early, pings, error event (timeout)      |
 * | hang mid-stream                | 504 timeout (idle_ms)         | 200, text, then an error event (timeout)             |
 * | answer slower than total_ms    | 504 timeout (total_ms)        | 200, text, then an error event (timeout)             |
 * | slow model load (< load_ms)    | 200, the answer               | 200, opened early, pings, then the answer            |
 * | malformed SSE / NDJSON         | 500 api_error                 | 200, then an error event (api_error)                 |
 * | no finish marker               | 500 api_error                 | 200, text, then an error event (api_error)           |
 * | garbage after the last event   | 200, the answer               | 200, the answer                                      |
 * | 500                            | 500 api_error                 | 500 api_error                                        |
 * | 503                            | 529 / 503 overloaded          | 529 / 503 overloaded                                 |
 * | 429 with Retry-After           | 429 rate_limit, Retry-After   | 429 rate_limit, Retry-After                          |
 * | 200 with an empty stream       | 500 api_error                 | 500 api_error                                        |
 * | tools refused (where refused)  | 200, the answer (emulated)    | 200, the answer (emulated)                           |
 *
 * Anthropic clients: errors are `{type:"error",error:{type,message}}`, in a stream an `error`
 * event and no message_stop; pings are `event: ping`. OpenAI clients: `{error:{message,type,param,
 * code}}`, in a stream a `data: {"error":...}` line and no [DONE]; pings are `: keep-alive`
 * comment lines. No answer may take longer than a few seconds: a hang is a failure.
 * After the suite no socket, timer or listener may be left open.
 */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { startAnthropicFake } from "../fakes/anthropic.js";
import { startOllamaFake } from "../fakes/ollama.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import type { FakeServer, ReplyFn, ScriptedReply } from "../fakes/script.js";
import {
  checkAnthropicStream,
  checkOpenAIStream,
  parseSse,
  type RunningGateway,
  startGateway,
} from "../helpers.js";

/** The resources open before the suite, by type: what must be all that is left after it. */
let baseline: Map<string, number>;
function resources(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}
before(() => {
  baseline = resources();
});

/** Scaled-down limits: minutes become hundreds of ms. */
const LIMITS = { connect_ms: 1000, load_ms: 700, first_token_ms: 700, idle_ms: 500, total_ms: 6000 };
/** The stream opens after this much silence (keep-alive), and pings every PING_MS. */
const OPEN_AFTER_MS = 300;
const PING_MS = 60;
/** No answer may take longer. */
const ANSWER_WITHIN_MS = 6000;
const LONG_TEXT = "The quick brown fox jumps over the lazy dog. ".repeat(12);

type Kind = "api" | "unavailable" | "timeout" | "overloaded" | "rate_limit";
const ANTHROPIC: Record<Kind, { status: number; type: string }> = {
  api: { status: 500, type: "api_error" },
  // the backend cannot be reached: 503, which the SDKs and agent clients retry
  unavailable: { status: 503, type: "api_error" },
  timeout: { status: 504, type: "timeout_error" },
  overloaded: { status: 529, type: "overloaded_error" },
  rate_limit: { status: 429, type: "rate_limit_error" },
};
const OPENAI: Record<Kind, { status: number; type: string; code: string | null }> = {
  api: { status: 500, type: "server_error", code: null },
  unavailable: { status: 503, type: "server_error", code: "backend_unreachable" },
  timeout: { status: 504, type: "server_error", code: "timeout" },
  overloaded: { status: 503, type: "server_error", code: "overloaded" },
  rate_limit: { status: 429, type: "rate_limit_error", code: "rate_limit_exceeded" },
};

/** What the client sees. */
type Outcome =
  /** the answer, in full; `pings`: the stream was opened early and kept alive */
  | { ok: string; pings?: boolean }
  /** an HTTP error with this kind's status, its message matching */
  | { status: Kind; match: RegExp; retryAfter?: string }
  /** a 200 stream that ends in an error event of this kind; `text`: some text came first */
  | { inStream: Kind; match: RegExp; pings?: boolean; text?: boolean };

interface Case {
  name: string;
  reply?: ScriptedReply | ReplyFn;
  /** nothing listens on the backend's port */
  down?: boolean;
  /** the request offers a tool */
  tools?: boolean;
  /** limits over LIMITS */
  limits?: Partial<typeof LIMITS>;
  /** start the gateway without discovery */
  noDiscovery?: boolean;
  plain: Outcome;
  stream: Outcome;
}

interface Backend {
  /** As the test names say it. */
  name: string;
  kind: "openai-compat" | "ollama" | "anthropic";
  start(): Promise<FakeServer>;
  model: string;
  yaml: string;
  /** How this backend refuses tools (one that never does answers). */
  refuseTools: ScriptedReply | ReplyFn;
  malformed: RegExp;
  /** After how many chunks the malformed one comes: after the first text. */
  malformedAfter?: number;
  /** Whether the gateway asks it for its models. */
  discover: boolean;
  /** Its connections are closed after every response, whatever it is told (TinyGrad's HTTP/1.0 server). */
  alwaysCloses?: boolean;
}

/** The server does not refuse tools: it answers (and the case checks that it does). */
const ANSWERS_WITH_TOOLS: ScriptedReply = { text: "Done without tools." };

/** An OpenAI-compatible server that refuses `tools` with this status and error body, and answers without them. */
function refusing(status: number, body: unknown): ReplyFn {
  return (r) =>
    r.body?.tools
      ? { fault: { kind: "status", status, body: JSON.stringify(body) } }
      : { text: "Done without tools." };
}

const BACKENDS: Backend[] = [
  {
    name: "openai-compat (llamacpp)",
    kind: "openai-compat",
    start: () => startOpenAICompatFake({ flavor: "llamacpp", contextLength: 32768 }),
    model: "fake-model",
    yaml: "flavor: llamacpp",
    // llama-server without --jinja
    refuseTools: refusing(500, {
      error: { code: 500, message: "tools param requires --jinja flag", type: "server_error" },
    }),
    malformed: /malformed/,
    discover: true,
  },
  {
    name: "openai-compat (vllm)",
    kind: "openai-compat",
    start: () => startOpenAICompatFake({ flavor: "vllm", contextLength: 32768 }),
    model: "fake-model",
    yaml: "flavor: vllm",
    // vLLM started without a tool parser
    refuseTools: refusing(400, {
      error: {
        message: '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        type: "BadRequestError",
        param: null,
        code: 400,
      },
    }),
    malformed: /malformed/,
    discover: true,
  },
  {
    name: "openai-compat (lmstudio)",
    kind: "openai-compat",
    start: () => startOpenAICompatFake({ flavor: "lmstudio", contextLength: 32768 }),
    model: "fake-model",
    yaml: "flavor: lmstudio",
    refuseTools: ANSWERS_WITH_TOOLS,
    malformed: /malformed/,
    discover: true,
  },
  {
    name: "openai-compat (generic)",
    kind: "openai-compat",
    start: () => startOpenAICompatFake({ flavor: "generic", contextLength: 32768 }),
    model: "fake-model",
    yaml: "flavor: generic",
    refuseTools: ANSWERS_WITH_TOOLS,
    malformed: /malformed/,
    discover: true,
  },
  {
    name: "openai-compat (tinygrad)",
    kind: "openai-compat",
    start: () => startOpenAICompatFake({ flavor: "tinygrad", contextLength: 32768 }),
    model: "fake-model",
    yaml: "flavor: tinygrad",
    // text only: the gateway never sends it tools (they are emulated from the start)
    refuseTools: ANSWERS_WITH_TOOLS,
    malformed: /malformed/,
    discover: true,
    alwaysCloses: true,
  },
  {
    name: "ollama",
    kind: "ollama",
    // discovery off for the refusal case, so the gateway learns it from the refusal itself
    start: () => startOllamaFake({ models: [{ name: "q:latest", capabilities: ["completion"] }] }),
    model: "q",
    yaml: "",
    refuseTools: { text: "Done without tools." },
    malformed: /malformed|not JSON|invalid/i,
    discover: true,
  },
  {
    name: "anthropic",
    kind: "anthropic",
    start: () => startAnthropicFake(),
    model: "claude-fake",
    yaml: "",
    refuseTools: ANSWERS_WITH_TOOLS,
    malformed: /malformed/,
    // message_start, content_block_start, ping, the first text delta
    malformedAfter: 4,
    // the fake has no model list
    discover: false,
  },
];

function cases(b: Backend): Case[] {
  // A body delimited by the connection's close ends where the reset cuts it, as far as Node's http
  // client can tell: the answer is then one that ended before it finished.
  const brokeOff = b.alwaysCloses ? /broke off|ended its stream without finishing/ : /broke off/;
  return [
    {
      name: "connection refused",
      down: true,
      plain: { status: "unavailable", match: /connection refused/ },
      stream: { status: "unavailable", match: /connection refused/ },
    },
    {
      name: "reset before headers",
      reply: { fault: { kind: "resetBeforeHeaders" } },
      plain: { status: "unavailable", match: /reset/ },
      stream: { status: "unavailable", match: /reset/ },
    },
    {
      name: "reset mid-stream",
      reply: { text: LONG_TEXT, fault: { kind: "resetAfterChunks", chunks: 5 } },
      plain: { status: "api", match: brokeOff },
      stream: { inStream: "api", match: brokeOff, text: true },
    },
    {
      name: "hang before the first byte",
      reply: { text: "never", fault: { kind: "hangBeforeHeaders" } },
      plain: { status: "timeout", match: /did not answer within 700 ms.*load_ms/ },
      stream: { inStream: "timeout", match: /did not answer within 700 ms/, pings: true },
    },
    {
      name: "hang after the headers",
      reply: { text: "never", fault: { kind: "hangAfterChunks", chunks: 0 } },
      plain: { status: "timeout", match: /no token within 700 ms.*first_token_ms/ },
      stream: { inStream: "timeout", match: /no token within 700 ms/, pings: true },
    },
    {
      name: "hang mid-stream",
      reply: { text: LONG_TEXT, fault: { kind: "hangAfterChunks", chunks: 4 } },
      plain: { status: "timeout", match: /silent for 500 ms.*idle_ms/ },
      stream: { inStream: "timeout", match: /silent for 500 ms/, text: true },
    },
    {
      name: "an answer slower than total_ms",
      limits: { total_ms: 900 },
      reply: { text: LONG_TEXT, chunkSize: 2, fault: { kind: "delayBetweenChunks", ms: 40 } },
      plain: { status: "timeout", match: /longer than 900 ms.*total_ms/ },
      stream: { inStream: "timeout", match: /longer than 900 ms/, text: true },
    },
    {
      name: "slow model load",
      reply: { text: "Loaded at last.", fault: { kind: "delayFirstByte", ms: 550 } },
      plain: { ok: "Loaded at last." },
      stream: { ok: "Loaded at last.", pings: true },
    },
    {
      name: "malformed stream",
      reply: { text: LONG_TEXT, fault: { kind: "malformed", afterChunks: b.malformedAfter ?? 2 } },
      plain: { status: "api", match: b.malformed },
      stream: { inStream: "api", match: b.malformed },
    },
    {
      name: "no finish marker",
      reply: { text: LONG_TEXT, fault: { kind: "unfinished" } },
      plain: { status: "api", match: /ended its stream without finishing/ },
      stream: { inStream: "api", match: /ended its stream without finishing/, text: true },
    },
    {
      name: "garbage after the last event",
      reply: { text: "All of it.", fault: { kind: "garbageAfterEnd" } },
      plain: { ok: "All of it." },
      stream: { ok: "All of it." },
    },
    {
      name: "500",
      reply: { fault: { kind: "status", status: 500 } },
      plain: { status: "api", match: /answered 500/ },
      stream: { status: "api", match: /answered 500/ },
    },
    {
      name: "503",
      reply: { fault: { kind: "status", status: 503 } },
      plain: { status: "overloaded", match: /answered 503/ },
      stream: { status: "overloaded", match: /answered 503/ },
    },
    {
      name: "429",
      reply: { fault: { kind: "status", status: 429, headers: { "retry-after": "7" } } },
      plain: { status: "rate_limit", match: /answered 429/, retryAfter: "7" },
      stream: { status: "rate_limit", match: /answered 429/, retryAfter: "7" },
    },
    {
      name: "200 with an empty stream",
      reply: { fault: { kind: "emptyStream" } },
      plain: { status: "api", match: /b / },
      stream: { status: "api", match: /b / },
    },
    {
      name: "tools refused",
      tools: true,
      noDiscovery: b.kind === "ollama" || !b.discover,
      reply: b.refuseTools,
      plain: { ok: "Done without tools." },
      stream: { ok: "Done without tools." },
    },
  ];
}

/** A free loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

function yamlOf(b: Backend, url: string, limits: typeof LIMITS): string {
  const t = Object.entries(limits)
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
  return `
backends:
  b:
    kind: ${b.kind}
    url: "${url}"
    ${b.yaml}
    breaker: { failures: 0 }
    concurrency: 0
    timeouts: { ${t} }
models:
  test-model: { backend: b, model: "${b.model}" }
`;
}

interface Dialect {
  name: "anthropic" | "openai";
  path: string;
  headers: Record<string, string>;
  body(stream: boolean, tools: boolean): Record<string, unknown>;
}

const DIALECTS: Dialect[] = [
  {
    name: "anthropic",
    path: "/v1/messages",
    headers: { "anthropic-version": "2023-06-01" },
    body: (stream, tools) => ({
      model: "test-model",
      max_tokens: 256,
      stream,
      messages: [{ role: "user", content: "Hello" }],
      ...(tools
        ? {
            tools: [
              {
                name: "read",
                description: "Reads a file",
                input_schema: { type: "object", properties: { path: { type: "string" } } },
              },
            ],
          }
        : {}),
    }),
  },
  {
    name: "openai",
    path: "/v1/chat/completions",
    headers: {},
    body: (stream, tools) => ({
      model: "test-model",
      stream,
      messages: [{ role: "user", content: "Hello" }],
      ...(tools
        ? {
            tools: [
              {
                type: "function",
                function: {
                  name: "read",
                  description: "Reads a file",
                  parameters: { type: "object", properties: { path: { type: "string" } } },
                },
              },
            ],
          }
        : {}),
    }),
  },
];

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function post(url: string, d: Dialect, stream: boolean, tools: boolean): Promise<Answer> {
  const res = await fetch(`${url}${d.path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...d.headers },
    body: JSON.stringify(d.body(stream, tools)),
    signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function errorBody(d: Dialect, kind: Kind, body: any, what: string): string {
  if (d.name === "anthropic") {
    assert.deepEqual(Object.keys(body).sort(), ["error", "type"], `${what}: ${JSON.stringify(body)}`);
    assert.equal(body.type, "error", what);
    assert.equal(body.error.type, ANTHROPIC[kind].type, `${what}: error.type`);
    return body.error.message;
  }
  assert.deepEqual(Object.keys(body), ["error"], `${what}: ${JSON.stringify(body)}`);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"], what);
  assert.equal(body.error.type, OPENAI[kind].type, `${what}: error.type`);
  if (OPENAI[kind].code !== null) assert.equal(body.error.code, OPENAI[kind].code, `${what}: error.code`);
  return body.error.message;
}

function check(a: Answer, d: Dialect, stream: boolean, want: Outcome, what: string): void {
  const excerpt = a.text.slice(0, 600);
  if ("status" in want) {
    const status = d.name === "anthropic" ? ANTHROPIC[want.status].status : OPENAI[want.status].status;
    assert.equal(a.status, status, `${what}: status (${excerpt})`);
    assert.match(a.headers.get("content-type") ?? "", /^application\/json/, `${what}: an error body`);
    const message = errorBody(d, want.status, JSON.parse(a.text), what);
    assert.match(message, want.match, `${what}: message`);
    assert.match(message, /backend b\b/, `${what}: names the backend`);
    if (want.retryAfter) assert.equal(a.headers.get("retry-after"), want.retryAfter, `${what}: Retry-After`);
    return;
  }
  assert.equal(a.status, 200, `${what}: status (${excerpt})`);
  if (!stream) {
    assert.ok("ok" in want, `${what}: a plain answer is an answer or an HTTP error`);
    const body = JSON.parse(a.text);
    const text =
      d.name === "anthropic"
        ? body.content.map((c: any) => c.text ?? "").join("")
        : body.choices[0].message.content;
    assert.equal(text, want.ok, what);
    return;
  }
  assert.match(a.headers.get("content-type") ?? "", /^text\/event-stream/, what);
  const events = parseSse(a.text);
  const pinged =
    d.name === "anthropic" ? events.some((e) => e.event === "ping") : /^: keep-alive$/m.test(a.text);
  if (want.pings) assert.ok(pinged, `${what}: kept alive with pings while waiting (${excerpt})`);
  const said =
    d.name === "anthropic"
      ? events.map((e) => e.data?.delta?.text ?? "").join("")
      : events.map((e) => e.data?.choices?.[0]?.delta?.content ?? "").join("");
  if ("ok" in want) {
    if (d.name === "anthropic") checkAnthropicStream(events);
    else checkOpenAIStream(events);
    assert.equal(said, want.ok, what);
    return;
  }
  // an error event in the dialect, last; no normal end
  if (d.name === "anthropic") {
    assert.equal(events[0]?.event, "message_start", `${what}: opened`);
    const last = events.at(-1)!;
    assert.equal(last.event, "error", `${what}: ends with an error event (${excerpt})`);
    assert.match(errorBody(d, want.inStream, last.data, what), want.match, `${what}: message`);
    assert.ok(!events.some((e) => e.event === "message_stop"), `${what}: no message_stop`);
  } else {
    assert.equal(events[0]?.data?.choices?.[0]?.delta?.role, "assistant", `${what}: opened`);
    const last = events.at(-1)!;
    assert.ok(last.data?.error, `${what}: ends with an error (${excerpt})`);
    assert.match(errorBody(d, want.inStream, last.data, what), want.match, `${what}: message`);
    assert.ok(!events.some((e) => e.data === "[DONE]"), `${what}: no [DONE]`);
  }
  if (want.text) assert.ok(said.length > 0, `${what}: some text came before the failure`);
}

/**
 * Errors no one handled while the suite ran: an `error` event without a listener (on a socket, a
 * stream) is thrown from the emitter and would end the gateway's process, every client's answer
 * with it. Here the gateway runs in the test's process: they are caught and asserted on.
 */
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => {
  unhandled.push(e);
};
before(() => {
  process.on("uncaughtException", onUnhandled);
  process.on("unhandledRejection", onUnhandled);
});
after(() => {
  process.off("uncaughtException", onUnhandled);
  process.off("unhandledRejection", onUnhandled);
});

/** Waits for every check, then fails with the first that failed (not before the others are over). */
async function settled(checks: Promise<void>[]): Promise<void> {
  for (const r of await Promise.allSettled(checks)) if (r.status === "rejected") throw r.reason;
}

/** A normal request in each dialect, streaming and not: the gateway is alive and well after a fault. */
async function stillServes(gw: RunningGateway, what: string): Promise<void> {
  const normal = "Hello from the fake backend.";
  await settled(
    DIALECTS.flatMap((d) =>
      [false, true].map(async (stream) => {
        const a = await post(gw.url, d, stream, false);
        check(a, d, stream, { ok: normal }, `${what}, then a normal request / ${d.name} / stream ${stream}`);
      }),
    ),
  );
}

for (const b of BACKENDS) {
  for (const connection of b.alwaysCloses ? ["close"] : ["keep-alive", "close"]) {
    describe(`faults: ${b.name} backend, connection ${connection}`, () => {
      let fake: FakeServer;
      let downUrl: string;
      before(async () => {
        fake = await b.start();
        fake.setKeepAlive(connection === "keep-alive");
        downUrl = `http://127.0.0.1:${await closedPort()}`;
      });
      after(async () => {
        await fake.close();
      });

      for (const c of cases(b)) {
        test(c.name, async () => {
          const limits = { ...LIMITS, ...c.limits };
          const url = c.down ? downUrl : fake.url;
          const gw: RunningGateway = await startGateway(yamlOf(b, url, limits), {
            keepAliveAfterMs: OPEN_AFTER_MS,
            pingIntervalMs: PING_MS,
            discover: !c.down && !c.noDiscovery,
          });
          const name = `${b.name} (${connection}) / ${c.name}`;
          try {
            if (c.reply) fake.setReply(c.reply);
            // the four requests at once (the backend serves them all at once: concurrency 0)
            await settled(
              DIALECTS.flatMap((d) =>
                [false, true].map(async (stream) => {
                  const what = `${name} / ${d.name} / stream ${stream}`;
                  const started = performance.now();
                  const a = await post(gw.url, d, stream, c.tools ?? false);
                  check(a, d, stream, stream ? c.stream : c.plain, what);
                  assert.ok(performance.now() - started < ANSWER_WITHIN_MS, `${what}: answered in time`);
                }),
              ),
            );
            fake.setReply({ text: "Hello from the fake backend." });
            if (!c.down) await stillServes(gw, name);
            // whatever happened, the backend's place was given back
            const health = (await (await fetch(`${gw.url}/health`)).json()) as any;
            assert.equal(health.backends[0].queue.running, 0, `${name}: no place left held`);
            // what a socket or a stream let fall comes a tick or two later
            await new Promise((r) => setTimeout(r, 20));
            assert.deepEqual(unhandled.splice(0).map(String), [], `${name}: nothing left unhandled`);
          } finally {
            fake.setReply({ text: "Hello from the fake backend." });
            await gw.close();
          }
        });
      }
    });
  }
}

describe("after the fault suite", () => {
  test("no socket, timer or listener is left open", async () => {
    const extra = () => {
      const now = resources();
      const left: string[] = [];
      for (const [k, n] of now)
        if (n > (baseline.get(k) ?? 0)) left.push(`${k} ×${n - (baseline.get(k) ?? 0)}`);
      return left;
    };
    const deadline = performance.now() + 3000;
    while (extra().length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(extra(), [], "resources left open besides those open before the suite");
  });
});
