/**
 * A fake Ollama server (github.com/ollama/ollama server/routes.go, docs/api.md). JSON is encoded the way Go's
 * encoding/json does it (compact, `<`, `>`, `&` escaped), timestamps are RFC 3339 with nanoseconds, durations
 * are nanoseconds.
 *
 * POST /api/chat streams NDJSON (application/x-ndjson) unless `"stream": false`: one line per content or thinking
 * chunk, tool calls together in one line (`{"id":"call_xxxxxxxx","function":{"index":0,"name":..,"arguments":{..}}}`
 * as Ollama >= 0.12 sends them), then a `done:true` line with done_reason and the metrics.
 */
import {
  type ErrorResponse,
  type Exchange,
  type FakeHost,
  LOWER_ALNUM,
  type Payload,
  type Plan,
  goJson,
  goTime,
  parseArgs,
  planReply,
  randomString,
  startFake,
} from "./core.js";
import type { FakeServer, ReplyFn, ScriptedReply } from "./script.js";
import { chatTokens } from "./tokenizer.js";

export interface OllamaModelSpec {
  name: string;
  /** Default ["completion", "tools"]. Add "thinking" to allow `think: true`. */
  capabilities?: string[];
  /** model_info "<arch>.context_length" (the trained context). Default 131072. */
  contextLength?: number;
  /** A `num_ctx` line in /api/show `parameters` (and the /api/ps context_length). Absent by default. */
  numCtx?: number;
  /** details.family and general.architecture. Default "llama". */
  family?: string;
  /** Listed by /api/ps. Default true. */
  loaded?: boolean;
  /**
   * The system prompt the model's template puts in front of a conversation that has none, counted
   * in the prompt like the rest (Qwen 2.5's "You are Qwen, created by Alibaba Cloud. You are a
   * helpful assistant."). Default: none.
   */
  defaultSystem?: string;
}

export interface OllamaFakeOptions {
  models?: OllamaModelSpec[];
  reply?: ReplyFn | ScriptedReply;
  /** GET /api/version. Default "0.12.6". */
  version?: string;
  /**
   * The num_ctx a request without `options.num_ctx` gets (OLLAMA_CONTEXT_LENGTH; Ollama's default is 4096, 2048 in
   * older versions) when the Modelfile sets none. Default 4096.
   */
  defaultNumCtx?: number;
  /**
   * The memory the server has for a model, in bytes. A num_ctx whose KV cache does not fit beside the weights is
   * refused with a 500, as Ollama does. Default: unlimited.
   */
  memoryBytes?: number;
  /** The port to listen on (a server started again where it was); default OS-assigned. */
  port?: number;
}

/** An Ollama fake whose models can change while it runs (`ollama pull`, `ollama rm`). */
export interface OllamaFake extends FakeServer {
  /** A model pulled: listed from now on. */
  addModel(spec: OllamaModelSpec): void;
  /** A model removed: no longer listed. */
  removeModel(name: string): void;
}

/** What the fake's models weigh (/api/tags size) and their KV cache per token at f16 (from model_info below). */
const MODEL_BYTES = 4920753328;
const KV_BYTES_PER_TOKEN = 32 * 8 * (128 + 128) * 2;

interface Model {
  spec: OllamaModelSpec;
  /** "name:tag" as /api/tags shows it. */
  display: string;
  family: string;
  capabilities: string[];
  contextLength: number;
  digest: string;
  modifiedAt: string;
}

type Obj = Record<string, unknown>;

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };
const NDJSON_HEADERS = { "content-type": "application/x-ndjson" };
const TEXT_HEADERS = { "content-type": "text/plain; charset=utf-8" };
const MODIFIED = new Date("2025-06-01T12:00:00.123456789Z");

export async function startOllamaFake(opts: OllamaFakeOptions = {}): Promise<OllamaFake> {
  const specs = opts.models && opts.models.length > 0 ? opts.models : [{ name: "llama3.2" }];
  const models = specs.map((spec, i) => toModel(spec, i));
  const version = opts.version ?? "0.12.6";
  const fake = await startFake(
    async (ex, host) => {
      const { method, pathname } = ex;
      const get = method === "GET" || method === "HEAD";
      if (get && pathname === "/") return host.send(ex, 200, "Ollama is running", TEXT_HEADERS);
      if (get && pathname === "/api/version") return host.send(ex, 200, goJson({ version }), JSON_HEADERS);
      if (get && pathname === "/api/tags")
        return host.send(ex, 200, goJson({ models: models.map(tagEntry) }), JSON_HEADERS);
      if (method === "GET" && pathname === "/api/ps") {
        const loaded = models.filter((m) => m.spec.loaded !== false).map(psEntry);
        return host.send(ex, 200, goJson({ models: loaded }), JSON_HEADERS);
      }
      if (method === "POST" && pathname === "/api/show") return show(ex, host, models);
      if (method === "POST" && pathname === "/api/chat") return chat(ex, host, models, opts);
      host.send(ex, 404, "404 page not found", TEXT_HEADERS);
    },
    opts.reply,
    opts.port,
  );
  return Object.assign(fake, {
    addModel: (spec: OllamaModelSpec) => {
      models.push(toModel(spec, models.length));
    },
    removeModel: (name: string) => {
      const i = models.findIndex((m) => m.display === withTag(name));
      if (i >= 0) models.splice(i, 1);
    },
  });
}

function error(message: string): ErrorResponse {
  return { body: goJson({ error: message }), headers: JSON_HEADERS };
}

function sendError(ex: Exchange, host: FakeHost, status: number, message: string): void {
  const err = error(message);
  host.send(ex, status, err.body, err.headers);
}

/** "llama3.2" -> "llama3.2:latest"; a tag or a namespace is kept. */
function withTag(name: string): string {
  const last = name.slice(name.lastIndexOf("/") + 1);
  return last.includes(":") ? name : `${name}:latest`;
}

/** The fully qualified name Ollama puts in capability errors: registry.ollama.ai/library/llama3.2:latest. */
function qualified(name: string): string {
  const full = withTag(name);
  const parts = full.split("/");
  if (parts.length === 1) return `registry.ollama.ai/library/${full}`;
  if (parts.length === 2) return `registry.ollama.ai/${full}`;
  return full;
}

function find(models: Model[], name: unknown): Model | undefined {
  if (typeof name !== "string" || name === "") return undefined;
  const wanted = withTag(name).toLowerCase();
  return models.find((m) => m.display.toLowerCase() === wanted);
}

function toModel(spec: OllamaModelSpec, i: number): Model {
  const display = withTag(spec.name);
  let digest = "";
  for (let k = 0; digest.length < 64; k++) {
    let h = 2166136261 ^ k;
    for (const ch of `${display}#${i}`) h = Math.imul(h ^ (ch.codePointAt(0) ?? 0), 16777619) >>> 0;
    digest += h.toString(16).padStart(8, "0");
  }
  return {
    spec,
    display,
    family: spec.family ?? "llama",
    capabilities: spec.capabilities ?? ["completion", "tools"],
    contextLength: spec.contextLength ?? 131072,
    digest: digest.slice(0, 64),
    modifiedAt: goTime(new Date(MODIFIED.getTime() - i * 86_400_000)),
  };
}

function details(m: Model): Obj {
  return {
    parent_model: "",
    format: "gguf",
    family: m.family,
    families: [m.family],
    parameter_size: "8.0B",
    quantization_level: "Q4_K_M",
  };
}

function tagEntry(m: Model): Obj {
  return {
    name: m.display,
    model: m.display,
    modified_at: m.modifiedAt,
    size: MODEL_BYTES,
    digest: m.digest,
    details: details(m),
  };
}

function psEntry(m: Model): Obj {
  return {
    name: m.display,
    model: m.display,
    size: 6654289920,
    digest: m.digest,
    details: details(m),
    expires_at: goTime(new Date(Date.now() + 5 * 60_000)),
    size_vram: 6654289920,
    context_length: m.spec.numCtx ?? 4096,
  };
}

function show(ex: Exchange, host: FakeHost, models: Model[]) {
  if (!ex.bodyIsJson || typeof ex.body !== "object" || ex.body === null) {
    return sendError(
      ex,
      host,
      400,
      ex.rawBody ? "invalid character in request body" : "missing request body",
    );
  }
  const name = ex.body.model || ex.body.name;
  if (typeof name !== "string" || name === "") return sendError(ex, host, 400, "model is required");
  const m = find(models, name);
  if (!m) return sendError(ex, host, 404, `model '${name}' not found`);
  const arch = m.family;
  // Go's `%-*s %#v` with a width of 30, as ShowHandler formats each parameter.
  const params: string[] = [];
  if (m.spec.numCtx !== undefined) params.push(`${"num_ctx".padEnd(30)} ${m.spec.numCtx}`);
  for (const stop of ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]) {
    params.push(`${"stop".padEnd(30)} ${JSON.stringify(stop)}`);
  }
  const template =
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>";
  const paramLines = params.map((p) => `PARAMETER ${p.replace(/ +/, " ")}\n`).join("");
  const body = {
    modelfile: `# Modelfile generated by "ollama show"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM ${m.display}\n\nFROM /root/.ollama/models/blobs/sha256-${m.digest}\nTEMPLATE """${template}"""\n${paramLines}`,
    parameters: params.join("\n"),
    template,
    details: details(m),
    model_info: {
      "general.architecture": arch,
      "general.basename": m.display.split(":")[0],
      "general.file_type": 15,
      "general.parameter_count": 8030261248,
      "general.quantization_version": 2,
      [`${arch}.attention.head_count`]: 32,
      [`${arch}.attention.head_count_kv`]: 8,
      [`${arch}.block_count`]: 32,
      [`${arch}.context_length`]: m.contextLength,
      [`${arch}.embedding_length`]: 4096,
      [`${arch}.feed_forward_length`]: 14336,
      [`${arch}.rope.freq_base`]: 500000,
      [`${arch}.vocab_size`]: 128256,
      "tokenizer.ggml.bos_token_id": 128000,
      "tokenizer.ggml.eos_token_id": 128009,
      "tokenizer.ggml.merges": [],
      "tokenizer.ggml.model": "gpt2",
      "tokenizer.ggml.pre": "llama-bpe",
      "tokenizer.ggml.token_type": [],
      "tokenizer.ggml.tokens": [],
    },
    capabilities: m.capabilities,
    modified_at: m.modifiedAt,
  };
  host.send(ex, 200, goJson(body), JSON_HEADERS);
}

async function chat(ex: Exchange, host: FakeHost, models: Model[], opts: OllamaFakeOptions): Promise<void> {
  const started = process.hrtime.bigint();
  if (!ex.bodyIsJson || typeof ex.body !== "object" || ex.body === null) {
    return sendError(
      ex,
      host,
      400,
      ex.rawBody ? "invalid character in request body" : "missing request body",
    );
  }
  const body = ex.body as Obj;
  const name = body.model;
  if (typeof name !== "string" || name === "") return sendError(ex, host, 400, "model is required");
  const m = find(models, name);
  // handleScheduleError: `fmt.Sprintf("model %q not found, try pulling it first", name)`.
  if (!m) return sendError(ex, host, 404, `model ${JSON.stringify(name)} not found, try pulling it first`);
  if (Array.isArray(body.tools) && body.tools.length > 0 && !m.capabilities.includes("tools")) {
    return sendError(ex, host, 400, `${qualified(m.display)} does not support tools`);
  }
  // api/types.go ThinkValue.UnmarshalJSON, then routes.go: a truthy think (true or a level) on a model without the
  // thinking capability is refused with the request's model name, Go %q (v0.12.5+); think:false is accepted.
  const think = body.think;
  if (think !== undefined && think !== null) {
    if (typeof think === "string" && !["high", "medium", "low", "max"].includes(think))
      return sendError(
        ex,
        host,
        400,
        `invalid think value: ${JSON.stringify(think)} (must be "high", "medium", "low", "max", true, or false)`,
      );
    if (typeof think !== "string" && typeof think !== "boolean")
      return sendError(
        ex,
        host,
        400,
        'think must be a boolean or string ("high", "medium", "low", "max", true, or false)',
      );
    if (think !== false && !m.capabilities.includes("thinking"))
      return sendError(ex, host, 400, `${JSON.stringify(name)} does not support thinking`);
  }
  const messages = Array.isArray(body.messages) ? body.messages : [];
  if (messages.length === 0) {
    const loaded = {
      model: name,
      created_at: goTime(),
      message: { role: "assistant", content: "" },
      done_reason: "load",
      done: true,
    };
    return host.send(ex, 200, goJson(loaded), JSON_HEADERS);
  }

  // The context in effect: the request's num_ctx, else the Modelfile's, else the server's default; capped at what
  // the model was trained for (Ollama logs "requested context size too large for model" and caps it).
  const options = (body.options ?? {}) as Obj;
  const asked =
    typeof options.num_ctx === "number" ? options.num_ctx : (m.spec.numCtx ?? opts.defaultNumCtx ?? 4096);
  const numCtx = Math.min(asked, m.contextLength);
  if (opts.memoryBytes !== undefined) {
    const needed = MODEL_BYTES + numCtx * KV_BYTES_PER_TOKEN + 512 * 1024 ** 2;
    if (needed > opts.memoryBytes) {
      const gib = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GiB`;
      return sendError(
        ex,
        host,
        500,
        `model requires more system memory (${gib(needed)}) than is available (${gib(opts.memoryBytes)})`,
      );
    }
  }
  // A prompt longer than num_ctx is cut silently from the front ("truncating input prompt" in the server log
  // only): the model sees the last num_ctx tokens, and prompt_eval_count says num_ctx.
  const system = m.spec.defaultSystem;
  const rendered =
    system !== undefined && !messages.some((x) => (x as Obj)?.role === "system")
      ? [{ role: "system", content: system }, ...messages]
      : messages;
  const counted = chatTokens(rendered, body.tools);
  const seen = Math.min(counted, numCtx);
  ex.recorded.prompt = { tokens: counted, window: numCtx };

  const reply = await host.reply(ex.recorded);
  const plan = planReply(reply, () => `call_${randomString(LOWER_ALNUM, 8)}`);
  const contentLines =
    plan.reasoningChunks.length + plan.textChunks.length + (plan.toolCalls.length > 0 ? 1 : 0);
  const prompt = reply.usage?.prompt ?? seen;
  const completion = reply.usage?.completion ?? contentLines;
  const doneReason = plan.finish === "length" ? "length" : "stop";
  const metrics = (): Obj => {
    const promptEval = prompt * 180_000;
    const evalDuration = completion * 20_000_000;
    const load = 12_345_678;
    const elapsed = Number(process.hrtime.bigint() - started);
    return {
      total_duration: Math.max(elapsed, load + promptEval + evalDuration),
      load_duration: load,
      prompt_eval_count: prompt,
      prompt_eval_duration: promptEval,
      eval_count: completion,
      eval_duration: evalDuration,
    };
  };
  const line = (message: Obj, extra?: Obj) =>
    `${withRawArgs(plan, { model: name, created_at: goTime(), message: { role: "assistant", ...message }, ...extra })}\n`;

  const streaming = body.stream !== false;
  let payload: Payload;
  if (streaming) {
    const chunks: string[] = [];
    for (const thinking of plan.reasoningChunks)
      chunks.push(line({ content: "", thinking }, { done: false }));
    for (const content of plan.textChunks) chunks.push(line({ content }, { done: false }));
    if (plan.toolCalls.length > 0)
      chunks.push(line({ content: "", tool_calls: toolCalls(plan) }, { done: false }));
    chunks.push(line({ content: "" }, { done_reason: doneReason, done: true, ...metrics() }));
    const garbage = `{"model":${goJson(name)},"created_at":"${goTime()}","message":{"role":"assistant","content":"unterminat\n`;
    const text = plan.reasoningChunks.length;
    payload = {
      headers: NDJSON_HEADERS,
      chunks,
      streaming: true,
      garbage,
      finish: [chunks.length - 1],
      ...(reply.repeat && reply.repeat !== 1 && plan.textChunks.length
        ? { repeat: { from: text, to: text + plan.textChunks.length, times: reply.repeat } }
        : {}),
    };
  } else {
    const message: Obj = { content: plan.text };
    if (plan.reasoning) message.thinking = plan.reasoning;
    if (plan.toolCalls.length > 0) message.tool_calls = toolCalls(plan);
    const whole = line(message, { done_reason: doneReason, done: true, ...metrics() }).slice(0, -1);
    payload = {
      headers: JSON_HEADERS,
      chunks: [whole],
      streaming: false,
      garbage: "\n<html>502 Bad Gateway</html>",
    };
  }
  await host.deliver(ex, payload, reply.fault, (status) => error(statusMessage(status)));
}

const RAW_MARK = "__fake_raw_arguments_";

function toolCalls(plan: Plan): Obj[] {
  return plan.toolCalls.map((call) => {
    const parsed = parseArgs(call.args);
    const args = parsed !== undefined ? parsed.value : `${RAW_MARK}${call.index}__`;
    return { id: call.id, function: { index: call.index, name: call.name, arguments: args } };
  });
}

/** Encodes a line; tool arguments that are not JSON go in verbatim, as the script asked. */
function withRawArgs(plan: Plan, value: Obj): string {
  let text = goJson(value);
  for (const call of plan.toolCalls) {
    if (parseArgs(call.args) === undefined) text = text.replace(`"${RAW_MARK}${call.index}__"`, call.args);
  }
  return text;
}

function statusMessage(status: number): string {
  if (status === 503) return "server busy, please try again.  maximum pending requests exceeded";
  if (status === 500) return "llama runner process has terminated: exit status 2";
  return `fake upstream failure (${status})`;
}
