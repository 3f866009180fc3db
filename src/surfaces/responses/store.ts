/**
 * Recent responses, kept so that a client can continue one (`previous_response_id`) or refer to
 * one of its output items (`item_reference`) instead of sending the history again. In memory and
 * bounded, by count and by size: the oldest go first. A response is kept with the whole
 * conversation it ended (its input, an earlier response's included, and its output), so that a
 * continuation never depends on another entry still being there.
 *
 * Where the gateway has a request journal, each response is also written to its file
 * (`backing`: journal/responses.ts), which holds many more for longer and across restarts; the
 * memory keeps the most recent in front of it.
 */

type Item = Record<string, unknown>;

/** Where responses are kept beyond the memory (the journal's file). */
export interface ResponseBacking {
  put(id: string, items: string, output: Item[], bytes: number): void;
  get(id: string): StoredResponse | undefined;
  item(id: string): Item | undefined;
}

export interface StoredResponse {
  id: string;
  /** The conversation up to and including this response's output, as items. */
  items: Item[];
  /** The ids of this response's output items. */
  outputIds: string[];
  /** What the entry costs, in bytes of JSON. */
  bytes: number;
}

export interface ResponseStoreLimits {
  /** The most responses kept. */
  count: number;
  /** The most bytes (of their items as JSON) kept, all together. */
  bytes: number;
}

export const DEFAULT_STORE_LIMITS: ResponseStoreLimits = { count: 512, bytes: 64 * 1024 * 1024 };
/** In front of a backing store, the memory keeps the last few conversations' turns. */
export const BACKED_STORE_LIMITS: ResponseStoreLimits = { count: 64, bytes: 16 * 1024 * 1024 };

export class ResponseStore {
  /** In insertion order: the first is the oldest. */
  private readonly responses = new Map<string, StoredResponse>();
  private readonly items = new Map<string, Item>();
  private total = 0;

  constructor(
    readonly limits: ResponseStoreLimits = DEFAULT_STORE_LIMITS,
    private readonly backing?: ResponseBacking,
  ) {}

  get size(): number {
    return this.responses.size;
  }

  get bytes(): number {
    return this.total;
  }

  get(id: string): StoredResponse | undefined {
    return this.responses.get(id) ?? this.backing?.get(id);
  }

  /** An output item of a kept response, by its id. */
  item(id: string): Item | undefined {
    return this.items.get(id) ?? this.backing?.item(id);
  }

  /** Keeps a response: `input` is the conversation it answered, `output` its output items. */
  put(id: string, input: Item[], output: Item[]): void {
    const items = [...input, ...output];
    const json = JSON.stringify(items);
    const bytes = Buffer.byteLength(json);
    this.backing?.put(id, json, output, bytes);
    // one response larger than the whole store is not kept (and pushes nothing out)
    if (bytes > this.limits.bytes) return;
    this.drop(id);
    const outputIds = output.map((o) => o.id).filter((x): x is string => typeof x === "string");
    this.responses.set(id, { id, items, outputIds, bytes });
    for (const o of output) if (typeof o.id === "string") this.items.set(o.id, o);
    this.total += bytes;
    for (const oldest of this.responses.keys()) {
      if (this.responses.size <= this.limits.count && this.total <= this.limits.bytes) break;
      this.drop(oldest);
    }
  }

  private drop(id: string): void {
    const r = this.responses.get(id);
    if (!r) return;
    this.responses.delete(id);
    for (const i of r.outputIds) this.items.delete(i);
    this.total -= r.bytes;
  }
}
