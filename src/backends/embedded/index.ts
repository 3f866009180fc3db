/**
 * The embedded backend: GGUF models run in this process by node-llama-cpp, through the same IR and
 * stages as every server. Streaming, stop sequences, sampling, usage, abort when the client goes
 * away; several sequences in one context serve requests in parallel (the routing queue knows how
 * many); tools through the engine's own function calling, a forced call generated under a grammar
 * built from the tool's schema; count_tokens with the model's tokenizer and template, exact.
 */
import { randomInt } from "node:crypto";
import { availableParallelism } from "node:os";
import { GatewayError } from "../../ir/errors.js";
import type { Event, Request } from "../../ir/types.js";
import {
  ALL_SAMPLING,
  type Backend,
  type DiscoveredModel,
  type Log,
  type ModelProfile,
  type SendContext,
  type WireCaps,
} from "../../ir/contract.js";
import type { BackendOptions } from "../kind.js";
import { engineClient, workerError } from "./client.js";
import { type EngineSettings, engineModule } from "./engine.js";
import { type FoundModel, findModels } from "./find.js";
import { GgufError, type GgufInfo, inspectGguf } from "./gguf.js";
import { buildPrompt } from "./prompt.js";
import { type ModelSpec, modelKey, type WorkerError } from "./protocol.js";

const CAPS: WireCaps = {
  tools: true,
  toolHistory: true,
  images: false,
  imageUrls: false,
  stringContentOnly: false,
  strictAlternation: false,
  thinkingHistory: false,
  jsonSchema: true,
  sampling: ALL_SAMPLING,
};

/** The window served when the config names none: the trained context, at most this. */
const DEFAULT_CONTEXT = 32768;

export interface EmbeddedSettings {
  /** clawbridge's models folder (default $CLAWBRIDGE_MODELS or ~/.clawbridge/models). */
  modelsDir?: string;
  /** GGUF files or folders to serve. */
  paths?: string[];
  /** Ollama's models folder (default $OLLAMA_MODELS or ~/.ollama/models); false: not searched. */
  ollamaDir?: string | false;
  /** CPU threads (default: the core count). */
  threads?: number;
  /** Context window per sequence (default: the trained context, at most 32768). */
  contextSize?: number;
  /** Sequences per model: requests served at once (default 1). */
  parallel?: number;
  gpu?: "auto" | "off";
}

/** Events from the engine's worker, read by the backend's generator. */
class EventQueue {
  private items: Event[] = [];
  private wake: (() => void) | undefined;
  private done = false;
  private error: unknown;

  push(events: Event[]): void {
    this.items.push(...events);
    this.wake?.();
  }
  end(error?: unknown): void {
    this.done = true;
    this.error = error;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Event[]> {
    for (;;) {
      if (this.items.length) {
        const batch = this.items;
        this.items = [];
        yield batch;
        continue;
      }
      if (this.done) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = undefined;
    }
  }
}

export class EmbeddedBackend implements Backend {
  readonly kind = "embedded" as const;
  readonly name: string;
  readonly baseUrl = "in-process";
  readonly caps = CAPS;
  /** Requests served at once: the sequences of each model's context (`parallel`, default 1). */
  readonly concurrency: number;
  readonly settings: EmbeddedSettings;
  private readonly engine: EngineSettings;
  private found = new Map<string, FoundModel>();
  private readonly inspected = new Map<string, Promise<GgufInfo>>();
  /** Models loaded in the engine for this backend, and the specs it used (to unload them). */
  private readonly ready = new Set<string>();
  private readonly used = new Map<string, ModelSpec>();
  /** Generations running now, and when each of the last ones stopped (performance.now()): for tests. */
  readonly activity = { running: 0, peak: 0, stoppedAt: [] as number[], tokens: 0 };

  constructor(opts: BackendOptions<EmbeddedSettings>) {
    this.name = opts.name;
    this.settings = opts.settings;
    this.concurrency = Math.max(1, this.settings.parallel ?? 1);
    this.engine = {
      threads: this.settings.threads ?? availableParallelism(),
      gpu: this.settings.gpu ?? "auto",
    };
  }

  /** The GGUF models found now (config paths, the models folder, Ollama's blobs). */
  models(): FoundModel[] {
    const found = findModels({
      ...(this.settings.modelsDir !== undefined ? { modelsDir: this.settings.modelsDir } : {}),
      ...(this.settings.paths ? { paths: this.settings.paths } : {}),
      ...(this.settings.ollamaDir !== undefined ? { ollamaDir: this.settings.ollamaDir } : {}),
    });
    this.found = new Map(found.map((m) => [m.name, m]));
    return found;
  }

  async discover(): Promise<DiscoveredModel[]> {
    const out: DiscoveredModel[] = [];
    for (const m of this.models()) {
      let info: GgufInfo;
      try {
        info = await inspectGguf(m.path);
      } catch {
        continue; // not a loadable model: named when a request asks for it
      }
      const window = this.windowOf(info);
      const d: DiscoveredModel = {
        name: m.name,
        contextWindow: window,
        contextFrom:
          this.settings.contextSize !== undefined
            ? "embedded context_size"
            : `the GGUF's context_length${info.contextLength && info.contextLength > window ? ` (${info.contextLength}, capped at ${DEFAULT_CONTEXT})` : ""}`,
        sizeBytes: m.sizeBytes,
        tools: true,
      };
      if (info.contextLength) d.trainedContext = info.contextLength;
      if (info.kvBytesPerToken) d.kvBytesPerToken = info.kvBytesPerToken;
      out.push(d);
    }
    return out;
  }

  private windowOf(info: GgufInfo): number {
    return this.settings.contextSize ?? Math.min(info.contextLength ?? DEFAULT_CONTEXT, DEFAULT_CONTEXT);
  }

  /** The file a model name means: a found model, or a path to a .gguf file. */
  private pathOf(model: string): string {
    let found = this.found.get(model);
    if (!found) {
      this.models(); // a file put there since discovery
      found = this.found.get(model);
    }
    if (found) return found.path;
    if (/\.gguf$/i.test(model) || model.includes("/")) return model;
    throw new GatewayError(
      "not_found",
      `backend ${this.name}: no GGUF model '${model}' was found (looked in the models folder, the config's paths and Ollama's models)`,
      { code: "model_not_found", retryable: true },
    );
  }

  /**
   * What the engine needs to run a model: its file, checked here first (a GGUF missing what the
   * engine needs would abort the whole process inside it), the window, sequences, threads.
   */
  private async specOf(model: string): Promise<ModelSpec> {
    const path = this.pathOf(model);
    let info = this.inspected.get(path);
    if (!info) {
      info = inspectGguf(path);
      info.catch(() => this.inspected.delete(path));
      this.inspected.set(path, info);
    }
    let checked: GgufInfo;
    try {
      checked = await info;
    } catch (e) {
      const message = e instanceof GgufError ? e.message : String(e);
      throw new GatewayError("api_error", `backend ${this.name}: cannot serve ${message}`, {
        code: "model_invalid",
        retryable: true,
        cause: e,
      });
    }
    const spec: ModelSpec = {
      path,
      contextSize: this.windowOf(checked),
      parallel: this.concurrency,
      threads: this.engine.threads,
      gpu: this.engine.gpu,
      engine: engineModule(),
    };
    this.used.set(modelKey(spec), spec);
    return spec;
  }

  /** Loads the model in the engine (once; said in the log), before anything is sent. */
  private async load(spec: ModelSpec, log?: Log): Promise<void> {
    const key = modelKey(spec);
    if (this.ready.has(key)) return;
    try {
      const loaded = await engineClient.load(spec);
      this.ready.add(key);
      log?.info(
        {
          backend: this.name,
          file: spec.path,
          ms: loaded.ms,
          context: loaded.contextSize,
          sequences: spec.parallel,
          threads: spec.threads,
          gpu: loaded.gpu,
          template: loaded.template,
        },
        "embedded model loaded",
      );
    } catch (e) {
      throw workerError(e as WorkerError, this.name);
    }
  }

  async countTokens(req: Request, profile: ModelProfile): Promise<number> {
    const spec = await this.specOf(profile.model);
    await this.load(spec);
    try {
      return await engineClient.count(spec, buildPrompt(req));
    } catch (e) {
      throw workerError(e as WorkerError, this.name);
    }
  }

  async *send(req: Request, ctx: SendContext): AsyncGenerator<Event[]> {
    const spec = await this.specOf(ctx.profile.model);
    await this.load(spec, ctx.log);
    const queue = new EventQueue();
    const gen = engineClient.generate(
      spec,
      buildPrompt(req),
      {
        sampling: req.sampling,
        ...(req.limits.maxOutputTokens !== undefined ? { maxTokens: req.limits.maxOutputTokens } : {}),
        // the engine's own default seed is fixed: a request that names none gets a fresh one
        seed: req.sampling.seed ?? randomInt(2 ** 31),
      },
      (events) => {
        for (const e of events) if (e.type === "usage") this.activity.tokens += e.usage.outputTokens ?? 0;
        queue.push(events);
      },
      ctx.log,
    );
    const stopped = gen.done.then(
      () => queue.end(),
      (e: unknown) => queue.end(workerError(e as WorkerError, this.name)),
    );
    const onAbort = () => gen.abort();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    this.activity.running++;
    this.activity.peak = Math.max(this.activity.peak, this.activity.running);
    try {
      yield [{ type: "start", model: ctx.profile.model }];
      yield* queue;
    } finally {
      gen.abort();
      ctx.signal.removeEventListener("abort", onAbort);
      await stopped;
      this.activity.running--;
      this.activity.stoppedAt.push(performance.now());
      if (this.activity.stoppedAt.length > 64) this.activity.stoppedAt.shift();
    }
  }

  /** Frees the models this backend loaded in the engine (the engine itself stays for the process). */
  async close(): Promise<void> {
    const specs = [...this.used.values()];
    this.used.clear();
    this.ready.clear();
    for (const spec of specs) await engineClient.unload(spec).catch(() => undefined);
  }
}
