import { createDispatcher, type Dispatcher } from "../backends/http/client.js";
import { detectedConfig, detectLocalServers } from "../config/detect.js";
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
  /** Each model clients may name, with its first target's profile. */
  models: Array<{ id: string; profile: ModelProfile }>;
  /** The URL clients reach the gateway at. */
  baseUrl: string;
  close(): Promise<void>;
}

/** `file`: the config file (`findConfigFile`'s answer); none: the servers found on the default ports. */
export async function loadServed(file: string | undefined): Promise<Served> {
  const dispatcher = createDispatcher();
  const config = file ? loadConfigFile(file) : detectedConfig(await detectLocalServers(dispatcher));
  const router = new Router(config, dispatcher, silentLogger);
  await router.discover();
  const models = router
    .models()
    .filter((m) => m.id !== "*")
    .map((m) => ({ id: m.id, profile: router.resolve(m.id)[0]!.profile }));
  const host = ["0.0.0.0", "::", ""].includes(config.server.host) ? "127.0.0.1" : config.server.host;
  const baseUrl = `http://${host.includes(":") ? `[${host}]` : host}:${config.server.port}`;
  return { config, router, dispatcher, models, baseUrl, close: () => dispatcher.close() };
}
