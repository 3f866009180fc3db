/**
 * The in-process feed of requests: those in flight with their phase, and each finished entry as
 * it is written. What a dashboard's live view subscribes to (`on("update")`, `on("done")`);
 * `inFlight()` is the snapshot to start from.
 */
import { EventEmitter } from "node:events";
import type { LiveRequest, RequestEntry } from "./entry.js";

interface FeedEvents {
  /** A request started or changed phase (the object is the feed's own: copy it to keep it). */
  update: [LiveRequest];
  /** A request finished: its entry, as the journal keeps it. */
  done: [RequestEntry];
}

export class RequestFeed extends EventEmitter<FeedEvents> {
  private readonly live = new Map<string, LiveRequest>();

  /** The requests in flight now, oldest first. */
  inFlight(): LiveRequest[] {
    return [...this.live.values()].map((r) => ({ ...r }));
  }

  /** @internal the request log's: a request began or moved on. */
  update(r: LiveRequest): void {
    this.live.set(r.id, r);
    if (this.listenerCount("update")) this.emit("update", r);
  }

  /** @internal the request log's: a request ended. */
  done(entry: RequestEntry): void {
    this.live.delete(entry.id);
    if (this.listenerCount("done")) this.emit("done", entry);
  }
}
