import { createConnection } from "node:net";
import { fetchJson } from "../backends/http/client.js";
import type { Served } from "../routing/served.js";
import type { Add } from "./check.js";

/** The gateway's port: free, or clawbridge already running there, or another program in the way. */
export async function portCheck(s: Served, add: Add): Promise<void> {
  const { host, port } = s.config.server;
  const h = ["0.0.0.0", "::"].includes(host) ? "127.0.0.1" : host;
  const open = await new Promise<boolean>((resolve) => {
    const sock = createConnection({ host: h, port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
  if (!open) {
    add({
      id: "gateway:port",
      status: "ok",
      title: `port ${port} free for clawbridge`,
      detail: "clawbridge is not running",
    });
    return;
  }
  const key = s.config.server.masterKey;
  const health = (await fetchJson("gateway", `${s.baseUrl}/health`, s.dispatcher, {
    timeoutMs: 2000,
    ...(key ? { headers: { "x-api-key": key } } : {}),
  }).catch(() => undefined)) as Record<string, unknown> | undefined;
  if (health && typeof health === "object" && "models" in health)
    add({ id: "gateway:port", status: "ok", title: `clawbridge running on port ${port}`, detail: s.baseUrl });
  else if (key && health && typeof health === "object" && health.status === "ok")
    // a gateway with a master key tells a caller without it only that it is up
    add({
      id: "gateway:port",
      status: "warn",
      title: `clawbridge running on port ${port}`,
      detail: `${s.baseUrl} answers /health, but not to the master key in the config`,
      fix: "restart clawbridge with this config, or correct server.master_key",
    });
  else
    add({
      id: "gateway:port",
      status: "fail",
      title: `port ${port} free for clawbridge`,
      detail: `another program listens on ${h}:${port}`,
      fix: `stop it, or set server.port (e.g. ${port + 1}) and run \`clawbridge openclaw\` again`,
    });
}
