/**
 * The Responses API's stored responses (`previous_response_id`, `item_reference`) in the request
 * journal's SQLite file, so that a conversation continues across a restart of the gateway. The
 * gateway's in-memory store (surfaces/responses/store.ts) stays in front: it answers the recent
 * ones, and a response is written here with the journal's next batch (the entries of one flush
 * share one commit). Bounded by count, by bytes and by the journal's age limit, apart from the
 * requests: a full response store never pushes request entries out, nor the other way round.
 */
import type Database from "better-sqlite3";

type Item = Record<string, unknown>;

/** A stored response as read back: the conversation it ended, and its output items' ids. */
export interface PersistedResponse {
  id: string;
  items: Item[];
  outputIds: string[];
  bytes: number;
}

export interface PersistedLimits {
  count: number;
  bytes: number;
}

export const RESPONSES_SCHEMA = `
CREATE TABLE IF NOT EXISTS responses (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  at INTEGER NOT NULL,
  items TEXT NOT NULL,
  output_ids TEXT NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS response_items (
  id TEXT PRIMARY KEY,
  response TEXT NOT NULL,
  item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS response_items_response ON response_items(response);
`;

/** What one queued response is written as. */
interface Pending {
  id: string;
  at: number;
  items: string;
  output: Item[];
  bytes: number;
}

export class PersistedResponses {
  private readonly pending = new Map<string, Pending>();
  private readonly insert: Database.Statement;
  private readonly insertItem: Database.Statement;
  private readonly select: Database.Statement;
  private readonly selectItem: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    readonly limits: PersistedLimits,
    /** Asks the journal to write what is queued (its next batch). */
    private readonly schedule: () => void,
  ) {
    db.exec(RESPONSES_SCHEMA);
    this.insert = db.prepare(
      "INSERT OR REPLACE INTO responses (id, at, items, output_ids, bytes) VALUES (?, ?, ?, ?, ?)",
    );
    this.insertItem = db.prepare(
      "INSERT OR REPLACE INTO response_items (id, response, item) VALUES (?, ?, ?)",
    );
    this.select = db.prepare("SELECT id, items, output_ids, bytes FROM responses WHERE id = ?");
    this.selectItem = db.prepare("SELECT item FROM response_items WHERE id = ?");
  }

  /** Whether responses wait to be written. */
  get waiting(): boolean {
    return this.pending.size > 0;
  }

  /** Queues a response for the journal's next write. `items`: its conversation, as JSON already. */
  put(id: string, items: string, output: Item[], bytes: number): void {
    if (bytes > this.limits.bytes) return;
    this.pending.set(id, { id, at: Date.now(), items, output, bytes });
    this.schedule();
  }

  get(id: string): PersistedResponse | undefined {
    const p = this.pending.get(id);
    if (p)
      return {
        id,
        items: JSON.parse(p.items) as Item[],
        outputIds: idsOf(p.output),
        bytes: p.bytes,
      };
    const row = this.select.get(id) as
      | { id: string; items: string; output_ids: string; bytes: number }
      | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      items: JSON.parse(row.items) as Item[],
      outputIds: JSON.parse(row.output_ids) as string[],
      bytes: row.bytes,
    };
  }

  item(id: string): Item | undefined {
    for (const p of this.pending.values()) {
      const found = p.output.find((o) => o.id === id);
      if (found) return found;
    }
    const row = this.selectItem.get(id) as { item: string } | undefined;
    return row ? (JSON.parse(row.item) as Item) : undefined;
  }

  /** Writes what is queued: called inside the journal's transaction. */
  write(): number {
    const batch = [...this.pending.values()];
    this.pending.clear();
    for (const p of batch) {
      this.insert.run(p.id, p.at, p.items, JSON.stringify(idsOf(p.output)), p.bytes);
      for (const o of p.output)
        if (typeof o.id === "string") this.insertItem.run(o.id, p.id, JSON.stringify(o));
    }
    return batch.length;
  }

  /** Drops responses older than `before`, then the oldest until within count and bytes. */
  prune(before: number): number {
    this.db
      .prepare("DELETE FROM response_items WHERE response IN (SELECT id FROM responses WHERE at < ?)")
      .run(before);
    let dropped = this.db.prepare("DELETE FROM responses WHERE at < ?").run(before).changes;
    const { n, total } = this.db
      .prepare("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS total FROM responses")
      .get() as { n: number; total: number };
    if (n <= this.limits.count && total <= this.limits.bytes) return dropped;
    // the newest kept while both bounds hold; everything older goes
    const rows = this.db.prepare("SELECT seq, bytes FROM responses ORDER BY seq DESC").all() as Array<{
      seq: number;
      bytes: number;
    }>;
    let kept = 0;
    let bytes = 0;
    let oldestKept = Number.POSITIVE_INFINITY;
    for (const r of rows) {
      if (kept >= this.limits.count || bytes + r.bytes > this.limits.bytes) break;
      kept++;
      bytes += r.bytes;
      oldestKept = r.seq;
    }
    const below = Number.isFinite(oldestKept) ? oldestKept : Number.MAX_SAFE_INTEGER;
    this.db
      .prepare("DELETE FROM response_items WHERE response IN (SELECT id FROM responses WHERE seq < ?)")
      .run(below);
    dropped += this.db.prepare("DELETE FROM responses WHERE seq < ?").run(below).changes;
    return dropped;
  }

  /** How many responses the file holds. */
  count(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM responses").get() as { n: number }).n;
  }
}

function idsOf(output: Item[]): string[] {
  return output.map((o) => o.id).filter((x): x is string => typeof x === "string");
}
