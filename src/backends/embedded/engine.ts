/**
 * The in-process engine, node-llama-cpp (llama.cpp's own code, prebuilt binaries in npm packages),
 * loaded only when an embedded model is used: by dynamic import, so the gateway's bundle and idle
 * memory carry none of it otherwise. `getLlama()` (2–4 s: it tests the native binary in a child
 * process) runs once per process. A machine without the package, or where its binary cannot load,
 * gets a clear error on the embedded models only; the rest of the gateway works.
 */
import { GatewayError } from "../../ir/errors.js";

export type Engine = typeof import("node-llama-cpp");
export type Llama = import("node-llama-cpp").Llama;

export interface EngineSettings {
  /** CPU threads (default: the core count). */
  threads: number;
  /** "auto": a GPU when the binaries have one that works here; "off": CPU only. */
  gpu: "auto" | "off";
}

/** The package, pinned in package.json (optionalDependencies). */
const ENGINE_PACKAGE = "node-llama-cpp";
const ENGINE_VERSION = "3.21.1";

let specifier = ENGINE_PACKAGE;
let engine: Promise<Engine> | undefined;
const llamas = new Map<string, Promise<Llama>>();

/** The engine's module name in use. */
export function engineModule(): string {
  return specifier;
}

/** For tests: load the engine from another module name (a missing one, to see the message). */
export function useEngineModule(name: string = ENGINE_PACKAGE): void {
  specifier = name;
  engine = undefined;
  llamas.clear();
}

function engineUnavailable(message: string, cause?: unknown): GatewayError {
  return new GatewayError("api_error", message, {
    code: "engine_unavailable",
    // another target (a fallback) may serve; this one will not until the install is fixed
    retryable: true,
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** The engine's module, imported on first use. */
export function loadEngine(): Promise<Engine> {
  engine ??= (import(/* @vite-ignore */ specifier) as Promise<Engine>).catch((e: unknown) => {
    engine = undefined;
    const code = (e as NodeJS.ErrnoException)?.code;
    const missing = code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
    throw engineUnavailable(
      missing
        ? `the embedded engine is not installed: ${ENGINE_PACKAGE} is missing (it is an optional dependency: run \`npm install ${ENGINE_PACKAGE}@${ENGINE_VERSION}\` in clawbridge's folder, or serve the model with Ollama or llama.cpp instead)`
        : `the embedded engine (${ENGINE_PACKAGE}) could not be loaded: ${(e as Error)?.message ?? e}`,
      e,
    );
  });
  return engine;
}

/** The engine's `Llama` for these settings, made once per process. */
export function getLlama(settings: EngineSettings): Promise<Llama> {
  const key = `${settings.gpu}/${settings.threads}`;
  let llama = llamas.get(key);
  if (!llama) {
    llama = loadEngine().then(async (m) => {
      try {
        return await m.getLlama({
          gpu: settings.gpu === "off" ? false : "auto",
          maxThreads: settings.threads,
          // never compile from source or download at run time: prebuilt binaries only
          build: "never",
          progressLogs: false,
          logLevel: m.LlamaLogLevel.error,
        });
      } catch (e) {
        throw engineUnavailable(
          `the embedded engine's native binary cannot load on this machine (${process.platform}-${process.arch}): ${(e as Error)?.message ?? e}. Reinstall with \`npm install ${ENGINE_PACKAGE}@${ENGINE_VERSION}\`, set \`gpu: off\`, or serve the model with Ollama or llama.cpp instead`,
          e,
        );
      }
    });
    llama.catch(() => llamas.delete(key));
    llamas.set(key, llama);
  }
  return llama;
}
