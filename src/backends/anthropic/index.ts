import type { Event, Request } from "../../ir/types.js";
import { fetchJson, postJson } from "../http/client.js";
import { decodeResponse } from "../http/framing.js";
import type { Backend, DiscoveredModel, SendContext, WireCaps } from "../../ir/contract.js";
import type { BackendOptions } from "../kind.js";
import { ANTHROPIC_ERRORS } from "./errors.js";
import { AnthropicEventDecoder } from "./decode.js";
import { encodeAnthropicRequest } from "./encode.js";

const CAPS: WireCaps = {
  tools: true,
  toolHistory: true,
  images: true,
  imageUrls: true,
  stringContentOnly: false,
  strictAlternation: false,
  thinkingHistory: true,
  thinkingNeedsSignature: true,
  jsonSchema: false,
  sampling: new Set(["temperature", "topP", "topK", "stop"] as const),
  clientBilling: true,
};

/** `https://api.anthropic.com` (a trailing `/v1` is tolerated). */
function anthropicRoot(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/v1$/, "");
}

export class AnthropicBackend implements Backend {
  readonly kind = "anthropic" as const;
  readonly name: string;
  readonly baseUrl: string;
  readonly caps = CAPS;
  /** No limit: the service queues itself. */
  readonly concurrency = 0;
  private readonly headers: Record<string, string>;
  /** The headers of a generation request: one object, so its head is worked out once (http.ts). */
  private readonly streamHeaders: Record<string, string>;

  constructor(private readonly opts: BackendOptions) {
    this.name = opts.name;
    this.baseUrl = anthropicRoot(opts.baseUrl);
    this.headers = { "anthropic-version": "2023-06-01", ...opts.headers };
    if (opts.apiKey) this.headers["x-api-key"] = opts.apiKey;
    this.streamHeaders = { accept: "text/event-stream", ...this.headers };
  }

  async *send(req: Request, ctx: SendContext): AsyncGenerator<Event[]> {
    const res = await postJson({
      backend: this.name,
      url: `${this.baseUrl}/v1/messages`,
      body: JSON.stringify(encodeAnthropicRequest(req, ctx.profile)),
      headers: this.streamHeaders,
      signal: ctx.signal,
      hooks: ctx.exchange,
      dispatcher: this.opts.dispatcher,
      errors: ANTHROPIC_ERRORS,
    });
    yield* decodeResponse(this.name, res, "sse", new AnthropicEventDecoder(this.name));
  }

  async discover(): Promise<DiscoveredModel[]> {
    const j = (await fetchJson(this.name, `${this.baseUrl}/v1/models`, this.opts.dispatcher, {
      headers: this.headers,
    })) as { data?: Array<{ id?: string }> };
    return (j.data ?? []).filter((m) => typeof m.id === "string").map((m) => ({ name: m.id!, tools: true }));
  }
}
