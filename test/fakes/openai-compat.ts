/**
 * A fake OpenAI-compatible chat server in one of five flavors, each speaking its server's dialect:
 *
 * - generic:  api.openai.com (chunk fields id/object/created/model/service_tier/system_fingerprint/choices, `usage:
 *             null` on every chunk when include_usage, errors pretty-printed with 4 spaces like OpenAI's).
 * - llamacpp: llama-server (tools/server). Keys in nlohmann ordered_json insertion order (`choices` first), first
 *             delta `{"role":"assistant","content":null}`, tool-call delta `{index,id,type,function:{name}}` then
 *             `{index,function:{arguments}}`, `timings` on the last chunk, /health, /props, /tokenize.
 * - vllm:     vLLM's api_server (pydantic, exclude_unset), finish chunk `delta:{"content":""}` with `stop_reason`,
 *             usage `{prompt_tokens,total_tokens,completion_tokens}`, /v1/models with `max_model_len`,
 *             401 body `{"error":"Unauthorized"}` only on /v1 paths.
 * - lmstudio: LM Studio's server, /api/v0/models with `state`, `max_context_length`, `loaded_context_length`.
 * - tinygrad: tinygrad/apps/llm.py --serve. Python json.dumps spacing, HTTP/1.0-style close-delimited bodies,
 *             text only: no reasoning parser and no tool calls (scripted ones are rendered into the text as a raw
 *             model would print them). Requests it cannot take make it crash (see TinygradOptions).
 */
import {
  ALNUM,
  DIGITS,
  type ErrorResponse,
  type Exchange,
  type FakeHost,
  HEX,
  LOWER_ALNUM,
  type Payload,
  type Plan,
  type PlannedToolCall,
  planReply,
  pyJson,
  randomString,
  sseData,
  startFake,
  unixSeconds,
} from "./core.js";
import type { FakeServer, RecordedRequest, ReplyFn, ScriptedReply } from "./script.js";
import { BOS, chatTokens, fakeTokenIds, fakeTokenize, renderChat } from "./tokenizer.js";

export type OpenAICompatFlavor = "llamacpp" | "vllm" | "lmstudio" | "tinygrad" | "generic";

export interface TinygradOptions {
  /**
   * true (default): reject anything a text-only server cannot take: `tools`, a `tool` message, an assistant with
   * `tool_calls`, null content, non-string content. false: exactly what llm.py rejects (null or non-string,
   * non-list content, a content part other than text, a missing `model`/`messages`/`content`); llm.py itself
   * ignores `tools`, `tool_calls` and the role names.
   */
  strict?: boolean;
  /**
   * "http500" (default): answer 500 with a Python traceback as text/plain. "close": what llm.py really does — the
   * exception escapes the handler, socketserver prints the traceback on the server's stderr and closes the
   * connection without a response.
   */
  crash?: "http500" | "close";
}

export interface OpenAICompatFakeOptions {
  flavor?: OpenAICompatFlavor;
  /** Served model ids. llama.cpp and tinygrad serve one model: the first. Default ["fake-model"]. */
  models?: string[];
  reply?: ReplyFn | ScriptedReply;
  /** When set, `Authorization: Bearer <apiKey>` is required (on the paths the real server guards). */
  apiKey?: string;
  /**
   * The context the server runs with (default 8192): llama.cpp n_ctx (400 exceed_context_size_error from a prompt
   * that fills it), vLLM max_model_len (400 past it, or past it with max_tokens), LM Studio loaded_context_length
   * (200 with an empty stream past it), tinygrad --max_context (a crash past it). Prompts are counted with the
   * shared fake tokenizer (tokenizer.ts) and reported as prompt_tokens.
   */
  contextLength?: number;
  /** The model's trained maximum: llama.cpp meta.n_ctx_train, LM Studio max_context_length. Default 131072. */
  maxContextLength?: number;
  /**
   * llama.cpp: its slots (`--parallel`, `/props` total_slots; default 1), each with the prompt it last
   * read. A request reuses the common token prefix with its slot's prompt (`cache_prompt`, default
   * true) and reports it as `timings.cache_n` and `usage.prompt_tokens_details.cached_tokens`. The
   * slot is `id_slot` when given, else as llama-server picks it: the idle slot whose prompt shares
   * the largest fraction (> 0.10) of this one, else the least recently used.
   */
  slots?: number;
  /** vLLM: `--enable-prompt-tokens-details` (prompt_tokens_details is null without it); its prefix cache in 16-token blocks. */
  promptTokensDetails?: boolean;
  tinygrad?: TinygradOptions;
  /**
   * llama.cpp: how it reads a prompt, for `return_progress: true` streams. It reads the tokens its
   * cache does not hold `batch` at a time (`--batch-size`, default 2048), `batchMs` each (default 0),
   * and reports each batch as a `prompt_progress` chunk, a 0 % one first (tools/server
   * server-context.cpp). `stallAfter`: it hangs after that many progress chunks.
   */
  promptReading?: { batch?: number; batchMs?: number; stallAfter?: number };
  /**
   * llama.cpp `--slot-save-path`: `POST /slots/{id}?action=save|restore|erase` keep a slot's prompt
   * in a named file and put it back (in memory here). Without it every action answers 501, as the
   * real server does.
   */
  slotSavePath?: boolean;
}

/** One llama.cpp slot: the prompt's tokens it holds, and when it was last used. */
interface Slot {
  tokens: number[];
  used: number;
}

interface Config {
  slots: Slot[];
  /** vLLM's prefix cache (the prompts it read), when prompt_tokens_details is on. */
  vllmCache?: number[][];
  models: string[];
  contextLength: number;
  maxContextLength: number;
  apiKey: string | undefined;
  tinygrad: Required<TinygradOptions>;
  promptReading: { batch: number; batchMs: number; stallAfter?: number };
  /** The slot files (`--slot-save-path`), by name; undefined: not started with it. */
  slotFiles?: Map<string, number[]>;
}

/** Everything a dialect needs to encode one chat answer. */
interface Answer {
  id: string;
  created: number;
  model: string;
  plan: Plan;
  prompt: number;
  completion: number;
  /** Whether the script gave the completion count (else it is the plan's content chunks). */
  completionGiven: boolean;
  /** Prompt tokens the server's cache held (llama.cpp's slot, vLLM's prefix cache); undefined: not reported. */
  cached: number | undefined;
  includeUsage: boolean;
}

type Obj = Record<string, unknown>;

interface Dialect {
  json(value: unknown): string;
  streamHeaders: Record<string, string>;
  jsonHeaders: Record<string, string>;
  closeDelimited?: boolean;
  completionId(): string;
  toolCallId(): string;
  /** Whether the real server wants the API key on this path. */
  guarded(pathname: string): boolean;
  authError(ex: Exchange, cfg: Config): ErrorResponse;
  error(status: number, message: string): ErrorResponse;
  notFound(ex: Exchange): ErrorResponse;
  /** The stream as JSON values, one per SSE frame, before `data: [DONE]`. */
  chunks(a: Answer): Obj[];
  body(a: Answer): Obj;
  models(cfg: Config): Obj;
  /** Flavor-specific endpoints; returns true when it answered. */
  route?(ex: Exchange, host: FakeHost, cfg: Config, dialect: Dialect): boolean;
  /** The prompt tokens its cache holds for this request (and what it keeps for the next); absent: no cache reported. */
  promptCache?(body: Obj, cfg: Config, recorded: RecordedRequest): number | undefined;
  /** Stream chunks sent while the prompt is read, before the answer (llama.cpp's prompt progress). */
  prelude?(a: Answer, body: Obj, cfg: Config): Payload["prelude"];
  /** What the server does with a prompt of `prompt` tokens past its window; returns true when it answered. */
  overflow?(ex: Exchange, host: FakeHost, cfg: Config, prompt: number): boolean;
}

export async function startOpenAICompatFake(opts: OpenAICompatFakeOptions = {}): Promise<FakeServer> {
  const dialect = DIALECTS[opts.flavor ?? "generic"];
  const cfg: Config = {
    slots: Array.from({ length: Math.max(1, opts.slots ?? 1) }, () => ({ tokens: [], used: 0 })),
    ...(opts.promptTokensDetails ? { vllmCache: [] } : {}),
    models: opts.models && opts.models.length > 0 ? opts.models : ["fake-model"],
    contextLength: opts.contextLength ?? 8192,
    maxContextLength: opts.maxContextLength ?? 131072,
    apiKey: opts.apiKey,
    tinygrad: { strict: opts.tinygrad?.strict ?? true, crash: opts.tinygrad?.crash ?? "http500" },
    ...(opts.slotSavePath ? { slotFiles: new Map<string, number[]>() } : {}),
    promptReading: {
      batch: Math.max(1, opts.promptReading?.batch ?? 2048),
      batchMs: opts.promptReading?.batchMs ?? 0,
      stallAfter: opts.promptReading?.stallAfter,
    },
  };
  const tinygrad = opts.flavor === "tinygrad";
  return startFake(async (ex, host) => {
    if (cfg.apiKey !== undefined && dialect.guarded(ex.pathname)) {
      if (ex.req.headers.authorization !== `Bearer ${cfg.apiKey}`)
        return sendError(ex, host, dialect, 401, dialect.authError(ex, cfg));
    }
    if (
      ex.method === "POST" &&
      (ex.pathname === "/v1/chat/completions" || ex.pathname === "/chat/completions")
    ) {
      if (tinygrad) {
        const crash = tinygradCrash(ex.body, cfg.tinygrad.strict);
        if (crash) return sendTinygradCrash(ex, host, cfg, crash);
      } else if (!ex.bodyIsJson || typeof ex.body !== "object" || !Array.isArray(ex.body.messages)) {
        return sendError(
          ex,
          host,
          dialect,
          400,
          dialect.error(400, "'messages' is required and must be an array"),
        );
      }
      return chat(ex, host, dialect, cfg);
    }
    if (ex.method === "GET" && ex.pathname === "/v1/models") {
      return host.send(
        ex,
        200,
        dialect.json(dialect.models(cfg)),
        dialect.jsonHeaders,
        dialect.closeDelimited,
      );
    }
    if (dialect.route?.(ex, host, cfg, dialect)) return;
    sendError(ex, host, dialect, 404, dialect.notFound(ex));
  }, opts.reply);
}

function sendError(ex: Exchange, host: FakeHost, dialect: Dialect, status: number, err: ErrorResponse): void {
  host.send(ex, status, err.body, err.headers, dialect.closeDelimited);
}

async function chat(ex: Exchange, host: FakeHost, dialect: Dialect, cfg: Config): Promise<void> {
  const body = ex.body as Obj;
  // the prompt as the model reads it: the chat template, then the tokenizer (see tokenizer.ts)
  const counted = chatTokens(body.messages, body.tools);
  ex.recorded.prompt = { tokens: counted, window: cfg.contextLength };
  if (dialect.overflow?.(ex, host, cfg, counted)) return;
  const cached = dialect.promptCache?.(body, cfg, ex.recorded);
  const reply = await host.reply(ex.recorded);
  const plan = planReply(reply, () => dialect.toolCallId());
  const streaming = body.stream === true;
  const streamOptions = body.stream_options as Obj | undefined;
  const answer: Answer = {
    id: dialect.completionId(),
    created: unixSeconds(),
    model: typeof body.model === "string" ? body.model : (cfg.models[0] as string),
    plan,
    prompt: reply.usage?.prompt ?? counted,
    completion: reply.usage?.completion ?? plan.contentChunks,
    completionGiven: reply.usage !== undefined,
    // a script that gives the prompt count gives the whole usage: nothing came from the cache
    cached:
      cached === undefined ? undefined : reply.usage?.prompt !== undefined ? 0 : Math.min(cached, counted),
    includeUsage: streamOptions?.include_usage === true,
  };
  const objects = streaming ? dialect.chunks(answer) : [];
  const payload: Payload = streaming
    ? {
        headers: dialect.streamHeaders,
        chunks: [...objects.map((c) => sseData(dialect.json(c))), sseData("[DONE]")],
        prelude: dialect.prelude?.(answer, body, cfg),
        streaming: true,
        garbage: 'data: {"choices":[{"index":0,"delta":{"content":"unterminat\n\n',
        closeDelimited: dialect.closeDelimited,
        finish: indexes(objects, (c) => Boolean(choice(c)?.finish_reason)),
        ...repeated(
          indexes(
            objects,
            (c) => typeof choice(c)?.delta?.content === "string" && choice(c).delta.content !== "",
          ),
          reply.repeat,
        ),
      }
    : {
        headers: dialect.jsonHeaders,
        chunks: [dialect.json(dialect.body(answer))],
        streaming: false,
        garbage: "<html><body>502 Bad Gateway</body></html>",
        closeDelimited: dialect.closeDelimited,
      };
  await host.deliver(ex, payload, reply.fault, (status) => dialect.error(status, "fake upstream failure"));
}

/** The first choice of a chunk. */
function choice(c: Obj): any {
  return (c.choices as any[] | undefined)?.[0];
}

/** The indexes of the chunks that pass `test`. */
function indexes(chunks: Obj[], test: (c: Obj) => boolean): number[] {
  return chunks.flatMap((c, i) => (test(c) ? [i] : []));
}

/** The text chunks (contiguous indexes) sent `times` times over. */
function repeated(text: number[], times: number | undefined): Pick<Payload, "repeat"> {
  if (!times || times === 1 || !text.length) return {};
  return { repeat: { from: text[0] as number, to: (text.at(-1) as number) + 1, times } };
}

// ---------------------------------------------------------------------------------------------------------------
// Pieces common to the dialects
// ---------------------------------------------------------------------------------------------------------------

/** The deltas of a reply in stream order: reasoning, text, then each tool call (start, then argument pieces). */
type Delta =
  | { kind: "reasoning"; text: string }
  | { kind: "text"; text: string }
  | { kind: "toolStart"; call: PlannedToolCall }
  | { kind: "toolArgs"; call: PlannedToolCall; args: string };

function deltas(plan: Plan): Delta[] {
  const out: Delta[] = [];
  for (const text of plan.reasoningChunks) out.push({ kind: "reasoning", text });
  for (const text of plan.textChunks) out.push({ kind: "text", text });
  for (const call of plan.toolCalls) {
    out.push({ kind: "toolStart", call });
    for (const args of call.argChunks) if (args.length > 0) out.push({ kind: "toolArgs", call, args });
  }
  return out;
}

const JSON_UTF8 = { "content-type": "application/json; charset=utf-8" };

function openAIErrorType(status: number): string {
  if (status === 400 || status === 422) return "invalid_request_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status === 503) return "unavailable_error";
  return "server_error";
}

// ---------------------------------------------------------------------------------------------------------------
// generic: api.openai.com
// ---------------------------------------------------------------------------------------------------------------

const openaiPretty = (value: unknown) => `${JSON.stringify(value, null, 4)}\n`;

const generic: Dialect = {
  json: (v) => JSON.stringify(v),
  streamHeaders: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
  jsonHeaders: { "content-type": "application/json" },
  completionId: () => `chatcmpl-${randomString(ALNUM, 29)}`,
  toolCallId: () => `call_${randomString(ALNUM, 24)}`,
  guarded: () => true,
  authError: (ex) => {
    const auth = ex.req.headers.authorization;
    const given = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
    const error = given
      ? {
          message: `Incorrect API key provided: ${mask(given)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          type: "invalid_request_error",
          param: null,
          code: "invalid_api_key",
        }
      : {
          message:
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
          type: "invalid_request_error",
          param: null,
          code: null,
        };
    return { body: openaiPretty({ error }), headers: { "content-type": "application/json; charset=utf-8" } };
  },
  error: (status, message) => ({
    body: openaiPretty({ error: { message, type: openAIErrorType(status), param: null, code: null } }),
    headers: { "content-type": "application/json; charset=utf-8" },
  }),
  notFound: (ex) => generic.error(404, `Invalid URL (${ex.method} ${ex.pathname})`),
  chunks: (a) => {
    const usage = a.includeUsage ? { usage: null } : {};
    const chunk = (delta: Obj, finish: string | null): Obj => ({
      id: a.id,
      object: "chat.completion.chunk",
      created: a.created,
      model: a.model,
      service_tier: "default",
      system_fingerprint: "fp_fake0001",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...usage,
    });
    const out: Obj[] = [chunk({ role: "assistant", content: "", refusal: null }, null)];
    for (const d of deltas(a.plan)) {
      if (d.kind === "reasoning") out.push(chunk({ reasoning_content: d.text }, null));
      else if (d.kind === "text") out.push(chunk({ content: d.text }, null));
      else if (d.kind === "toolStart") {
        const call = {
          index: d.call.index,
          id: d.call.id,
          type: "function",
          function: { name: d.call.name, arguments: "" },
        };
        out.push(chunk({ tool_calls: [call] }, null));
      } else
        out.push(chunk({ tool_calls: [{ index: d.call.index, function: { arguments: d.args } }] }, null));
    }
    out.push(chunk({}, a.plan.finish));
    if (a.includeUsage) {
      out.push({
        id: a.id,
        object: "chat.completion.chunk",
        created: a.created,
        model: a.model,
        service_tier: "default",
        system_fingerprint: "fp_fake0001",
        choices: [],
        usage: openAIUsage(a),
      });
    }
    return out;
  },
  body: (a) => {
    const message: Obj = { role: "assistant", content: a.plan.text || (a.plan.toolCalls.length ? null : "") };
    if (a.plan.reasoning) message.reasoning_content = a.plan.reasoning;
    if (a.plan.toolCalls.length) {
      message.tool_calls = a.plan.toolCalls.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.args },
      }));
    }
    message.refusal = null;
    message.annotations = [];
    return {
      id: a.id,
      object: "chat.completion",
      created: a.created,
      model: a.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: a.plan.finish }],
      usage: openAIUsage(a),
      service_tier: "default",
      system_fingerprint: "fp_fake0001",
    };
  },
  models: (cfg) => ({
    object: "list",
    data: cfg.models.map((id) => ({ id, object: "model", created: 1715367049, owned_by: "system" })),
  }),
};

function openAIUsage(a: Answer): Obj {
  return {
    prompt_tokens: a.prompt,
    completion_tokens: a.completion,
    total_tokens: a.prompt + a.completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function mask(key: string): string {
  return key.length <= 8
    ? key
    : `${key.slice(0, 3)}${"*".repeat(Math.max(0, key.length - 7))}${key.slice(-4)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// llamacpp: llama-server
// ---------------------------------------------------------------------------------------------------------------

const LLAMACPP_BUILD = "b6500-fake0001";
const LLAMACPP_PUBLIC = new Set(["/health", "/v1/health", "/models", "/v1/models", "/api/tags"]);

function llamaError(status: number, message: string, type = openAIErrorType(status)): ErrorResponse {
  return { body: JSON.stringify({ error: { code: status, message, type } }), headers: JSON_UTF8 };
}

function llamaTimings(a: Answer): Obj {
  const cached = a.cached ?? 0;
  const promptMs = (a.prompt - cached) * 0.25;
  const predictedMs = a.completion * 12.5;
  return {
    cache_n: cached,
    prompt_n: a.prompt - cached,
    prompt_ms: promptMs,
    prompt_per_token_ms: a.prompt - cached ? promptMs / (a.prompt - cached) : 0,
    prompt_per_second: promptMs ? ((a.prompt - cached) * 1000) / promptMs : 0,
    predicted_n: a.completion,
    predicted_ms: predictedMs,
    predicted_per_token_ms: a.completion ? predictedMs / a.completion : 0,
    predicted_per_second: predictedMs ? (a.completion * 1000) / predictedMs : 0,
  };
}

const llamacpp: Dialect = {
  promptCache: llamaPromptCache,
  prelude: (a, body, cfg) => {
    // server-context.cpp: with return_progress, a result per batch of the prompt read (a 0 % one
    // first), sent as a chunk whose delta is the role; server-task.cpp result_prompt_progress::to_json
    if (body.return_progress !== true) return undefined;
    const { batch, batchMs, stallAfter } = cfg.promptReading;
    const cache = a.cached ?? 0;
    const chunks: string[] = [];
    for (let done = cache, step = 0; ; step++) {
      chunks.push(
        sseData(
          JSON.stringify({
            choices: [{ finish_reason: null, index: 0, delta: { role: "assistant", content: null } }],
            created: a.created,
            id: a.id,
            model: a.model,
            system_fingerprint: LLAMACPP_BUILD,
            object: "chat.completion.chunk",
            prompt_progress: { total: a.prompt, cache, processed: done, time_ms: step * batchMs },
          }),
        ),
      );
      if (done >= a.prompt) break;
      done = Math.min(a.prompt, done + batch);
    }
    return { chunks, everyMs: batchMs, ...(stallAfter !== undefined ? { stallAfter } : {}) };
  },
  json: (v) => JSON.stringify(v),
  streamHeaders: { "content-type": "text/event-stream", server: "llama.cpp" },
  jsonHeaders: { ...JSON_UTF8, server: "llama.cpp" },
  completionId: () => `chatcmpl-${randomString(ALNUM, 32)}`,
  toolCallId: () => randomString(ALNUM, 32),
  guarded: (pathname) => !LLAMACPP_PUBLIC.has(pathname),
  authError: () => llamaError(401, "Invalid API Key", "authentication_error"),
  error: (status, message) =>
    status === 503 ? llamaError(503, "Loading model", "unavailable_error") : llamaError(status, message),
  notFound: () => llamaError(404, "File Not Found", "not_found_error"),
  chunks: (a) => {
    const chunk = (delta: Obj, finish: string | null): Obj => ({
      choices: [{ finish_reason: finish, index: 0, delta }],
      created: a.created,
      id: a.id,
      model: a.model,
      system_fingerprint: LLAMACPP_BUILD,
      object: "chat.completion.chunk",
    });
    const out: Obj[] = [chunk({ role: "assistant", content: null }, null)];
    for (const d of deltas(a.plan)) {
      if (d.kind === "reasoning") out.push(chunk({ reasoning_content: d.text }, null));
      else if (d.kind === "text") out.push(chunk({ content: d.text }, null));
      else if (d.kind === "toolStart") {
        const call = {
          index: d.call.index,
          id: d.call.id,
          type: "function",
          function: { name: d.call.name },
        };
        out.push(chunk({ tool_calls: [call] }, null));
      } else
        out.push(chunk({ tool_calls: [{ index: d.call.index, function: { arguments: d.args } }] }, null));
    }
    out.push(chunk({}, a.plan.finish));
    if (a.includeUsage) {
      out.push({
        choices: [],
        created: a.created,
        id: a.id,
        model: a.model,
        system_fingerprint: LLAMACPP_BUILD,
        object: "chat.completion.chunk",
        usage: llamaUsage(a),
      });
    }
    (out[out.length - 1] as Obj).timings = llamaTimings(a);
    return out;
  },
  body: (a) => {
    const message: Obj = { role: "assistant", content: a.plan.text ? a.plan.text : null };
    if (a.plan.reasoning) message.reasoning_content = a.plan.reasoning;
    if (a.plan.toolCalls.length) {
      message.tool_calls = a.plan.toolCalls.map((c) => ({
        type: "function",
        function: { name: c.name, arguments: c.args },
        id: c.id,
      }));
    }
    return {
      choices: [{ finish_reason: a.plan.finish, index: 0, message }],
      created: a.created,
      model: a.model,
      system_fingerprint: LLAMACPP_BUILD,
      object: "chat.completion",
      usage: llamaUsage(a),
      id: a.id,
      timings: llamaTimings(a),
    };
  },
  models: (cfg) => ({
    object: "list",
    data: [
      {
        id: cfg.models[0],
        object: "model",
        created: unixSeconds(),
        owned_by: "llamacpp",
        meta: {
          vocab_type: 2,
          n_vocab: 128256,
          n_ctx_train: cfg.maxContextLength,
          n_embd: 4096,
          n_params: 8030261312,
          size: 4912898304,
        },
      },
    ],
  }),
  route: (ex, host, cfg, dialect) => {
    const send = (body: unknown) => host.send(ex, 200, JSON.stringify(body), dialect.jsonHeaders);
    if (ex.method === "GET" && (ex.pathname === "/health" || ex.pathname === "/v1/health")) {
      send({ status: "ok" });
      return true;
    }
    if (ex.method === "GET" && ex.pathname === "/models") {
      send(dialect.models(cfg));
      return true;
    }
    if (ex.method === "GET" && ex.pathname === "/props") {
      send(llamaProps(cfg));
      return true;
    }
    const slotAction = /^\/slots\/([^/]+)$/.exec(ex.pathname);
    if (ex.method === "POST" && slotAction) {
      const r = llamaSlotAction(cfg, slotAction[1]!, ex.query.get("action") ?? "", ex.body);
      host.send(ex, r.status, JSON.stringify(r.body), dialect.jsonHeaders);
      return true;
    }
    if (ex.method === "POST" && ex.pathname === "/tokenize") {
      const body = (ex.body ?? {}) as Obj;
      const content = typeof body.content === "string" ? body.content : "";
      const special = body.parse_special === true;
      if (body.with_pieces === true) {
        const tokens = fakeTokenize(content, special);
        if (body.add_special === true) tokens.unshift(BOS);
        send({ tokens });
      } else {
        const tokens = fakeTokenIds(content, special);
        if (body.add_special === true) tokens.unshift(BOS.id);
        send({ tokens });
      }
      return true;
    }
    if (ex.method === "POST" && ex.pathname === "/apply-template") {
      // the chat request through the model's template, as /v1/chat/completions would render it
      const body = (ex.body ?? {}) as Obj;
      if (!Array.isArray(body.messages)) {
        host.send(ex, 400, llamaError(400, "'messages' is required").body, dialect.jsonHeaders);
        return true;
      }
      send({ prompt: renderChat(body.messages, body.tools) });
      return true;
    }
    return false;
  },
  overflow: (ex, host, cfg, prompt) => {
    // tools/server: a prompt that does not leave a token free in the slot's context is refused
    if (prompt < cfg.contextLength) return false;
    const body = JSON.stringify({
      error: {
        code: 400,
        message: `request (${prompt} tokens) exceeds the available context size (${cfg.contextLength} tokens), try increasing it`,
        type: "exceed_context_size_error",
        n_prompt_tokens: prompt,
        n_ctx: cfg.contextLength,
      },
    });
    host.send(ex, 400, body, JSON_UTF8);
    return true;
  },
};

function llamaUsage(a: Answer): Obj {
  return {
    completion_tokens: a.completion,
    prompt_tokens: a.prompt,
    total_tokens: a.prompt + a.completion,
    prompt_tokens_details: { cached_tokens: a.cached ?? 0 },
  };
}

function commonPrefix(a: number[], b: number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** The prompt's tokens as the model reads them: BOS, then the rendered chat (exported for bench/cache.ts). */
export function promptIds(body: Obj): number[] {
  return [BOS_ID, ...fakeTokenIds(renderChat(body.messages, body.tools), true)];
}
const BOS_ID = 1;

let slotClock = 0;

/**
 * llama-server's prompt cache (server-context.cpp get_available_slot, update_slots): `id_slot` pins
 * a slot; else the slot whose prompt shares the largest fraction of this one (over
 * --slot-prompt-similarity 0.10), else the least recently used. The common prefix is reused, but
 * the last prompt token is always evaluated again. `cache_prompt: false` reuses nothing.
 */
function llamaPromptCache(body: Obj, cfg: Config, recorded: RecordedRequest): number {
  const ids = promptIds(body);
  const asked = typeof body.id_slot === "number" ? body.id_slot : -1;
  let slot: Slot | undefined = asked >= 0 ? cfg.slots[asked] : undefined;
  if (!slot) {
    let best = 0;
    for (const s of cfg.slots) {
      const f = s.tokens.length ? commonPrefix(s.tokens, ids) / ids.length : 0;
      if (f > 0.1 && f > best) {
        best = f;
        slot = s;
      }
    }
    slot ??= cfg.slots.reduce((a, b) => (b.used < a.used ? b : a));
  }
  const reuse = body.cache_prompt === false ? 0 : Math.min(commonPrefix(slot.tokens, ids), ids.length - 1);
  slot.tokens = ids;
  slot.used = ++slotClock;
  recorded.cache = { slot: cfg.slots.indexOf(slot), cached: reuse };
  return reuse;
}

/**
 * POST /slots/{id}?action=… (tools/server server-context.cpp `post_slots`, `handle_slots_save`,
 * `handle_slots_restore`, `handle_slots_erase`; responses from server-task.cpp): refused with 501
 * without --slot-save-path; the id, the action and the file name checked in that order.
 */
function llamaSlotAction(
  cfg: Config,
  id: string,
  action: string,
  body: unknown,
): { status: number; body: Obj } {
  const error = (code: number, message: string, type: string) => ({
    status: code,
    body: { error: { code, message, type } },
  });
  if (!cfg.slotFiles)
    return error(
      501,
      "This server does not support slots action. Start it with `--slot-save-path`",
      "not_supported_error",
    );
  const n = /^\d+$/.test(id) ? Number(id) : -1;
  const slot = cfg.slots[n];
  if (!slot) return error(400, "Invalid slot ID", "invalid_request_error");
  if (action === "erase") {
    const erased = slot.tokens.length;
    slot.tokens = [];
    return { status: 200, body: { id_slot: n, n_erased: erased } };
  }
  if (action !== "save" && action !== "restore") return error(400, "Invalid action", "invalid_request_error");
  const filename = (body as Obj | undefined)?.filename;
  if (typeof filename !== "string" || !/^[\w.-]+$/.test(filename) || filename.startsWith("."))
    return error(400, "Invalid filename", "invalid_request_error");
  if (action === "save") {
    cfg.slotFiles.set(filename, [...slot.tokens]);
    return {
      status: 200,
      body: {
        id_slot: n,
        filename,
        n_saved: slot.tokens.length,
        n_written: slot.tokens.length * 8192,
        timings: { save_ms: 1.5 },
      },
    };
  }
  const saved = cfg.slotFiles.get(filename);
  if (!saved)
    return error(
      400,
      "Unable to restore slot: No available space in KV cache or invalid slot save file",
      "invalid_request_error",
    );
  slot.tokens = [...saved];
  return {
    status: 200,
    body: {
      id_slot: n,
      filename,
      n_restored: saved.length,
      n_read: saved.length * 8192,
      timings: { restore_ms: 1.2 },
    },
  };
}

/** GET /props as tools/server/README.md documents it: n_ctx lives in default_generation_settings only. */
function llamaProps(cfg: Config): Obj {
  const model = cfg.models[0] as string;
  return {
    default_generation_settings: {
      id: 0,
      id_task: -1,
      n_ctx: cfg.contextLength,
      speculative: false,
      is_processing: false,
      params: {
        n_predict: -1,
        seed: 4294967295,
        temperature: 0.800000011920929,
        dynatemp_range: 0.0,
        dynatemp_exponent: 1.0,
        top_k: 40,
        top_p: 0.949999988079071,
        min_p: 0.05000000074505806,
        xtc_probability: 0.0,
        xtc_threshold: 0.10000000149011612,
        typical_p: 1.0,
        repeat_last_n: 64,
        repeat_penalty: 1.0,
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        mirostat: 0,
        mirostat_tau: 5.0,
        mirostat_eta: 0.10000000149011612,
        stop: [],
        max_tokens: -1,
        n_keep: 0,
        n_discard: 0,
        ignore_eos: false,
        stream: true,
        n_probs: 0,
        min_keep: 0,
        grammar: "",
        samplers: ["dry", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"],
        "speculative.n_max": 16,
        "speculative.n_min": 5,
        "speculative.p_min": 0.8999999761581421,
        timings_per_token: false,
      },
      prompt: "",
      next_token: {
        has_next_token: true,
        has_new_line: false,
        n_remain: -1,
        n_decoded: 0,
        stopping_word: "",
      },
    },
    total_slots: cfg.slots.length,
    model_alias: model,
    model_path: `/models/${model}.gguf`,
    chat_template:
      "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
    chat_template_caps: {
      supports_parallel_tool_calls: true,
      supports_preserve_reasoning: false,
      supports_string_content: true,
      supports_system_role: true,
      supports_tool_calls: true,
      supports_tools: true,
      supports_typed_content: false,
    },
    modalities: { vision: false, audio: false },
    build_info: LLAMACPP_BUILD,
    is_sleeping: false,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// vllm: vLLM's OpenAI-compatible api_server
// ---------------------------------------------------------------------------------------------------------------

/** vLLM's automatic prefix caching: the longest prefix, in whole 16-token blocks, of a prompt it read before. */
function vllmPromptCache(body: Obj, cfg: Config): number | undefined {
  if (!cfg.vllmCache) return undefined;
  const ids = promptIds(body);
  let best = 0;
  for (const seen of cfg.vllmCache) best = Math.max(best, commonPrefix(seen, ids));
  cfg.vllmCache.push(ids);
  if (cfg.vllmCache.length > 64) cfg.vllmCache.shift();
  return Math.floor(Math.min(best, ids.length - 1) / 16) * 16;
}

const vllm: Dialect = {
  promptCache: vllmPromptCache,
  json: (v) => JSON.stringify(v),
  streamHeaders: { "content-type": "text/event-stream; charset=utf-8", server: "uvicorn" },
  jsonHeaders: { "content-type": "application/json", server: "uvicorn" },
  completionId: () => `chatcmpl-${randomString(HEX, 32)}`,
  toolCallId: () => `chatcmpl-tool-${randomString(HEX, 32)}`,
  guarded: (pathname) => pathname.startsWith("/v1"),
  authError: () => ({
    body: JSON.stringify({ error: "Unauthorized" }),
    headers: { "content-type": "application/json" },
  }),
  error: (status, message) => ({
    body: JSON.stringify({ error: { message, type: vllmErrorType(status), param: null, code: status } }),
    headers: { "content-type": "application/json" },
  }),
  notFound: () => ({
    body: JSON.stringify({ detail: "Not Found" }),
    headers: { "content-type": "application/json" },
  }),
  chunks: (a) => {
    const chunk = (delta: Obj, finish: string | null): Obj => {
      const choice: Obj = { index: 0, delta, logprobs: null, finish_reason: finish };
      if (finish !== null) choice.stop_reason = a.plan.stopSequence ?? null;
      return {
        id: a.id,
        object: "chat.completion.chunk",
        created: a.created,
        model: a.model,
        choices: [choice],
      };
    };
    const out: Obj[] = [chunk({ role: "assistant", content: "" }, null)];
    for (const d of deltas(a.plan)) {
      if (d.kind === "reasoning") out.push(chunk({ reasoning_content: d.text }, null));
      else if (d.kind === "text") out.push(chunk({ content: d.text }, null));
      else if (d.kind === "toolStart") {
        const call = {
          id: d.call.id,
          type: "function",
          index: d.call.index,
          function: { name: d.call.name },
        };
        out.push(chunk({ tool_calls: [call] }, null));
      } else
        out.push(chunk({ tool_calls: [{ index: d.call.index, function: { arguments: d.args } }] }, null));
    }
    out.push(chunk({ content: "" }, a.plan.finish));
    if (a.includeUsage) {
      out.push({
        id: a.id,
        object: "chat.completion.chunk",
        created: a.created,
        model: a.model,
        choices: [],
        usage: {
          prompt_tokens: a.prompt,
          total_tokens: a.prompt + a.completion,
          completion_tokens: a.completion,
          prompt_tokens_details: a.cached === undefined ? null : { cached_tokens: a.cached },
        },
      });
    }
    return out;
  },
  body: (a) => ({
    id: a.id,
    object: "chat.completion",
    created: a.created,
    model: a.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          reasoning_content: a.plan.reasoning || null,
          content: a.plan.text ? a.plan.text : null,
          tool_calls: a.plan.toolCalls.map((c) => ({
            id: c.id,
            type: "function",
            function: { name: c.name, arguments: c.args },
          })),
        },
        logprobs: null,
        finish_reason: a.plan.finish,
        stop_reason: a.plan.stopSequence ?? null,
      },
    ],
    usage: {
      prompt_tokens: a.prompt,
      total_tokens: a.prompt + a.completion,
      completion_tokens: a.completion,
      prompt_tokens_details: a.cached === undefined ? null : { cached_tokens: a.cached },
    },
    prompt_logprobs: null,
    kv_transfer_params: null,
  }),
  models: (cfg) => ({
    object: "list",
    data: cfg.models.map((id) => ({
      id,
      object: "model",
      created: unixSeconds(),
      owned_by: "vllm",
      root: cfg.models[0],
      parent: null,
      max_model_len: cfg.contextLength,
      permission: [
        {
          id: `modelperm-${randomString(HEX, 32)}`,
          object: "model_permission",
          created: unixSeconds(),
          allow_create_engine: false,
          allow_sampling: true,
          allow_logprobs: true,
          allow_search_indices: false,
          allow_view: true,
          allow_fine_tuning: false,
          organization: "*",
          group: null,
          is_blocking: false,
        },
      ],
    })),
  }),
  overflow: (ex, host, cfg, prompt) => {
    // serving_engine's _validate_input: the prompt alone, then the prompt with max_tokens
    const body = ex.body as Obj;
    const max = cfg.contextLength;
    const asked = (body.max_completion_tokens ?? body.max_tokens) as number | undefined;
    let message: string | undefined;
    if (prompt > max)
      message = `This model's maximum context length is ${max} tokens. However, your request has ${prompt} input tokens. Please reduce the length of the input messages.`;
    else if (typeof asked === "number" && prompt + asked > max)
      message = `'max_tokens' or 'max_completion_tokens' is too large: ${asked}. This model's maximum context length is ${max} tokens and your request has ${prompt} input tokens (${asked} > ${max} - ${prompt}). None`;
    if (!message) return false;
    const err = vllm.error(400, message);
    host.send(ex, 400, err.body, err.headers);
    return true;
  },
  route: (ex, host) => {
    if (ex.method === "GET" && ex.pathname === "/health") {
      host.send(ex, 200, "", { server: "uvicorn" });
      return true;
    }
    if (ex.method === "GET" && ex.pathname === "/version") {
      host.send(ex, 200, JSON.stringify({ version: "0.10.1" }), vllm.jsonHeaders);
      return true;
    }
    return false;
  },
};

function vllmErrorType(status: number): string {
  if (status === 400) return "BadRequestError";
  if (status === 404) return "NotFoundError";
  return "InternalServerError";
}

// ---------------------------------------------------------------------------------------------------------------
// lmstudio: LM Studio's server
// ---------------------------------------------------------------------------------------------------------------

const lmstudio: Dialect = {
  json: (v) => JSON.stringify(v),
  streamHeaders: { "content-type": "text/event-stream", "x-powered-by": "Express" },
  jsonHeaders: { ...JSON_UTF8, "x-powered-by": "Express" },
  completionId: () => `chatcmpl-${randomString(LOWER_ALNUM, 21)}`,
  toolCallId: () => randomString(DIGITS, 9),
  guarded: () => true,
  authError: () => ({
    body: JSON.stringify({
      error: {
        message: "Invalid LM Studio API token",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      },
    }),
    headers: JSON_UTF8,
  }),
  error: (_status, message) => ({ body: JSON.stringify({ error: message }), headers: JSON_UTF8 }),
  notFound: (ex) => lmstudio.error(404, `Unexpected endpoint or method. (${ex.method} ${ex.pathname})`),
  chunks: (a) => {
    const chunk = (delta: Obj, finish: string | null): Obj => ({
      id: a.id,
      object: "chat.completion.chunk",
      created: a.created,
      model: a.model,
      system_fingerprint: a.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    const out: Obj[] = [chunk({ role: "assistant", content: "" }, null)];
    for (const d of deltas(a.plan)) {
      if (d.kind === "reasoning") out.push(chunk({ role: "assistant", reasoning_content: d.text }, null));
      else if (d.kind === "text") out.push(chunk({ role: "assistant", content: d.text }, null));
      else if (d.kind === "toolStart") {
        const call = {
          index: d.call.index,
          id: d.call.id,
          type: "function",
          function: { name: d.call.name, arguments: "" },
        };
        out.push(chunk({ role: "assistant", tool_calls: [call] }, null));
      } else {
        const call = { index: d.call.index, type: "function", function: { arguments: d.args } };
        out.push(chunk({ role: "assistant", tool_calls: [call] }, null));
      }
    }
    out.push(chunk({}, a.plan.finish));
    if (a.includeUsage) {
      out.push({
        id: a.id,
        object: "chat.completion.chunk",
        created: a.created,
        model: a.model,
        system_fingerprint: a.model,
        choices: [],
        usage: {
          prompt_tokens: a.prompt,
          completion_tokens: a.completion,
          total_tokens: a.prompt + a.completion,
        },
      });
    }
    return out;
  },
  body: (a) => {
    const message: Obj = {
      role: "assistant",
      content: a.plan.text ? a.plan.text : a.plan.toolCalls.length ? null : "",
    };
    if (a.plan.reasoning) message.reasoning_content = a.plan.reasoning;
    if (a.plan.toolCalls.length) {
      message.tool_calls = a.plan.toolCalls.map((c) => ({
        id: c.id,
        type: "function",
        function: { name: c.name, arguments: c.args },
      }));
    }
    return {
      id: a.id,
      object: "chat.completion",
      created: a.created,
      model: a.model,
      choices: [{ index: 0, logprobs: null, finish_reason: a.plan.finish, message }],
      usage: {
        prompt_tokens: a.prompt,
        completion_tokens: a.completion,
        total_tokens: a.prompt + a.completion,
      },
      stats: {},
      system_fingerprint: a.model,
    };
  },
  models: (cfg) => ({
    data: cfg.models.map((id) => ({ id, object: "model", owned_by: "organization_owner" })),
    object: "list",
  }),
  overflow: (ex, _host, cfg, prompt) => {
    // LM Studio answers a prompt past the loaded context with 200 and an empty stream
    if (prompt <= cfg.contextLength || (ex.body as Obj).stream !== true) return false;
    ex.res.writeHead(200, lmstudio.streamHeaders);
    ex.res.end();
    return true;
  },
  route: (ex, host, cfg) => {
    if (ex.method !== "GET") return false;
    const info = (id: string) => ({
      id,
      object: "model",
      type: "llm",
      publisher: "lmstudio-community",
      arch: "llama",
      compatibility_type: "gguf",
      quantization: "Q4_K_M",
      state: "loaded",
      max_context_length: cfg.maxContextLength,
      loaded_context_length: cfg.contextLength,
      capabilities: ["tool_use"],
    });
    if (ex.pathname === "/api/v0/models") {
      host.send(
        ex,
        200,
        JSON.stringify({ object: "list", data: cfg.models.map(info) }),
        lmstudio.jsonHeaders,
      );
      return true;
    }
    if (ex.pathname.startsWith("/api/v0/models/")) {
      const id = decodeURIComponent(ex.pathname.slice("/api/v0/models/".length));
      if (cfg.models.includes(id)) host.send(ex, 200, JSON.stringify(info(id)), lmstudio.jsonHeaders);
      else host.send(ex, 404, JSON.stringify({ error: `Model "${id}" not found` }), lmstudio.jsonHeaders);
      return true;
    }
    return false;
  },
};

// ---------------------------------------------------------------------------------------------------------------
// tinygrad: tinygrad/apps/llm.py --serve
// ---------------------------------------------------------------------------------------------------------------

const PY_SERVER = { server: "BaseHTTP/0.6 Python/3.12.3" };

/** What llm.py streams: the raw model text, reasoning and tool calls included as a model without parsers prints them. */
function tinygradText(plan: Plan): string {
  let text = "";
  if (plan.reasoning) text += `<think>\n${plan.reasoning}\n</think>\n\n`;
  text += plan.text;
  for (const call of plan.toolCalls) {
    const args = call.raw ? call.args : pyJson(JSON.parse(call.args));
    text += `${text ? "\n" : ""}<tool_call>\n{"name": ${pyJson(call.name)}, "arguments": ${args}}\n</tool_call>`;
  }
  return text;
}

const tinygrad: Dialect = {
  json: pyJson,
  streamHeaders: { ...PY_SERVER, "Content-Type": "text/event-stream", "Cache-Control": "no-cache" },
  jsonHeaders: { ...PY_SERVER, "Content-Type": "application/json" },
  closeDelimited: true,
  completionId: () => `chatcmpl-${randomString(HEX, 24)}`,
  toolCallId: () => randomString(HEX, 8),
  guarded: () => true,
  authError: generic.authError,
  error: (_status, message) => ({
    body: `${message}\n`,
    headers: { ...PY_SERVER, "Content-Type": "text/plain" },
  }),
  notFound: () => ({ body: "", headers: PY_SERVER }),
  chunks: (a) => {
    const tmpl = { id: a.id, object: "chat.completion.chunk", created: a.created, model: a.model };
    const chunks = textChunks(a);
    const out: Obj[] = [
      { choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }], ...tmpl },
    ];
    for (const content of chunks)
      out.push({ choices: [{ index: 0, delta: { content }, finish_reason: null }], ...tmpl });
    out.push({ choices: [{ index: 0, delta: {}, finish_reason: tinygradFinish(a) }], ...tmpl });
    if (a.includeUsage) out.push({ choices: [], usage: tinygradUsage(a, chunks.length), ...tmpl });
    return out;
  },
  body: (a) => {
    // llm.py spreads the last chunk (the usage one) and overwrites object and choices in place.
    return {
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: tinygradText(a.plan) },
          finish_reason: tinygradFinish(a),
        },
      ],
      usage: tinygradUsage(a, textChunks(a).length),
      id: a.id,
      object: "chat.completion",
      created: a.created,
      model: a.model,
    };
  },
  models: (cfg) => ({ object: "list", data: [{ id: cfg.models[0], object: "model" }] }),
  overflow: (ex, host, cfg, prompt) => {
    // llm.py's KV cache holds --max_context tokens; a longer prompt fails inside the model
    if (prompt < cfg.contextLength) return false;
    sendTinygradCrash(ex, host, cfg, {
      line: "assert start_pos + seqlen <= self.max_context",
      error: `AssertionError: prompt of ${prompt} tokens does not fit max_context ${cfg.contextLength}`,
    });
    return true;
  },
  route: (ex, host, cfg) => {
    if (ex.method === "GET") {
      host.send(ex, 200, TINYGRAD_HTML, { ...PY_SERVER, "Content-Type": "text/html" }, true);
      return true;
    }
    const line = 'raise RuntimeError(f"unhandled path {self.path}")';
    sendTinygradCrash(ex, host, cfg, { line, error: `RuntimeError: unhandled path ${ex.recorded.path}` });
    return true;
  },
};

const TINYGRAD_HTML = "<!DOCTYPE html><html><head><title>tinygrad chat</title></head><body></body></html>";

function textChunks(a: Answer): string[] {
  const points = Array.from(tinygradText(a.plan));
  const out: string[] = [];
  for (let i = 0; i < points.length; i += a.plan.chunkSize)
    out.push(points.slice(i, i + a.plan.chunkSize).join(""));
  return out;
}

function tinygradFinish(a: Answer): string {
  return a.plan.finish === "length" ? "length" : "stop";
}

function tinygradUsage(a: Answer, chunks: number): Obj {
  const completion = a.completionGiven ? a.completion : chunks;
  return { prompt_tokens: a.prompt, completion_tokens: completion, total_tokens: a.prompt + completion };
}

interface Crash {
  line: string;
  error: string;
}

/** The exception llm.py (or, when strict, a text-only server) raises on this body; undefined when it takes it. */
function tinygradCrash(body: unknown, strict: boolean): Crash | undefined {
  const unknownType = (v: unknown) => ({
    line: 'else: raise RuntimeError(f"unknown content type: {type(content)}")',
    error: `RuntimeError: unknown content type: <class '${pyType(v)}'>`,
  });
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return {
      line: 'for i, msg in enumerate(body["messages"]):',
      error: "TypeError: list indices must be integers or slices, not str",
    };
  }
  const b = body as Obj;
  if (!("messages" in b))
    return { line: 'for i, msg in enumerate(body["messages"]):', error: "KeyError: 'messages'" };
  if (strict && Array.isArray(b.tools) && b.tools.length > 0) {
    return {
      line: 'if body.get("tools"): raise RuntimeError("tools are not supported")',
      error: "RuntimeError: tools are not supported",
    };
  }
  const messages = Array.isArray(b.messages) ? b.messages : [];
  for (const m of messages) {
    const msg = (m ?? {}) as Obj;
    if (strict && msg.role === "tool") {
      return { line: 'ids += tok.role(msg["role"])', error: "RuntimeError: unsupported role: 'tool'" };
    }
    if (strict && Array.isArray(msg.tool_calls) && msg.tool_calls.length > 0) {
      return {
        line: 'if msg.get("tool_calls"): raise RuntimeError("tool_calls are not supported")',
        error: "RuntimeError: tool_calls are not supported",
      };
    }
    if (!("content" in msg)) return { line: 'content = msg["content"]', error: "KeyError: 'content'" };
    const content = msg.content;
    if (typeof content === "string") continue;
    if (!Array.isArray(content) || strict) return unknownType(content);
    for (const part of content) {
      const type = (part as Obj | null)?.type;
      if (type !== "text") {
        return {
          line: `else: raise RuntimeError(f"unhandled type: {c['type']}")`,
          error: `RuntimeError: unhandled type: ${String(type)}`,
        };
      }
    }
  }
  if (!("model" in b))
    return { line: 'chunks = self.run_model(ids, body["model"], ...)', error: "KeyError: 'model'" };
  return undefined;
}

function pyType(v: unknown): string {
  if (v === null || v === undefined) return "NoneType";
  if (Array.isArray(v)) return "list";
  if (typeof v === "string") return "str";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  return "dict";
}

function traceback(crash: Crash): string {
  const py = "/usr/lib/python3.12";
  return [
    "Traceback (most recent call last):",
    `  File "${py}/socketserver.py", line 318, in _handle_request_noblock`,
    "    self.process_request(request, client_address)",
    `  File "${py}/socketserver.py", line 349, in process_request`,
    "    self.finish_request(request, client_address)",
    `  File "${py}/socketserver.py", line 362, in finish_request`,
    "    self.RequestHandlerClass(request, client_address, self)",
    `  File "${py}/socketserver.py", line 761, in __init__`,
    "    self.handle()",
    `  File "${py}/http/server.py", line 436, in handle`,
    "    self.handle_one_request()",
    `  File "${py}/http/server.py", line 424, in handle_one_request`,
    "    method()",
    '  File "/opt/tinygrad/tinygrad/apps/llm.py", line 318, in do_POST',
    `    ${crash.line}`,
    crash.error,
    "",
  ].join("\n");
}

function sendTinygradCrash(ex: Exchange, host: FakeHost, cfg: Config, crash: Crash): void {
  if (cfg.tinygrad.crash === "close") {
    // socketserver's handle_error prints the traceback server-side, then shutdown_request closes the socket.
    ex.req.socket.end();
    return;
  }
  host.send(ex, 500, traceback(crash), { ...PY_SERVER, "Content-Type": "text/plain; charset=utf-8" }, true);
}

const DIALECTS: Record<OpenAICompatFlavor, Dialect> = { generic, llamacpp, vllm, lmstudio, tinygrad };
