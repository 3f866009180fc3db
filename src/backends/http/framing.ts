import type { IncomingMessage } from "node:http";
import { StringDecoder } from "node:string_decoder";
import { createParser } from "eventsource-parser";
import type { Event } from "../../ir/types.js";
import type { UpstreamResponse } from "./client.js";
import { midStreamError } from "./errors.js";

/**
 * Framing: a backend's streamed answer, bytes off the socket, split into its payloads (SSE `data`,
 * or NDJSON lines) and run through the kind's wire decoder into IR events.
 */

/**
 * UTF-8 across network chunks, read as TextDecoder reads it (a byte order mark at the start
 * dropped, a character split between chunks joined, bad bytes replaced the same way) for a fifth
 * of its cost: Node 20's TextDecoder in streaming mode costs ~1.3 ns a byte, StringDecoder ~0.2.
 */
class Utf8Text {
  private readonly decoder = new StringDecoder("utf8");
  private atStart = true;

  write(chunk: Buffer | string): string {
    return typeof chunk === "string" ? chunk : this.dropBom(this.decoder.write(chunk));
  }

  end(): string {
    return this.dropBom(this.decoder.end());
  }

  private dropBom(s: string): string {
    if (!this.atStart || !s) return s;
    this.atStart = false;
    return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  }
}

/** Splits a response body into payloads, chunk by chunk: SSE `data`, or NDJSON lines. */
export interface PayloadSplitter {
  /** The payloads `chunk` completed, pushed to `payloads`. */
  feed(chunk: Buffer | string, payloads: string[]): void;
  /** A payload left without its terminator when the body ended. */
  end(payloads: string[]): void;
}

export function splitterFor(framing: "sse" | "ndjson"): PayloadSplitter {
  return framing === "sse" ? new SseSplitter() : new LineSplitter();
}

/** Splits text into lines (NDJSON), trimmed, empty ones skipped. */
class LineSplitter implements PayloadSplitter {
  private readonly text = new Utf8Text();
  private buf = "";

  /** The lines `chunk` completed. */
  feed(chunk: Buffer | string, lines: string[]): void {
    const seen = this.buf.length;
    this.buf += this.text.write(chunk);
    // what was buffered has no newline: look only at what came now
    let nl = this.buf.indexOf("\n", seen);
    if (nl < 0) return;
    let from = 0;
    while (nl >= 0) {
      const line = this.buf.slice(from, nl).trim();
      if (line) lines.push(line);
      from = nl + 1;
      nl = this.buf.indexOf("\n", from);
    }
    this.buf = this.buf.slice(from);
  }

  /** The last line, when the stream did not end with a newline. */
  end(lines: string[]): void {
    const last = (this.buf + this.text.end()).trim();
    this.buf = "";
    if (last) lines.push(last);
  }
}

/**
 * Server-sent events' data (eventsource-parser: the spec's line endings, comments, fields,
 * multi-line data); the decoders read only the data.
 */
class SseSplitter implements PayloadSplitter {
  private readonly text = new Utf8Text();
  private payloads: string[] = [];
  private readonly parser = createParser({ onEvent: (ev) => this.payloads.push(ev.data) });

  feed(chunk: Buffer | string, payloads: string[]): void {
    this.payloads = payloads;
    this.parser.feed(this.text.write(chunk));
  }

  end(payloads: string[]): void {
    this.payloads = payloads;
    this.parser.feed(`${this.text.end()}\n\n`);
  }
}

/** A wire decoder: payloads in (SSE data or NDJSON lines), IR events out. */
export interface StreamDecoder {
  /** Decodes one payload into `out`; returns true when it was the stream's last. */
  push(payload: string, out: Event[]): boolean;
  /** Closes the answer (stop event), or throws when the stream ended before it finished. */
  end(out: Event[]): void;
}

/**
 * Runs an open response through a decoder, yielding the events of each network chunk as one
 * batch. The body is read to its end so the connection returns to the pool; a broken one is
 * destroyed.
 *
 * This is the loop of the stream's async iterator written out (read what is buffered, wait for
 * `readable`, the end or an error), with the splitting and decoding inside it: the iterator and
 * the generators that were stacked on it cost a few microseconds a batch, and a server streaming
 * tokens one by one sends a batch per token. Reading, backpressure, the error of a destroyed body
 * and the destroy when the caller stops early are the iterator's. A chunk that completes the
 * response carries the decoder's end in its own batch: a short answer that came in one read
 * (a non-streaming client's, most often) goes up the layers once instead of two or three times.
 */
export async function* decodeResponse(
  backend: string,
  res: UpstreamResponse,
  framing: "sse" | "ndjson",
  decoder: StreamDecoder,
): AsyncGenerator<Event[]> {
  const body = res.body;
  const splitter = splitterFor(framing);
  /** The body's end (null) or error, once it came; undefined before. */
  let over: unknown;
  /** Whether the body was read to its last byte (its `end` follows by itself). */
  let whole = false;
  let wake: (() => void) | undefined;
  const kick = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  // What `stream.finished` would report, with three listeners instead of its five and its checks
  // of every kind of stream: the end, an error, or a close before the end.
  const onEnd = (): void => {
    if (over === undefined) over = null;
    kick();
  };
  const onError = (e: unknown): void => {
    if (over === undefined) over = e;
    kick();
  };
  const onClose = (): void => {
    if (over === undefined) over = body.readableEnded ? null : prematureClose();
    kick();
  };
  /** Whether the decoder had the answer's last payload (`[DONE]`, `done: true`, message_stop). */
  let last = false;
  /** The chunk's payloads through the decoder into `out`; what the decoder threw, if it did. */
  const decode = (chunk: Buffer | string | undefined, out: Event[]): unknown => {
    const payloads: string[] = [];
    if (chunk === undefined) splitter.end(payloads);
    else splitter.feed(chunk, payloads);
    // what comes after the last payload is no part of the answer, and is not read
    for (let i = 0; i < payloads.length && !last; i++) {
      try {
        if (decoder.push(payloads[i]!, out)) last = true;
      } catch (e) {
        return e;
      }
    }
    return undefined;
  };
  /** The end of the body (an event or line left without its terminator) and the decoder's. */
  const finish = (out: Event[]): unknown => {
    const failed = last ? undefined : decode(undefined, out);
    if (failed !== undefined) return failed;
    try {
      decoder.end(out);
    } catch (e) {
      return e;
    }
    return undefined;
  };
  body.on("readable", kick);
  body.on("end", onEnd);
  body.on("error", onError);
  body.on("close", onClose);
  if (body.destroyed) over = body.errored ?? (body.readableEnded ? null : prematureClose());
  try {
    for (;;) {
      const chunk: Buffer | string | null = body.destroyed ? null : body.read();
      if (chunk !== null) {
        const out: Event[] = [];
        let failed = decode(chunk, out);
        // the last of the response (Node has it all and nothing is left to read), or of the
        // answer: the end goes with it
        const ends = failed === undefined && (last || (body.complete && body.readableLength === 0));
        if (ends) {
          whole = body.complete && body.readableLength === 0;
          failed = finish(out);
        }
        // what came before a bad payload in the same network chunk still goes out first
        if (out.length) yield out;
        if (failed !== undefined) throw failed;
        if (ends) return;
      } else if (over === null) break;
      else if (over !== undefined) throw over;
      else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
    whole = true;
    const out: Event[] = [];
    const failed = finish(out);
    if (out.length) yield out;
    if (failed !== undefined) throw failed;
  } catch (e) {
    throw midStreamError(backend, e);
  } finally {
    body.off("readable", kick);
    body.off("end", onEnd);
    body.off("error", onError);
    body.off("close", onClose);
    // Read to its end, the body emits `end` and its connection goes back to the pool. After the
    // answer's last payload, what is left of it (the end of the chunked body, most often, or what
    // a server sent after its end) is read and dropped for the same, within a bound. Otherwise
    // (the caller stopped early, an error) it is destroyed, and the connection with it.
    if (!whole && over !== null) {
      if (last && over === undefined && !body.destroyed) discardRest(body);
      else body.destroy();
    }
  }
}

/** How long what a server sends after the answer's last payload is read before the connection is closed. */
const REST_MS = 2000;

/** Reads the rest of a body and drops it, so its connection can serve again; destroys it after REST_MS. */
function discardRest(body: IncomingMessage): void {
  const timer = setTimeout(() => body.destroy(), REST_MS);
  const done = (): void => clearTimeout(timer);
  body.once("end", done);
  body.once("close", done);
  body.resume();
}

/** The error `stream.finished` reports for a body closed before its end. */
function prematureClose(): Error {
  return Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
}
