/**
 * Recent responses, kept so that a client can continue one (`previous_response_id`) or refer to
 * one of its output items (`item_reference`) instead of sending the history again. In memory and
 * bounded, by count and by size: the oldest go first. A response is kept with the whole
 * conversation it ended (its input, an earlier response's included, and its output), so that a
 * continuation never depends on another entry still being there.
 */

type Item = Record<string, unknown>;

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

export class ResponseStore {
  /** In insertion order: the first is the oldest. */
  private readonly responses = new Map<string, StoredResponse>();
  private readonly items = new Map<string, Item>();
  private total = 0;

  constructor(readonly limits: ResponseStoreLimits = DEFAULT_STORE_LIMITS) {}

  get size(): number {
    return this.responses.size;
  }

  get bytes(): number {
    return this.total;
  }

  get(id: string): StoredResponse | undefined {
    return this.responses.get(id);
  }

  /** An output item of a kept response, by its id. */
  item(id: string): Item | undefined {
    return this.items.get(id);
  }

  /** Keeps a response: `input` is the conversation it answered, `output` its output items. */
  put(id: string, input: Item[], output: Item[]): void {
    const items = [...input, ...output];
    const bytes = Buffer.byteLength(JSON.stringify(items));
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
