import type { ModelProfile } from "../ir/contract.js";
import type { Message, Request } from "../ir/types.js";

/** How many conversations a backend's record keeps (see RecentConversations). */
export const RECENT_CONVERSATIONS = 4;

/**
 * The last few conversations one backend served: each one's latest request as it was sent (after
 * the stages), by conversation (its system prompt, tools and first message), the most recent
 * last. Bounded: the oldest goes when one more comes. Replayed after the backend's server starts
 * again (up/warmup.ts `warmConversations`), so its prompt cache holds them before their next turn.
 */
export class RecentConversations {
  private readonly items = new Map<string, { req: Request; profile: ModelProfile }>();

  constructor(private readonly max = RECENT_CONVERSATIONS) {}

  note(req: Request, profile: ModelProfile): void {
    const id = conversationName(req);
    this.items.delete(id);
    this.items.set(id, { req, profile });
    if (this.items.size > this.max) this.items.delete(this.items.keys().next().value!);
  }

  /** The conversations, the least recent first. */
  list(): Array<{ req: Request; profile: ModelProfile }> {
    return [...this.items.values()];
  }
}

/**
 * Conversation affinity: which of a server's slots a request should go to so that its prompt
 * cache holds the conversation. Agents resend their whole history each turn; the slot whose last
 * prompt shares the longest prefix with this one (in whole messages) is where the conversation
 * is. A busy slot is still chosen when it holds the conversation (the server queues the request
 * for it), unless another idle slot holds it as well.
 *
 * A request that continues none takes an idle slot that holds no conversation if it can, so it
 * does not evict a live one: a background request (a title, a summary: see lanes.ts) the slot
 * background work already used or an empty one, so with two or more slots background work keeps
 * to a slot of its own; a new conversation an empty slot. Where none is free, the slot where it
 * costs least (see `free`).
 */
export class SlotChooser {
  private slots: Array<{ keys: readonly string[]; busy: number; used: number; background: boolean }> = [];
  private clock = 0;

  constructor(count: number) {
    this.resize(count);
  }

  get size(): number {
    return this.slots.length;
  }

  /** The server started again: its slots hold nothing. */
  forget(): void {
    for (const s of this.slots) {
      s.keys = [];
      s.background = false;
    }
  }

  /** The server's slot count, once known. */
  resize(count: number): void {
    const n = Math.max(1, Math.floor(count));
    while (this.slots.length < n) this.slots.push({ keys: [], busy: 0, used: 0, background: false });
    this.slots.length = n;
  }

  /**
   * The slot for a prompt made of `keys` (see `conversationKeys`), held until released;
   * `background`: the request is in the background lane.
   */
  take(
    keys: readonly string[],
    background = false,
  ): {
    slot: number;
    release(): void;
    /** What the slot held before: another conversation's keys (evicted now) or an older prompt of this one. */
    held: { keys: readonly string[]; background: boolean };
    /** The keys this prompt shares with what the slot held. */
    shared: number;
  } {
    let best = -1;
    let bestShared = 0;
    for (const [i, s] of this.slots.entries()) {
      // the system prompt and tools alone are shared by every conversation of one client
      const shared = commonPrefix(s.keys, keys);
      const better =
        shared > bestShared || (shared === bestShared && best >= 0 && this.slots[best]!.busy > s.busy);
      if (shared > 1 && better) {
        best = i;
        bestShared = shared;
      }
    }
    let slot = best;
    if (slot < 0) slot = this.free(keys, background);
    const s = this.slots[slot]!;
    const held = { keys: s.keys, background: s.background };
    s.keys = keys;
    s.background = background;
    s.busy++;
    s.used = ++this.clock;
    let released = false;
    return {
      slot,
      held,
      shared: commonPrefix(held.keys, keys),
      release: () => {
        if (released) return;
        released = true;
        s.busy = Math.max(0, s.busy - 1);
      },
    };
  }

  /**
   * The idle slot a request that continues nothing takes (none idle: the least busy).
   * Background work: the least recently used slot that background work used or that is empty,
   * else the least recently used. A conversation: the least recently used empty slot; else the
   * slot where it costs least, counted in characters: what it reads there (past the prefix the
   * slot shares with it: the system prompt and tools of the same client) plus, where the slot
   * holds another conversation, what that one loses (its part past the shared prefix). So a
   * conversation whose slot background work took reads only its own messages where that is
   * cheaper than evicting nobody and reading everything.
   */
  private free(keys: readonly string[], background: boolean): number {
    let at = -1;
    let atCost = 0;
    const size = sizeOf(keys);
    for (const [i, s] of this.slots.entries()) {
      if (s.busy) continue;
      let cost: number;
      if (background) cost = s.background || s.keys.length === 0 ? 0 : 1;
      else if (s.keys.length === 0) cost = -1;
      else {
        const shared = sizeOf(keys, commonPrefix(s.keys, keys));
        cost = size - shared + (s.background ? 0 : sizeOf(s.keys) - shared);
      }
      if (at < 0 || cost < atCost || (cost === atCost && s.used < this.slots[at]!.used)) {
        at = i;
        atCost = cost;
      }
    }
    return at >= 0 ? at : this.leastBusy();
  }

  private leastBusy(): number {
    let at = 0;
    for (const [i, s] of this.slots.entries()) if (s.busy < this.slots[at]!.busy) at = i;
    return at;
  }
}

/** How many slot files a server keeps at most (see SavedSlots). */
export const SAVED_SLOTS = 8;

/**
 * llama.cpp's slot files (`--slot-save-path`): which conversation each holds. A conversation
 * evicted from its slot is saved to a file named after it (its system prompt, tools and first
 * message), and restored into the slot it gets when it returns. The names are bounded: a
 * conversation's file is one of `max` (its key's hash picks which), so at most `max` files are
 * ever written; one that lands on a name in use takes it over.
 */
export class SavedSlots {
  private readonly files = new Map<string, readonly string[]>();

  constructor(private readonly max = SAVED_SLOTS) {}

  /** The file a conversation's slot is saved to. */
  fileFor(keys: readonly string[]): string {
    const n = Number.parseInt(hash(keys.slice(0, 2).join(" ")), 36) % this.max;
    return `clawbridge-${n}.bin`;
  }

  saved(file: string, keys: readonly string[]): void {
    this.files.set(file, keys);
  }

  /** The saved file that holds more of this prompt than `than` keys (the slot it got), if any. */
  find(keys: readonly string[], than: number): { file: string; shared: number } | undefined {
    const file = this.fileFor(keys);
    const held = this.files.get(file);
    if (!held) return undefined;
    const shared = commonPrefix(held, keys);
    return shared > 1 && shared > than ? { file, shared } : undefined;
  }

  forget(file: string): void {
    this.files.delete(file);
  }
}

/** The size of a request's tools as JSON, kept per tools array. */
const toolsSize = new WeakMap<object, number>();

/** A message's key, kept per message object (the parse cache hands the same objects back turn after turn). */
const keyOf = new WeakMap<Message, string>();

/**
 * A prompt as a list of keys: one for the system prompt and tools, then one per message, each
 * `size:hash` (size in characters). Two prompts share a prefix of keys where they share those
 * messages.
 */
export function conversationKeys(req: Request): string[] {
  let tools = toolsSize.get(req.tools);
  if (tools === undefined) {
    tools = JSON.stringify(req.tools).length;
    toolsSize.set(req.tools, tools);
  }
  const keys = [`${req.system.length + tools}:${hash(req.system)}:${req.tools.map((t) => t.name).join(",")}`];
  for (const m of req.messages) {
    let k = keyOf.get(m);
    if (k === undefined) {
      const text = JSON.stringify(m);
      k = `${text.length}:${hash(text)}`;
      keyOf.set(m, k);
    }
    keys.push(k);
  }
  return keys;
}

/**
 * A conversation's name, for the record of recent ones: its system prompt, tools and first message,
 * each by its length and a hash of its ends. Cheap whatever the prompt's size (it is taken for
 * every request; hashing an agent's 60 KB system prompt and 30 KB of tools cost ~0.4 ms a
 * request). Two conversations alike in all that share a name, and the warm-up replays the later.
 */
export function conversationName(req: Request): string {
  const first = req.messages[0];
  const firstParts = first
    ? first.parts.map((p) => (p.type === "text" ? ends(p.text) : p.type)).join(",")
    : "";
  return `${ends(req.system)}|${req.tools.map((t) => t.name).join(",")}|${first?.role ?? ""}:${firstParts}`;
}

/** A text's length and a hash of its first and last 256 characters. */
function ends(text: string): string {
  const sample = text.length <= 512 ? text : text.slice(0, 256) + text.slice(-256);
  return `${text.length}.${hash(sample)}`;
}

/** The characters of the first `n` keys (all by default). */
function sizeOf(keys: readonly string[], n = keys.length): number {
  let size = 0;
  for (let i = 0; i < n; i++) size += Number.parseInt(keys[i]!, 10) || 0;
  return size;
}

function commonPrefix(a: readonly string[], b: readonly string[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** FNV-1a, 32 bits: enough to tell messages apart within one server's few slots. */
function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}
