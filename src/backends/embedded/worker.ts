/**
 * The engine's side, in a worker thread: models loaded with their context and sequences, prompts
 * counted with the model's tokenizer and template, answers generated — streamed back in batches,
 * forced calls under a grammar from the tool's schema, aborted on request.
 */
import { parentPort } from "node:worker_threads";
import type {
  ChatWrapper,
  LlamaChatResponse,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
  TokenBias,
} from "node-llama-cpp";
import { newId } from "../../ir/ids.js";
import type { Event, StopReason } from "../../ir/types.js";
import { getLlama, loadEngine, useEngineModule } from "./engine.js";
import { highByteTokens } from "./gguf.js";
import type { Prompt } from "./prompt.js";
import {
  type FromWorker,
  type GenerateParams,
  type Loaded,
  type ModelSpec,
  modelKey,
  type ToWorker,
} from "./protocol.js";
import { schemaProblem, tightenNumbers, toGrammarSchema } from "./schema.js";

/** A forced call whose JSON does not validate is sampled again, at most this many times in all. */
const FORCED_ATTEMPTS = 4;
/** After the first token, what the engine generated is posted at most this often (ms). */
const FLUSH_MS = 30;

interface Model {
  spec: ModelSpec;
  model: LlamaModel;
  context: LlamaContext;
  wrapper: ChatWrapper;
  free: LlamaContextSequence[];
  waiting: Array<(s: LlamaContextSequence) => void>;
  grammars: Map<string, Promise<LlamaGrammar>>;
  bias?: Promise<TokenBias>;
  loaded: Loaded;
}

const port = parentPort!;
const models = new Map<string, Promise<Model>>();
const running = new Map<number, AbortController>();
let engineName: string | undefined;

function post(m: FromWorker): void {
  port.postMessage(m);
}

function errorOf(e: unknown): { message: string; code?: string } {
  const err = e as { message?: string; code?: string };
  return { message: err?.message ?? String(e), ...(typeof err?.code === "string" ? { code: err.code } : {}) };
}

function model(spec: ModelSpec): Promise<Model> {
  if (engineName !== spec.engine) {
    useEngineModule(spec.engine);
    engineName = spec.engine;
  }
  const key = modelKey(spec);
  let p = models.get(key);
  if (!p) {
    p = load(spec);
    p.catch(() => models.delete(key));
    models.set(key, p);
  }
  return p;
}

async function load(spec: ModelSpec): Promise<Model> {
  const started = performance.now();
  const settings = { threads: spec.threads, gpu: spec.gpu };
  const llama = await getLlama(settings);
  const engine = await loadEngine();
  let model: LlamaModel;
  let context: LlamaContext;
  try {
    model = await llama.loadModel({ modelPath: spec.path, ...(spec.gpu === "off" ? { gpuLayers: 0 } : {}) });
    context = await model.createContext({
      contextSize: spec.contextSize,
      sequences: spec.parallel,
      threads: spec.threads,
      flashAttention: true,
    });
  } catch (e) {
    throw {
      message: `the engine could not load ${spec.path}: ${errorOf(e).message}`,
      code: "model_load_failed",
    };
  }
  const wrapper = engine.resolveChatWrapper(model);
  const free: LlamaContextSequence[] = [];
  for (let i = 0; i < spec.parallel; i++) free.push(context.getSequence());
  return {
    spec,
    model,
    context,
    wrapper,
    free,
    waiting: [],
    grammars: new Map(),
    loaded: {
      contextSize: context.contextSize,
      template: wrapper.wrapperName,
      gpu: llama.gpu,
      ms: Math.round(performance.now() - started),
    },
  };
}

function promptTokens(m: Model, prompt: Prompt): readonly number[] {
  const state = m.wrapper.generateContextState({
    chatHistory: prompt.history,
    ...(prompt.functions ? { availableFunctions: prompt.functions, documentFunctionParams: true } : {}),
  });
  return state.contextText.tokenize(m.model.tokenizer) as readonly number[];
}

/** When each sequence was last handed out: the least recently used goes to a prompt no sequence shares. */
const lastUsed = new WeakMap<LlamaContextSequence, number>();
let clock = 0;

/**
 * A free sequence for this prompt: the one whose cached tokens share the longest prefix with it,
 * where that prefix is most of what it holds (this prompt continues its conversation), else the
 * least recently used (the one least likely to be wanted back). A template's opening tokens are
 * shared by every prompt: a match on them alone would hand one conversation's cache to another.
 * Handing out the last freed one instead makes two alternating conversations evict each other.
 */
function pick(m: Model, tokens: readonly number[]): LlamaContextSequence | undefined {
  let best: LlamaContextSequence | undefined;
  let bestShared = 0;
  let lru: LlamaContextSequence | undefined;
  for (const s of m.free) {
    const held = s.contextTokens as readonly number[];
    const shared = commonPrefix(held, tokens);
    if (shared > bestShared && shared * 2 >= held.length) {
      bestShared = shared;
      best = s;
    }
    if (!lru || (lastUsed.get(s) ?? 0) < (lastUsed.get(lru) ?? 0)) lru = s;
  }
  const s = best ?? lru;
  if (s) {
    m.free.splice(m.free.indexOf(s), 1);
    lastUsed.set(s, ++clock);
  }
  return s;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function acquire(m: Model, signal: AbortSignal, tokens: readonly number[]): Promise<LlamaContextSequence> {
  const s = pick(m, tokens);
  if (s) return Promise.resolve(s);
  return new Promise((resolve, reject) => {
    const take = (seq: LlamaContextSequence) => {
      signal.removeEventListener("abort", onAbort);
      lastUsed.set(seq, ++clock);
      resolve(seq);
    };
    const onAbort = () => {
      m.waiting.splice(m.waiting.indexOf(take), 1);
      reject({ message: "aborted", code: "aborted" });
    };
    signal.addEventListener("abort", onAbort, { once: true });
    m.waiting.push(take);
  });
}

function release(m: Model, s: LlamaContextSequence): void {
  const next = m.waiting.shift();
  if (next) next(s);
  else m.free.push(s);
}

/**
 * Events for one generation, posted in batches: the first at once, later ones at most every
 * FLUSH_MS, text deltas joined — fewer messages for the gateway's thread to handle.
 */
class Batcher {
  private items: Event[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last = 0;

  constructor(private readonly id: number) {}

  push(e: Event): void {
    const prev = this.items.at(-1);
    if (e.type === "textDelta" && prev?.type === "textDelta") prev.text += e.text;
    else if (e.type === "thinkingDelta" && prev?.type === "thinkingDelta" && !e.signature && !prev.signature)
      prev.text += e.text;
    else this.items.push({ ...e });
    if (this.timer) return;
    const wait = this.last + FLUSH_MS - performance.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.last = performance.now();
    if (!this.items.length) return;
    post({ id: this.id, events: this.items });
    this.items = [];
  }
}

async function generate(id: number, spec: ModelSpec, prompt: Prompt, params: GenerateParams): Promise<void> {
  const abort = new AbortController();
  running.set(id, abort);
  const signal = abort.signal;
  const out = new Batcher(id);
  let seq: LlamaContextSequence | undefined;
  let m: Model | undefined;
  try {
    m = await model(spec);
    const tokens = promptTokens(m, prompt);
    const inputTokens = tokens.length;
    seq = await acquire(m, signal, tokens);
    const engine = await loadEngine();
    const chat = new engine.LlamaChat({ contextSequence: seq, chatWrapper: m.wrapper });
    const meter = seq.tokenMeter;
    let meterAtStart = meter.getState().usedOutputTokens;
    const inputAtStart = meter.getState().usedInputTokens;
    const sampled = () => meter.getState().usedOutputTokens - meterAtStart;
    const s = params.sampling;
    const room = Math.max(1, seq.contextSize - inputTokens);
    const maxTokens = Math.min(params.maxTokens ?? room, room);
    const common = {
      signal,
      stopOnAbortSignal: true,
      temperature: s.temperature ?? 0.8,
      ...(s.temperature === undefined && s.topK === undefined ? { topK: 40 } : {}),
      ...(s.temperature === undefined && s.topP === undefined ? { topP: 0.95, minP: 0.05 } : {}),
      ...(s.topK !== undefined ? { topK: s.topK } : {}),
      ...(s.topP !== undefined ? { topP: s.topP } : {}),
      ...(s.stop?.length ? { customStopTriggers: s.stop } : {}),
      ...(s.presencePenalty || s.frequencyPenalty
        ? {
            repeatPenalty: {
              ...(s.presencePenalty ? { presencePenalty: s.presencePenalty } : {}),
              ...(s.frequencyPenalty ? { frequencyPenalty: s.frequencyPenalty } : {}),
            },
          }
        : {}),
    };
    let stop: { reason: StopReason; stopSequence?: string };
    try {
      if (prompt.forced || prompt.constrain) {
        const schema = prompt.forced?.grammarSchema ?? toGrammarSchema(prompt.constrain);
        const grammar = await grammarFor(m, schema);
        const tokenBias = await byteBias(m);
        // The grammar gives the call its shape; what it cannot rule out (a number out of range, a
        // string that runs past max_tokens) is checked after, and the call sampled again (another
        // seed, the whole budget again): the client gets a valid call or, after the last attempt,
        // what the model wrote. Usage counts the answer given; the attempts are logged.
        let attempt = 0;
        let r: LlamaChatResponse;
        for (;;) {
          meterAtStart = meter.getState().usedOutputTokens;
          r = await chat.generateResponse(prompt.history, {
            ...common,
            maxTokens,
            seed: params.seed + attempt,
            grammar,
            tokenBias,
          });
          attempt++;
          const problem = checkForced(r.response, prompt);
          if (problem === undefined || signal.aborted || attempt >= FORCED_ATTEMPTS) break;
          post({
            id,
            log: {
              level: "info",
              msg: "the constrained call did not validate; sampling it again",
              fields: { problem, attempt, tokens: sampled() },
            },
          });
        }
        const problem = signal.aborted ? "aborted" : checkForced(r.response, prompt);
        if (problem === undefined && prompt.forced) {
          const value = JSON.parse(r.response) as Record<string, unknown>;
          const one = prompt.forced.tools.length === 1;
          out.push({
            type: "toolCallStart",
            id: newId("toolu_"),
            name: one ? prompt.forced.tools[0]!.name : String(value.name),
          });
          out.push({ type: "toolCallDelta", json: JSON.stringify(one ? value : value.arguments) });
          out.push({ type: "toolCallEnd" });
          stop = { reason: "tool_use" };
        } else {
          if (r.response) out.push({ type: "textDelta", text: r.response });
          if (problem !== undefined && !signal.aborted)
            post({
              id,
              log: { level: "warn", msg: "the constrained answer did not validate", fields: { problem } },
            });
          stop = stopOf(r);
        }
      } else {
        const r = await chat.generateResponse(prompt.history, {
          ...common,
          maxTokens,
          seed: params.seed,
          ...(prompt.functions ? { functions: prompt.functions, documentFunctionParams: true } : {}),
          onResponseChunk: (chunk) => {
            if (!chunk.text) return;
            if (chunk.type === undefined) out.push({ type: "textDelta", text: chunk.text });
            else if (chunk.segmentType === "thought") out.push({ type: "thinkingDelta", text: chunk.text });
          },
        });
        for (const call of r.functionCalls ?? []) {
          out.push({ type: "toolCallStart", id: newId("toolu_"), name: call.functionName });
          out.push({ type: "toolCallDelta", json: JSON.stringify(call.params ?? {}) });
          out.push({ type: "toolCallEnd" });
        }
        stop = stopOf(r);
      }
    } finally {
      chat.dispose({ disposeSequence: false });
    }
    // what the engine read afresh; the rest of the prompt came from the sequence's cache
    const evaluated = Math.min(inputTokens, meter.getState().usedInputTokens - inputAtStart);
    out.push({
      type: "usage",
      usage: { inputTokens: evaluated, cacheReadTokens: inputTokens - evaluated, outputTokens: sampled() },
    });
    out.push({ type: "stop", ...stop });
    out.flush();
    post({ id, ok: true });
  } catch (e) {
    out.flush();
    post({ id, ok: false, error: errorOf(e) });
  } finally {
    running.delete(id);
    if (m && seq) release(m, seq);
  }
}

/** Why a constrained answer is not a valid call (or valid JSON of the schema), or undefined. */
function checkForced(text: string, prompt: Prompt): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "not complete JSON";
  }
  if (prompt.forced) {
    const tools = prompt.forced.tools;
    if (tools.length === 1) return schemaProblem(value, tools[0]!.inputSchema);
    const v = value as { name?: unknown; arguments?: unknown };
    const tool = tools.find((t) => t.name === v?.name);
    if (!tool) return "names no offered tool";
    return schemaProblem(v.arguments, tool.inputSchema);
  }
  return schemaProblem(value, prompt.constrain);
}

function grammarFor(m: Model, schema: Record<string, unknown>): Promise<LlamaGrammar> {
  const key = JSON.stringify(schema);
  let g = m.grammars.get(key);
  if (!g) {
    g = (async () => {
      const llama = await getLlama({ threads: m.spec.threads, gpu: m.spec.gpu });
      const base = await llama.createGrammarForJsonSchema(schema as never);
      return llama.createGrammar({
        grammar: tightenNumbers(base.grammar),
        stopGenerationTriggers: ["\n".repeat(4)],
        trimWhitespaceSuffix: true,
      });
    })();
    g.catch(() => m.grammars.delete(key));
    if (m.grammars.size > 64) m.grammars.delete(m.grammars.keys().next().value!);
    m.grammars.set(key, g);
  }
  return g;
}

/** Byte tokens 0x80–0xFF banned inside a grammar (alone they are broken UTF-8). */
function byteBias(m: Model): Promise<TokenBias> {
  m.bias ??= (async () => {
    const engine = await loadEngine();
    const bias = new engine.TokenBias(m.model.tokenizer);
    for (const t of await highByteTokens(m.spec.path)) bias.set(t as never, "never");
    return bias;
  })();
  return m.bias;
}

function stopOf(r: LlamaChatResponse<any>): { reason: StopReason; stopSequence?: string } {
  switch (r.metadata.stopReason) {
    case "maxTokens":
      return { reason: "max_tokens" };
    case "functionCalls":
      return { reason: "tool_use" };
    case "customStopTrigger":
      return {
        reason: "stop_sequence",
        stopSequence: r.metadata.customStopTrigger.filter((x): x is string => typeof x === "string").join(""),
      };
    default:
      return { reason: "end_turn" };
  }
}

async function reply(id: number, work: () => Promise<unknown>): Promise<void> {
  try {
    post({ id, ok: true, result: await work() });
  } catch (e) {
    post({ id, ok: false, error: errorOf(e) });
  }
}

port.on("message", (msg: ToWorker) => {
  switch (msg.op) {
    case "load":
      void reply(msg.id, async () => (await model(msg.spec)).loaded);
      break;
    case "count":
      void reply(msg.id, async () => promptTokens(await model(msg.spec), msg.prompt).length);
      break;
    case "generate":
      void generate(msg.id, msg.spec, msg.prompt, msg.params);
      break;
    case "abort":
      running.get(msg.id)?.abort();
      break;
    case "unload":
      void reply(msg.id, async () => {
        const key = modelKey(msg.spec);
        const p = models.get(key);
        models.delete(key);
        const m = await p?.catch(() => undefined);
        if (m) {
          await m.context.dispose();
          await m.model.dispose();
        }
      });
      break;
  }
});
