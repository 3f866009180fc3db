import type { Event, Request } from "../../ir/types.js";
import { decodeResponse, fetchJson, postJson } from "../http.js";
import {
  ALL_SAMPLING,
  type Backend,
  type DiscoveredModel,
  type SendContext,
  type WireCaps,
} from "../../ir/contract.js";
import type { BackendOptions } from "../kind.js";
import { OllamaLineDecoder } from "./decode.js";
import { encodeOllamaBody } from "./encode.js";

const CAPS: WireCaps = {
  tools: true,
  toolHistory: true,
  images: true,
  imageUrls: false,
  stringContentOnly: false,
  strictAlternation: false,
  thinkingHistory: true,
  jsonSchema: true,
  thinkingEffort: true,
  sampling: ALL_SAMPLING,
  // Ollama's templates render every system message where it stands
  systemMidConversation: true,
};

/** `http://host:11434` (a trailing `/v1` or `/api` is the user pasting the wrong root: dropped). */
function ollamaRoot(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/(v1|api)$/, "");
}

export class OllamaBackend implements Backend {
  readonly kind = "ollama" as const;
  readonly name: string;
  readonly baseUrl: string;
  readonly caps = CAPS;
  /**
   * One at a time: Ollama's parallelism (OLLAMA_NUM_PARALLEL) cannot be asked over the API;
   * recent versions default to 1, and a higher setting multiplies the context memory, so whoever
   * sets it also knows to set `concurrency`. Sending more than it serves only moves the queue into
   * Ollama, where lanes, bounds and cancellation do not reach.
   */
  readonly concurrency = 1;
  private readonly headers: Record<string, string>;
  /** The headers of a generation request: one object, so its head is worked out once (http.ts). */
  private readonly streamHeaders: Record<string, string>;

  constructor(private readonly opts: BackendOptions) {
    this.name = opts.name;
    this.baseUrl = ollamaRoot(opts.baseUrl);
    this.headers = { ...opts.headers };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
    this.streamHeaders = { accept: "application/x-ndjson", ...this.headers };
  }

  async *send(req: Request, ctx: SendContext): AsyncGenerator<Event[]> {
    const res = await postJson({
      backend: this.name,
      url: `${this.baseUrl}/api/chat`,
      body: encodeOllamaBody(req, ctx.profile),
      headers: this.streamHeaders,
      signal: ctx.signal,
      dispatcher: this.opts.dispatcher,
    });
    yield* decodeResponse(this.name, res, "ndjson", new OllamaLineDecoder(this.name));
  }

  async discover(): Promise<DiscoveredModel[]> {
    const tags = (await fetchJson(this.name, `${this.baseUrl}/api/tags`, this.opts.dispatcher, {
      headers: this.headers,
    })) as { models?: Array<{ name?: string; model?: string; size?: number }> };
    const listed = (tags.models ?? []).flatMap((m) => {
      const name = m.name ?? m.model;
      return typeof name === "string" ? [{ name, size: m.size }] : [];
    });
    const loaded = await this.loaded();
    return Promise.all(
      listed.map(async ({ name, size }) => {
        const d = await this.show(name);
        d.windowPerRequest = true;
        if (typeof size === "number" && size > 0) d.sizeBytes = size;
        const ctx = loaded.get(name);
        if (d.contextWindow === undefined && ctx !== undefined) {
          d.contextWindow = ctx;
          d.contextFrom = "/api/ps context_length (loaded now)";
        }
        return d;
      }),
    );
  }

  /** The models loaded now (/api/ps) and the context each was loaded with. */
  private async loaded(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    try {
      const ps = (await fetchJson(this.name, `${this.baseUrl}/api/ps`, this.opts.dispatcher, {
        headers: this.headers,
      })) as { models?: Array<{ name?: string; model?: string; context_length?: number }> };
      for (const m of ps.models ?? []) {
        const name = m.name ?? m.model;
        if (typeof name === "string" && typeof m.context_length === "number") out.set(name, m.context_length);
      }
    } catch {
      // older servers have no context_length in /api/ps, or no /api/ps: informative only
    }
    return out;
  }

  /** What /api/show says of one model: its trained context, num_ctx parameter, KV cache size, capabilities. */
  async show(name: string): Promise<DiscoveredModel> {
    const d: DiscoveredModel = { name };
    try {
      const j = (await fetchJson(this.name, `${this.baseUrl}/api/show`, this.opts.dispatcher, {
        method: "POST",
        body: { model: name },
        headers: this.headers,
      })) as { model_info?: Record<string, unknown>; parameters?: string; capabilities?: string[] };
      const info = j.model_info ?? {};
      const arch = info["general.architecture"];
      const trained = typeof arch === "string" ? info[`${arch}.context_length`] : undefined;
      if (typeof trained === "number") d.trainedContext = trained;
      const numCtx = /(?:^|\n)\s*num_ctx\s+(\d+)/.exec(j.parameters ?? "")?.[1];
      if (numCtx) {
        d.numCtxParameter = Number(numCtx);
        d.contextWindow = Number(numCtx);
        d.contextFrom = "/api/show num_ctx parameter";
      }
      if (typeof arch === "string") {
        const kv = kvBytesPerToken(info, arch);
        if (kv) d.kvBytesPerToken = kv;
      }
      if (Array.isArray(j.capabilities)) {
        d.tools = j.capabilities.includes("tools");
        d.vision = j.capabilities.includes("vision");
        d.thinking = j.capabilities.includes("thinking");
      }
    } catch {
      // /api/show is informative only; a model we cannot describe is still served.
    }
    return d;
  }
}

/**
 * KV cache bytes per token of context at f16, Ollama's default cache type: keys and values, for
 * every layer, for every KV head. Head sizes from `attention.key_length`/`value_length` where the
 * model states them, else embedding_length / head_count.
 */
export function kvBytesPerToken(info: Record<string, unknown>, arch: string): number | undefined {
  const num = (k: string) => {
    const v = info[`${arch}.${k}`];
    if (typeof v === "number") return v;
    // per-layer arrays (some architectures vary heads by layer): their mean
    if (Array.isArray(v) && v.length && v.every((x) => typeof x === "number"))
      return (v as number[]).reduce((a, b) => a + b, 0) / v.length;
    return undefined;
  };
  const layers = num("block_count");
  const heads = num("attention.head_count");
  const kvHeads = num("attention.head_count_kv") ?? heads;
  const embedding = num("embedding_length");
  const headDim = embedding && heads ? embedding / heads : undefined;
  const keyLength = num("attention.key_length") ?? headDim;
  const valueLength = num("attention.value_length") ?? headDim;
  if (!layers || !kvHeads || !keyLength || !valueLength) return undefined;
  return Math.round(layers * kvHeads * (keyLength + valueLength) * 2);
}
