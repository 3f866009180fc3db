/**
 * The gateway's side of the engine's worker thread: one worker per process, started on the first
 * embedded request (the engine and `getLlama()` load there once), requests and streamed answers by
 * id. A worker that dies fails what it was doing with a clear error; the next request starts
 * another.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Log } from "../../ir/contract.js";
import { GatewayError } from "../../ir/errors.js";
import type { Event } from "../../ir/types.js";
import type { FromWorker, GenerateParams, Loaded, ModelSpec, ToWorker, WorkerError } from "./protocol.js";
import type { Prompt } from "./prompt.js";

interface Pending {
  resolve(v: unknown): void;
  /** With the worker's error ({message, code}), or a GatewayError when the worker itself failed. */
  reject(e: WorkerError | GatewayError): void;
  /** Streamed events, for a generation. */
  onEvents?(events: Event[]): void;
  log?: Log;
}

/** The worker's entry: next to the bundle (dist/cli/embedded-worker.js), or the source under tsx. */
function workerEntry(): Worker {
  const bundled = new URL("./embedded-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(bundled))) return new Worker(bundled);
  const source = new URL("./worker.ts", import.meta.url).href;
  // from the sources (tests, tsx): the worker registers the TypeScript loader first
  const code = `import { register } from ${JSON.stringify(import.meta.resolve("tsx/esm/api"))}; register(); await import(${JSON.stringify(source)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
}

export function workerError(e: WorkerError | GatewayError, backend: string): GatewayError {
  if (e instanceof GatewayError) return e;
  const code = e.code ?? "engine_failed";
  const message = code === "engine_unavailable" ? e.message : `backend ${backend}: ${e.message}`;
  return new GatewayError("api_error", message, { code, retryable: true });
}

class EngineClient {
  private worker: Worker | undefined;
  private next = 1;
  private readonly pending = new Map<number, Pending>();

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = workerEntry();
    // an idle engine does not keep the process alive
    w.unref();
    w.on("message", (m: FromWorker) => this.onMessage(m));
    const fail = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const err = new GatewayError("api_error", `the embedded engine stopped: ${why}`, {
        code: "engine_failed",
        retryable: true,
      });
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on("error", (e) => fail(e.message));
    w.on("exit", (code) => fail(`its thread exited (${code})`));
    this.worker = w;
    return w;
  }

  private onMessage(m: FromWorker): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if ("events" in m) p.onEvents?.(m.events);
    else if ("log" in m) p.log?.[m.log.level](m.log.fields, m.log.msg);
    else {
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker?.unref();
      if (m.ok) p.resolve(m.result);
      else p.reject(m.error);
    }
  }

  private call(msg: ToWorker, p: Pending): void {
    const w = this.start();
    if (this.pending.size === 0) w.ref();
    this.pending.set(msg.id, p);
    w.postMessage(msg);
  }

  request<T>(
    msg:
      | { op: "load"; spec: ModelSpec }
      | { op: "count"; spec: ModelSpec; prompt: Prompt }
      | { op: "unload"; spec: ModelSpec },
  ): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) =>
      this.call({ ...msg, id } as ToWorker, { resolve: resolve as (v: unknown) => void, reject }),
    );
  }

  load(spec: ModelSpec): Promise<Loaded> {
    return this.request<Loaded>({ op: "load", spec });
  }

  count(spec: ModelSpec, prompt: Prompt): Promise<number> {
    return this.request<number>({ op: "count", spec, prompt });
  }

  unload(spec: ModelSpec): Promise<void> {
    if (!this.worker) return Promise.resolve();
    return this.request<void>({ op: "unload", spec });
  }

  /**
   * Starts a generation: its events go to `onEvents` as they come; the promise settles when it
   * has ended (after its last events). `abort()` stops it.
   */
  generate(
    spec: ModelSpec,
    prompt: Prompt,
    params: GenerateParams,
    onEvents: (events: Event[]) => void,
    log: Log,
  ): { done: Promise<void>; abort(): void } {
    const id = this.next++;
    const done = new Promise<void>((resolve, reject) =>
      this.call(
        { op: "generate", id, spec, prompt, params },
        { resolve: () => resolve(), reject, onEvents, log },
      ),
    );
    return {
      done,
      abort: () => {
        if (this.pending.has(id)) this.worker?.postMessage({ op: "abort", id } satisfies ToWorker);
      },
    };
  }
}

/** The process's one engine client. */
export const engineClient = new EngineClient();
