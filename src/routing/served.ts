import { kindOf, listedAs } from "../backends/registry.js";
import { createDispatcher, type Dispatcher } from "../backends/http/client.js";
import { detectServing } from "../config/detect.js";
import { loadConfigFile } from "../config/load.js";
import type { GatewayConfig } from "../config/types.js";
import { silentLogger } from "../log.js";
import type { ModelProfile } from "../ir/contract.js";
import { Router } from "./router.js";

/** What a gateway with this config serves, found the way `serve` finds it (config, then discovery). */
export interface Served {
  config: GatewayConfig;
  router: Router;
  dispatcher: Dispatcher;
  /** Each model clients may name, with its first target's profile; `config`: an alias, else discovered. */
  models: Array<{ id: string; profile: ModelProfile; source: "config" | "discovered" }>;
  /** The URL clients reach the gateway at. */
  baseUrl: string;
  close(): Promise<void>;
}

/** `file`: the config file (`findConfigFile`'s answer); none: the servers found on the default ports. */
export async function loadServed(file: string | undefined): Promise<Served> {
  const dispatcher = createDispatcher();
  // as `serve` finds them: the servers on the default ports, else the GGUF models on disk
  const config = file ? loadConfigFile(file) : await detectServing(dispatcher);
  const router = new Router(config, dispatcher, silentLogger);
  await router.discover();
  const models = router
    .models()
    .filter((m) => m.id !== "*")
    .map((m) => ({ id: m.id, profile: router.resolve(m.id)[0]!.profile, source: m.source }));
  const host = ["0.0.0.0", "::", ""].includes(config.server.host) ? "127.0.0.1" : config.server.host;
  const baseUrl = `http://${host.includes(":") ? `[${host}]` : host}:${config.server.port}`;
  return { config, router, dispatcher, models, baseUrl, close: () => dispatcher.close() };
}

/** A configured model its backend does not list (where the backend's kind lists every model it has). */
export interface MissingModel {
  id: string;
  backend: string;
  model: string;
  /** What the backend lists, the first few. */
  has: string[];
  fix: string;
}

/** The configured models their backends do not have, as the discovery just made found them. */
export function missingModels(router: Router): MissingModel[] {
  const out: MissingModel[] = [];
  for (const m of router.models()) {
    if (m.id === "*") continue;
    for (const { profile: p } of router.resolve(m.id)) {
      const listed = router.discovered.get(p.backend.name);
      if (!Array.isArray(listed)) continue;
      const hints = kindOf(p.backend.kind)?.doctor;
      if (hints?.listsEveryModel === false) continue;
      const names = new Set(listed.map((d) => d.name));
      if (listedAs(p.backend.kind, p.model).some((n) => names.has(n))) continue;
      out.push({
        id: m.id,
        backend: p.backend.name,
        model: p.model,
        has: listed.map((d) => d.name).slice(0, 10),
        fix:
          hints?.missingModel?.(p.model) ?? `load ${p.model} in the server, or correct model: in the config`,
      });
    }
  }
  return out;
}
