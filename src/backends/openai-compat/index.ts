import type { Event, Request } from "../../ir/types.js";
import type { ModelProfile } from "../../ir/contract.js";
import { conversationKeys, SavedSlots, SlotChooser } from "../../routing/conversations.js";
import { fetchJson, postJson, readWhole } from "../http/client.js";
import { decodeResponse } from "../http/framing.js";
import {
  ALL_SAMPLING,
  type Backend,
  type DiscoveredModel,
  type SendContext,
  type WireCaps,
} from "../../ir/contract.js";
import type { BackendOptions } from "../kind.js";
import { OPENAI_COMPAT_ERRORS } from "./errors.js";
import { ChatChunkDecoder } from "./decode.js";
import { releaseBody } from "../json-body.js";
import { chatBody, encodeChatRequest } from "./encode.js";

/** The servers that speak /v1/chat/completions, and what each one's wire takes. */
export const FLAVORS = ["generic", "llamacpp", "vllm", "lmstudio", "tinygrad"] as const;
export type Flavor = (typeof FLAVORS)[number];

const FULL: WireCaps = {
  tools: true,
  toolHistory: true,
  images: true,
  imageUrls: true,
  stringContentOnly: false,
  strictAlternation: false,
  thinkingHistory: false,
  jsonSchema: true,
  sampling: ALL_SAMPLING,
  // the wire takes a system message anywhere; the chat template renders it in place
  systemMidConversation: true,
};

/** What each server's wire takes. */
export const CAPS: Record<Flavor, WireCaps> = {
  generic: FULL,
  llamacpp: FULL,
  vllm: FULL,
  lmstudio: FULL,
  // tinygrad/apps/llm.py --serve: text content only; no tools, no tool roles, no null content.
  tinygrad: {
    ...FULL,
    tools: false,
    toolHistory: false,
    images: false,
    imageUrls: false,
    stringContentOnly: true,
    jsonSchema: false,
    sampling: new Set(["temperature"] as const),
    systemMidConversation: false,
  },
};

/** Servers that answer one request at a time (llama.cpp until its slot count is known). */
const ONE_AT_A_TIME: ReadonlySet<Flavor> = new Set(["llamacpp", "tinygrad", "lmstudio"]);

/** `http://host:port` or `http://host:port/v1` → the `/v1` root the endpoints hang off. */
function openaiRoot(url: string): string {
  const u = url.replace(/\/+$/, "");
  return /\/v\d+$/.test(u) ? u : `${u}/v1`;
}

export class OpenAICompatBackend implements Backend {
  readonly kind = "openai-compat" as const;
  readonly name: string;
  readonly baseUrl: string;
  readonly caps: WireCaps;
  readonly flavor: Flavor;
  /**
   * llama.cpp: its slot count, asked (1 until known); TinyGrad's llm.py and LM Studio: 1 (they
   * answer one request at a time); vLLM and generic servers: no limit (they batch or queue themselves).
   */
  readonly concurrency: number;
  /** Exact prompt counts: llama.cpp only (see `tokenize`). */
  readonly countTokens?: (req: Request, profile: ModelProfile) => Promise<number>;
  /** llama.cpp's slot count (see `slots`). */
  readonly askConcurrency?: () => Promise<number | undefined>;
  /**
   * llama.cpp: which slot each request goes to, so its prompt cache holds the conversation
   * (`id_slot`, with `cache_prompt: true`); sized by the slot count `/props` reports.
   */
  private readonly affinity?: SlotChooser;
  /**
   * llama.cpp's slot files: a conversation evicted from its slot is saved, and restored when it
   * returns (`POST /slots/{id}?action=save|restore`). Undefined once the server refused (no
   * `--slot-save-path`): never asked again.
   */
  private slotFiles?: SavedSlots;
  private readonly headers: Record<string, string>;
  /** The headers of a generation request: one object, so its head is worked out once (http.ts). */
  private readonly streamHeaders: Record<string, string>;

  constructor(private readonly opts: BackendOptions<{ flavor?: string; cacheAffinity?: boolean }>) {
    this.name = opts.name;
    this.baseUrl = openaiRoot(opts.baseUrl);
    const flavor = opts.settings.flavor ?? "";
    this.flavor = (FLAVORS as readonly string[]).includes(flavor) ? (flavor as Flavor) : "generic";
    this.caps = CAPS[this.flavor];
    this.headers = { ...opts.headers };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
    this.streamHeaders = { accept: "text/event-stream", ...this.headers };
    this.concurrency = ONE_AT_A_TIME.has(this.flavor) ? 1 : 0;
    if (this.flavor === "llamacpp") {
      this.countTokens = (req, profile) => this.tokenize(req, profile);
      this.askConcurrency = () => this.slots();
      // `cache_affinity: false`: no id_slot, the server picks the slot itself (for comparison)
      if (opts.settings.cacheAffinity !== false) {
        this.affinity = new SlotChooser(1);
        this.slotFiles = new SavedSlots();
      }
    }
  }

  /** The server started again: its slots hold no conversation. */
  forget(): void {
    this.affinity?.forget();
  }

  async *send(req: Request, ctx: SendContext): AsyncGenerator<Event[]> {
    const lease = this.affinity?.take(conversationKeys(req), ctx.background === true);
    // llama.cpp reports how far it has read the prompt (`return_progress`, since b6399): the
    // watchdog times the first token by it, and the client's stream is kept alive with it
    const extra: Record<string, unknown> | undefined =
      this.flavor === "llamacpp" ? { return_progress: true } : undefined;
    if (lease) Object.assign(extra!, { cache_prompt: true, id_slot: lease.slot });
    try {
      if (lease && this.slotFiles) await this.swapSlot(lease, ctx.background === true, req, ctx);
      yield* this.exchange(req, ctx, extra);
    } finally {
      lease?.release();
    }
  }

  /**
   * Before a request takes a slot that holds another conversation, that conversation is saved to
   * its file; a conversation whose saved file holds more of its prompt than its slot does is
   * restored into the slot first. A server without `--slot-save-path` answers 501 to the first
   * try (tools/server server-context.cpp, `post_slots`): from then on nothing is tried; any other
   * failure only costs the cache.
   */
  private async swapSlot(
    lease: { slot: number; held: { keys: readonly string[]; background: boolean }; shared: number },
    background: boolean,
    req: Request,
    ctx: SendContext,
  ): Promise<void> {
    const files = this.slotFiles!;
    const { held } = lease;
    if (lease.shared <= 1 && held.keys.length > 1 && !held.background) {
      const file = files.fileFor(held.keys);
      if (await this.slotAction(lease.slot, "save", file, ctx)) files.saved(file, held.keys);
    }
    if (background || !this.slotFiles) return;
    const keys = conversationKeys(req);
    const saved = files.find(keys, lease.shared);
    if (!saved) return;
    if (!(await this.slotAction(lease.slot, "restore", saved.file, ctx))) files.forget(saved.file);
  }

  /** One slot action; false when it failed (a refusal for want of `--slot-save-path` ends them all). */
  private async slotAction(
    slot: number,
    action: "save" | "restore",
    filename: string,
    ctx: SendContext,
  ): Promise<boolean> {
    if (!this.slotFiles) return false;
    try {
      await fetchJson(this.name, `${this.root}/slots/${slot}?action=${action}`, this.opts.dispatcher, {
        method: "POST",
        body: { filename },
        headers: this.headers,
        timeoutMs: 60_000,
      });
      ctx.log.debug({ backend: this.name, slot, action, filename }, "slot file");
      return true;
    } catch (e) {
      const status = (e as { upstreamStatus?: number }).upstreamStatus;
      if (status === 501 || status === 404) {
        this.slotFiles = undefined;
        ctx.log.info(
          { backend: this.name },
          "the server keeps no slot files (start llama-server with --slot-save-path to keep evicted conversations)",
        );
      } else
        ctx.log.warn(
          { backend: this.name, slot, action, err: (e as Error).message },
          "slot file action failed",
        );
      return false;
    }
  }

  private async *exchange(
    req: Request,
    ctx: SendContext,
    extra?: Record<string, unknown>,
  ): AsyncGenerator<Event[]> {
    const body = chatBody(req, ctx.profile, this.caps, this.flavor !== "tinygrad", extra);
    const res = await postJson({
      backend: this.name,
      url: `${this.baseUrl}/chat/completions`,
      body,
      // a body written into the pool's buffer goes back to it once sent
      onBodyDone: () => releaseBody(body),
      headers: this.streamHeaders,
      signal: ctx.signal,
      hooks: ctx.exchange,
      dispatcher: this.opts.dispatcher,
      errors: OPENAI_COMPAT_ERRORS,
    });
    const decoder = new ChatChunkDecoder(this.name, undefined, ctx.exchange?.onProgress);
    if (String(res.headers["content-type"] ?? "").includes("application/json")) {
      // A server that ignored `stream: true` and answered one JSON object: one payload.
      const text = await readWhole(this.name, res.body);
      const out: Event[] = [];
      decoder.push(text, out);
      decoder.end(out);
      yield out;
      return;
    }
    yield* decodeResponse(this.name, res, "sse", decoder);
  }

  async discover(): Promise<DiscoveredModel[]> {
    const j = (await fetchJson(this.name, `${this.baseUrl}/models`, this.opts.dispatcher, {
      headers: this.headers,
    })) as {
      data?: Array<{
        id?: string;
        max_model_len?: number;
        context_length?: number;
        meta?: { n_ctx_train?: number };
      }>;
    };
    const models = (j.data ?? [])
      .filter((m) => typeof m.id === "string")
      .map((m) => {
        const d: DiscoveredModel = { name: m.id! };
        if (typeof m.max_model_len === "number") {
          d.contextWindow = m.max_model_len;
          d.contextFrom = "/v1/models max_model_len";
        } else if (typeof m.context_length === "number") {
          d.contextWindow = m.context_length;
          d.contextFrom = "/v1/models context_length";
        }
        if (typeof m.meta?.n_ctx_train === "number") d.trainedContext = m.meta.n_ctx_train;
        return d;
      });
    if (this.flavor === "llamacpp") await this.llamaWindow(models);
    else if (this.flavor === "lmstudio") await this.lmstudioWindow(models);
    else if (this.flavor === "tinygrad") {
      for (const d of models)
        d.contextNote = "tinygrad cannot be asked its window: set context_window to its --max_context";
    }
    return models;
  }

  /** The server's root, where llama.cpp and LM Studio keep their own endpoints (no /v1). */
  private get root(): string {
    return this.baseUrl.replace(/\/v\d+$/, "");
  }

  /** llama.cpp: /props says the context of a slot (n_ctx), which is what one request can use. */
  private async llamaWindow(models: DiscoveredModel[]): Promise<void> {
    try {
      const p = (await fetchJson(this.name, `${this.root}/props`, this.opts.dispatcher, {
        headers: this.headers,
      })) as { n_ctx?: number; default_generation_settings?: { n_ctx?: number } };
      const nCtx = p.default_generation_settings?.n_ctx ?? p.n_ctx;
      if (typeof nCtx !== "number" || nCtx <= 0) return;
      for (const d of models) {
        d.contextWindow = nCtx;
        d.contextFrom = "/props n_ctx (per slot)";
      }
    } catch {
      // an older server or a proxy in front: the window stays unknown
    }
  }

  /** LM Studio: /api/v0/models says the context each loaded model was loaded with. */
  private async lmstudioWindow(models: DiscoveredModel[]): Promise<void> {
    try {
      const j = (await fetchJson(this.name, `${this.root}/api/v0/models`, this.opts.dispatcher, {
        headers: this.headers,
      })) as {
        data?: Array<{
          id?: string;
          state?: string;
          loaded_context_length?: number;
          max_context_length?: number;
        }>;
      };
      const byId = new Map((j.data ?? []).map((m) => [m.id, m]));
      for (const d of models) {
        const m = byId.get(d.name);
        if (!m) continue;
        if (typeof m.max_context_length === "number") d.trainedContext = m.max_context_length;
        if (m.state === "loaded" && typeof m.loaded_context_length === "number") {
          d.contextWindow = m.loaded_context_length;
          d.contextFrom = "/api/v0/models loaded_context_length";
        }
      }
    } catch {
      // not LM Studio after all, or an older one: the window stays unknown
    }
  }

  /** llama.cpp's slot count from GET /props (`total_slots`); undefined when it does not say. */
  private async slots(): Promise<number | undefined> {
    const j = (await fetchJson(this.name, `${this.root}/props`, this.opts.dispatcher, {
      headers: this.headers,
      timeoutMs: 3000,
    })) as { total_slots?: unknown };
    const n = j?.total_slots;
    if (typeof n !== "number" || !Number.isInteger(n) || n <= 0) return undefined;
    this.affinity?.resize(n);
    return n;
  }

  /**
   * llama.cpp counts exactly: the request through the model's own chat template
   * (POST /apply-template), then the prompt through its tokenizer (POST /tokenize).
   */
  private async tokenize(req: Request, profile: ModelProfile): Promise<number> {
    const body = encodeChatRequest(req, profile, this.caps, false);
    delete body.stream;
    const t = (await fetchJson(this.name, `${this.root}/apply-template`, this.opts.dispatcher, {
      method: "POST",
      body,
      headers: this.headers,
      timeoutMs: 10_000,
    })) as { prompt?: unknown };
    if (typeof t.prompt !== "string") throw new Error("/apply-template gave no prompt");
    const tok = (await fetchJson(this.name, `${this.root}/tokenize`, this.opts.dispatcher, {
      method: "POST",
      body: { content: t.prompt, add_special: true, parse_special: true },
      headers: this.headers,
      timeoutMs: 10_000,
    })) as { tokens?: unknown };
    if (!Array.isArray(tok.tokens)) throw new Error("/tokenize gave no tokens");
    return tok.tokens.length;
  }
}
