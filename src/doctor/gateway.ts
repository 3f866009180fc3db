import { createConnection } from "node:net";
import { fetchJson } from "../backends/http.js";
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
  const health = (await fetchJson("gateway", `${s.baseUrl}/health`, s.dispatcher, { timeoutMs: 2000 }).catch(
    () => undefined,
  )) as Record<string, unknown> | undefined;
  if (health && typeof health === "object" && "models" in health)
    add({ id: "gateway:port", status: "ok", title: `clawbridge running on port ${port}`, detail: s.baseUrl });
  else
    add({
      id: "gateway:port",
      status: "fail",
      title: `port ${port} free for clawbridge`,
      detail: `another program listens on ${h}:${port}`,
      fix: `stop it, or set server.port (e.g. ${port + 1}) and run \`clawbridge openclaw\` again`,
    });
}
