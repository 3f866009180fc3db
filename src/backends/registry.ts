/**
 * The backend kinds this gateway knows. A kind is its folder under `backends/` (the wire, the
 * backend object, its `kind.ts`) and one line below; everything else — config validation,
 * detection on default ports, the LiteLLM import, routing's defaults, `init`, `doctor`,
 * `status` — asks here.
 */
import type { Backend } from "../ir/contract.js";
import { camelKeys, snakeKeys } from "../ir/keys.js";
import { anthropicKind } from "./anthropic/kind.js";
import { embeddedKind } from "./embedded/kind.js";
import type { Dispatcher } from "./http/client.js";
import type { BackendEntry, BackendKind, LiteLLMProvider, LocalServer, Settings } from "./kind.js";
import { ollamaKind } from "./ollama/kind.js";
import { openaiCompatKind } from "./openai-compat/kind.js";

const registry = new Map<string, BackendKind>();

/** Adds a kind (a test's own, or a plug-in); its name must be new. */
export function registerKind<S extends object>(kind: BackendKind<S>): void {
  if (registry.has(kind.kind)) throw new Error(`backend kind '${kind.kind}' is registered already`);
  registry.set(kind.kind, kind as unknown as BackendKind);
}

/** Takes a kind out again (tests). */
export function unregisterKind(name: string): void {
  registry.delete(name);
}

// The kinds built in, in the order they are tried and listed: a new kind is one more here.
const BUILT_IN: BackendKind<any>[] = [ollamaKind, openaiCompatKind, anthropicKind, embeddedKind];
for (const kind of BUILT_IN) registerKind(kind);

/** Every kind, in the order registered. */
export function kinds(): BackendKind[] {
  return [...registry.values()];
}

export function kindOf(name: string): BackendKind | undefined {
  return registry.get(name);
}

function known(name: string): BackendKind {
  const kind = registry.get(name);
  if (!kind) throw new Error(`unknown backend kind '${name}' (known: ${[...registry.keys()].join(", ")})`);
  return kind;
}

/** A kind's settings from its fields in the config file's form. */
export function readSettings(kind: string, fields: Record<string, unknown> = {}): Settings {
  const k = known(kind);
  return k.read ? k.read(fields) : camelKeys(fields);
}

/** A kind's settings in the config file's form. */
export function writeSettings(kind: string, settings: Settings): Record<string, unknown> {
  const k = known(kind);
  return k.write ? k.write(settings) : snakeKeys(settings);
}

/** The backend object for a configured backend. */
export function createBackend(b: BackendEntry, dispatcher: Dispatcher): Backend {
  return known(b.kind).create({
    name: b.name,
    baseUrl: b.url,
    dispatcher,
    settings: b.settings ?? {},
    ...(b.apiKey ? { apiKey: b.apiKey } : {}),
    ...(b.headers ? { headers: b.headers } : {}),
  });
}

/** The names a backend of this kind may list a model under, the one configured first. */
export function listedAs(kind: string, model: string): string[] {
  return kindOf(kind)?.listedAs?.(model) ?? [model];
}

/** Where local servers listen by default, every kind's, in registry order. */
export function localServers(): LocalServer[] {
  return kinds().flatMap((k) => (k.local ?? []).map((l) => ({ ...l, kind: k.kind })));
}

/** The LiteLLM provider prefixes served, and the kind each becomes. */
export function litellmProviders(): Map<string, LiteLLMProvider & { kind: string }> {
  const out = new Map<string, LiteLLMProvider & { kind: string }>();
  for (const k of kinds())
    for (const [prefix, p] of Object.entries(k.litellm ?? {})) out.set(prefix, { ...p, kind: k.kind });
  return out;
}

/** Every kind's name and the other names its servers go by (for the check that no code outside backends/ names one). */
export function kindNames(): string[] {
  return kinds().flatMap((k) => [k.kind, ...(k.names ?? [])]);
}
