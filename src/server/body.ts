/**
 * Reading a request's body: within its size limit and its time, into one buffer, then parsed (by
 * the parse cache) and refused when it is empty, not JSON, or nested too deep.
 */
import type { IncomingMessage } from "node:http";
import { GatewayError } from "../ir/errors.js";
import { frozenHeight } from "../ir/frozen.js";
import { type BodyParser, text } from "./parse-cache.js";

/** The JSON a body holds; a GatewayError (400) when it is empty, not JSON, or nested too deep. */
export function parseBody(bytes: Buffer, bodies: BodyParser): unknown {
  let body: unknown;
  try {
    body = bodies.parse(bytes);
  } catch (e) {
    if (text(bytes, 0).trim() === "")
      throw new GatewayError("invalid_request", "the request body is empty; expected a JSON object");
    throw new GatewayError("invalid_request", `the request body is not valid JSON: ${(e as Error).message}`);
  }
  if (nestingDepth(body, MAX_DEPTH) > MAX_DEPTH)
    throw new GatewayError("invalid_request", `the request body is nested deeper than ${MAX_DEPTH} levels`);
  return body;
}

/**
 * Reads a request body, refusing more than `limit` bytes with a 413, and a body not in by
 * `deadline` with a 408 (the caller answers both, and reads no more of the body into memory).
 * The bytes go into one buffer as they come (sized from content-length when the client sent
 * one), and nothing of them stays referenced from the request once it has been read.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  deadline: number,
  receiveMs: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () =>
      new GatewayError("request_too_large", `request body is larger than the limit of ${formatBytes(limit)}`);
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) {
      reject(tooLarge());
      return;
    }
    let buf: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    const timer = setTimeout(() => {
      done();
      reject(
        new GatewayError(
          "request_timeout",
          `the request body did not arrive within ${formatMs(receiveMs)} (server.receive_timeout_ms)`,
        ),
      );
    }, deadline - performance.now());
    const onData = (c: Buffer) => {
      if (size + c.length > limit) {
        done();
        reject(tooLarge());
        return;
      }
      // the whole body's room at the first bytes (not before: a client that sends nothing costs nothing)
      if (size === 0 && declared > c.length && declared <= PREALLOCATE_UP_TO)
        buf = Buffer.allocUnsafe(declared);
      if (buf && size + c.length <= buf.length) buf.set(c, size);
      else if (size === 0 && !chunks) chunks = [c];
      else {
        // no length said, or more came than it said
        chunks ??= buf ? [buf.subarray(0, size)] : [];
        buf = undefined;
        chunks.push(c);
      }
      size += c.length;
    };
    const onEnd = () => {
      const bytes = buf
        ? buf.subarray(0, size)
        : !chunks
          ? Buffer.alloc(0)
          : chunks.length === 1
            ? chunks[0]!
            : Buffer.concat(chunks, size);
      done();
      resolve(bytes);
    };
    const onError = (e: unknown) => {
      done();
      reject(e);
    };
    const done = () => {
      clearTimeout(timer);
      // Nothing of this read may stay reachable from the request, which lives as long as its
      // answer: a listener left here would hold the promise, and the promise the body.
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      // an error after this is answered already, and must not throw
      req.on("error", ignore);
      buf = undefined;
      chunks = undefined;
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/** A listener that swallows a request's late errors. */
export function ignore(): void {}

/** A refused body is drained up to this much at least (or the body limit, if larger). */
export const DRAIN_AT_LEAST = 64 * 1024 * 1024;

/** A body that says its length up to this size is read into one buffer of that size. */
const PREALLOCATE_UP_TO = 8 * 1024 * 1024;

/** JSON nested deeper than this is refused: no real request comes near, and recursion over it would not end well. */
const MAX_DEPTH = 128;

/**
 * How deep a parsed JSON value nests; stops counting past `stopAt`. Recursive, but never more
 * than `stopAt` + 1 calls deep; only objects and arrays are visited.
 */
export function nestingDepth(value: unknown, stopAt: number): number {
  return value !== null && typeof value === "object" ? depthOf(value, 1, stopAt) : 0;
}

function depthOf(v: object, d: number, stopAt: number): number {
  if (d > stopAt) return d;
  // a part taken from an earlier body: its height is known
  const h = frozenHeight(v);
  if (h !== undefined) return d - 1 + h;
  let max = d;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (x !== null && typeof x === "object") {
        const m = depthOf(x, d + 1, stopAt);
        if (m > max) {
          if (m > stopAt) return m;
          max = m;
        }
      }
    }
  } else {
    for (const k in v) {
      const x: unknown = (v as Record<string, unknown>)[k];
      if (x !== null && typeof x === "object") {
        const m = depthOf(x, d + 1, stopAt);
        if (m > max) {
          if (m > stopAt) return m;
          max = m;
        }
      }
    }
  }
  return max;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Number((ms / 1000).toFixed(1))} s` : `${ms} ms`;
}

function formatBytes(n: number): string {
  const mb = n / 1024 / 1024;
  if (mb >= 1) return `${Number.isInteger(mb) ? mb : mb.toFixed(2)} MB`;
  return n >= 1024 ? `${(n / 1024).toFixed(n % 1024 ? 1 : 0)} KB` : `${n} bytes`;
}
