/**
 * The request journal: every request's entry in a SQLite file (better-sqlite3), bounded by size and
 * age, kept across restarts. The gateway writes (`Journal.open`); `clawbridge requests` and a
 * dashboard read (`Journal.read`, read-only, with the gateway running or not).
 *
 * Writes stay off the request path: `add` queues the entry, and the queue is written in one
 * transaction every `FLUSH_MS` (one prepared insert per entry, WAL mode: a reader never blocks the
 * writer). A commit costs far more than an insert (measured here: ~200 µs a commit, ~40 µs an
 * insert), so a busy gateway's entries are written many to a commit. The bound is kept every
 * `PRUNE_EVERY` inserts and on a timer.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type Database from "better-sqlite3";
import type { Logger } from "../log.js";
import type { RequestEntry } from "./entry.js";
import { PersistedResponses } from "./responses.js";

export interface JournalSettings {
  path: string;
  /** The most the file may hold, in MiB (default 100). */
  maxMb?: number;
  /** Entries older than this are dropped, in days (default 14). */
  maxAgeDays?: number;
  /** Keep the bodies (the client's request, the upstream request, the answer). */
  capture?: boolean;
}

export const DEFAULT_JOURNAL_MB = 100;
/** The stored Responses API responses: at most this many, in at most a quarter of the file's bound. */
const STORED_RESPONSES = 4096;
export const DEFAULT_JOURNAL_DAYS = 14;
/** How long an entry may wait to be written: the entries of that time share one commit. */
const FLUSH_MS = 100;
/** Inserts between two checks of the bound (it is checked on a timer too). */
const PRUNE_EVERY = 500;
const PRUNE_INTERVAL_MS = 60_000;

/** What to list: the newest `limit` entries that match, oldest first. */
export interface ListQuery {
  limit?: number;
  /** The model asked for (exactly). */
  model?: string;
  /** An HTTP status (`200`), a class (`4xx`), or an outcome word (`client_gone`). */
  status?: string;
  /** Only entries written after this sequence number (`--follow`). */
  after?: number;
}

/** A listed entry, with its place in the journal (`seq`, for following). */
export type JournalRow = RequestEntry & { seq: number };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS requests (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  at INTEGER NOT NULL,
  model TEXT,
  status INTEGER,
  outcome TEXT NOT NULL,
  entry TEXT NOT NULL,
  bodies TEXT
);
CREATE INDEX IF NOT EXISTS requests_at ON requests(at);
`;

/**
 * The SQLite module, loaded when a journal is opened: a native addon that failed to build or load
 * costs the journal, not the gateway.
 */
function sqlite(): typeof Database {
  return createRequire(import.meta.url)("better-sqlite3") as typeof Database;
}

interface Row {
  seq: number;
  entry: string;
  bodies: string | null;
}

export class Journal {
  private readonly queue: RequestEntry[] = [];
  private scheduled = false;
  private sinceCheck = 0;
  private readonly timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly insert: Database.Statement;
  private readonly writeAll: (entries: RequestEntry[]) => void;
  readonly capture: boolean;
  /** The Responses API's stored responses (none when opened to read). */
  readonly responses: PersistedResponses | undefined;
  readonly maxBytes: number;
  readonly maxAgeMs: number;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    settings: JournalSettings,
    private readonly log: Logger | undefined,
    writable: boolean,
  ) {
    this.capture = settings.capture ?? false;
    this.maxBytes = (settings.maxMb ?? DEFAULT_JOURNAL_MB) * 1024 * 1024;
    this.maxAgeMs = (settings.maxAgeDays ?? DEFAULT_JOURNAL_DAYS) * 86_400_000;
    if (writable) {
      this.insert = db.prepare(
        "INSERT INTO requests (id, at, model, status, outcome, entry, bodies) VALUES (?, ?, ?, ?, ?, ?, ?)",
      );
      this.responses = new PersistedResponses(
        db,
        { count: STORED_RESPONSES, bytes: Math.floor(this.maxBytes / 4) },
        () => this.schedule(),
      );
      this.writeAll = db.transaction((entries: RequestEntry[]) => {
        this.responses?.write();
        for (const e of entries) {
          const { bodies, ...rest } = e;
          this.insert.run(
            e.id,
            e.at,
            e.model ?? null,
            e.status,
            e.outcome,
            JSON.stringify(rest),
            this.capture && bodies ? JSON.stringify(bodies) : null,
          );
        }
      });
      this.timer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
      this.timer.unref();
      this.prune();
    } else {
      this.insert = undefined as unknown as Database.Statement;
      this.responses = undefined;
      this.writeAll = () => {
        throw new Error("the journal was opened to read");
      };
    }
  }

  /**
   * Opens (or creates) the journal to write. Returns undefined when it cannot be opened (a
   * read-only folder, a corrupt file): the gateway serves without it, and says so once.
   */
  static open(settings: JournalSettings, log?: Logger): Journal | undefined {
    let db: Database.Database | undefined;
    try {
      // the file holds what clients asked (and, captured, the bodies): the user's alone
      mkdirSync(dirname(settings.path), { recursive: true, mode: 0o700 });
      const Sqlite = sqlite();
      db = new Sqlite(settings.path);
      // a file from before this rule, with its write-ahead log, narrowed too
      for (const f of [settings.path, `${settings.path}-wal`, `${settings.path}-shm`]) {
        try {
          chmodSync(f, 0o600);
        } catch {
          // not there (yet), or a file system without modes (a Windows share): nothing to narrow
        }
      }
      // before the table exists: lets pruning give the space back (incremental_vacuum)
      db.pragma("auto_vacuum = INCREMENTAL");
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      // the write-ahead log is cut back to this after a checkpoint
      db.pragma("journal_size_limit = 1048576");
      db.exec(SCHEMA);
      return new Journal(db, settings.path, settings, log, true);
    } catch (e) {
      db?.close();
      log?.warn(
        { path: settings.path, err: (e as Error).message },
        "the request journal cannot be opened; serving without it",
      );
      return undefined;
    }
  }

  /** Opens an existing journal read-only (`clawbridge requests`); throws when there is none. */
  static read(path: string): Journal {
    const Sqlite = sqlite();
    const db = new Sqlite(path, { readonly: true, fileMustExist: true });
    return new Journal(db, path, { path }, undefined, false);
  }

  /** Queues an entry; it is written on the next turn of the event loop, with the others queued. */
  add(entry: RequestEntry): void {
    if (this.closed) return;
    this.queue.push(entry);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setTimeout(this.flush, FLUSH_MS).unref();
  }

  /** Writes what is queued (entries and stored responses), in one transaction. */
  readonly flush = (): void => {
    this.scheduled = false;
    if ((!this.queue.length && !this.responses?.waiting) || this.closed) return;
    const batch = this.queue.splice(0);
    try {
      this.writeAll(batch);
    } catch (e) {
      this.log?.warn(
        { err: (e as Error).message, dropped: batch.length },
        "could not write to the request journal",
      );
      return;
    }
    this.sinceCheck += batch.length;
    if (this.sinceCheck >= PRUNE_EVERY) this.prune();
  };

  /** The bytes the entries take (pages in use, not the free ones). */
  usedBytes(): number {
    const size = this.db.pragma("page_size", { simple: true }) as number;
    const count = this.db.pragma("page_count", { simple: true }) as number;
    const free = this.db.pragma("freelist_count", { simple: true }) as number;
    return (count - free) * size;
  }

  /** Drops entries past the age limit, then the oldest until the file is within its size. */
  prune(now = Date.now()): void {
    if (this.closed) return;
    this.sinceCheck = 0;
    try {
      let dropped = this.db.prepare("DELETE FROM requests WHERE at < ?").run(now - this.maxAgeMs).changes;
      dropped += this.responses?.prune(now - this.maxAgeMs) ?? 0;
      // down to 90 % of the bound, a tenth of the entries at a time: a full journal is not pruned on every check
      if (this.usedBytes() > this.maxBytes) {
        for (let i = 0; i < 50 && this.usedBytes() > this.maxBytes * 0.9; i++) {
          const total = this.db.prepare("SELECT count(*) AS n FROM requests").get() as { n: number };
          if (!total.n) break;
          const drop = Math.max(1, Math.ceil(total.n / 10));
          dropped += this.db
            .prepare("DELETE FROM requests WHERE seq IN (SELECT seq FROM requests ORDER BY seq LIMIT ?)")
            .run(drop).changes;
        }
      }
      // the freed pages back to the file system, the write-ahead log cut back: only when something went
      if (dropped) {
        this.db.pragma("incremental_vacuum");
        this.db.pragma("wal_checkpoint(TRUNCATE)");
      }
    } catch (e) {
      this.log?.warn({ err: (e as Error).message }, "could not prune the request journal");
    }
  }

  /** The newest `limit` entries that match, oldest first (bodies left out). */
  list(q: ListQuery = {}): JournalRow[] {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (q.after !== undefined) {
      where.push("seq > ?");
      args.push(q.after);
    }
    if (q.model) {
      where.push("model = ?");
      args.push(q.model);
    }
    if (q.status) {
      const s = q.status.toLowerCase();
      if (/^\d{3}$/.test(s)) {
        where.push("status = ?");
        args.push(Number(s));
      } else if (/^\dxx$/.test(s)) {
        where.push("status BETWEEN ? AND ?");
        args.push(Number(s[0]) * 100, Number(s[0]) * 100 + 99);
      } else {
        where.push("outcome = ?");
        args.push(s);
      }
    }
    const sql = `SELECT seq, entry, NULL AS bodies FROM requests${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    args.push(q.limit ?? 20);
    const rows = this.db.prepare(sql).all(...args) as Row[];
    return rows.reverse().map(toEntry);
  }

  /** One entry in full, bodies included when they were captured; `id` may be a unique prefix. */
  get(id: string): JournalRow | undefined {
    const row =
      (this.db.prepare("SELECT seq, entry, bodies FROM requests WHERE id = ?").get(id) as Row | undefined) ??
      (
        this.db
          .prepare(
            "SELECT seq, entry, bodies FROM requests WHERE id LIKE ? ESCAPE '\\' ORDER BY seq DESC LIMIT 2",
          )
          .all(`${id.replace(/[\\%_]/g, (c) => `\\${c}`)}%`) as Row[]
      ).filter((_, __, all) => all.length === 1)[0];
    return row ? toEntry(row) : undefined;
  }

  /** How many entries it holds. */
  count(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM requests").get() as { n: number }).n;
  }

  /** Writes what is queued and closes the file. */
  close(): void {
    if (this.closed) return;
    if (this.insert) this.flush();
    this.closed = true;
    clearInterval(this.timer);
    this.db.close();
  }
}

function toEntry(row: Row): JournalRow {
  const entry = JSON.parse(row.entry) as RequestEntry;
  return { ...entry, ...(row.bodies ? { bodies: JSON.parse(row.bodies) } : {}), seq: row.seq };
}
