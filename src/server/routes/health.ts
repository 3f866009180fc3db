/**
 * `GET /health`: whether the gateway is up; with the master key (or without one configured), its
 * backends, what each answered, their queues and circuits, and the models served.
 */
import { GatewayError } from "../../ir/errors.js";
import { redact } from "../../redact.js";
import type { Router } from "../../routing/router.js";
import { keyMatches, presentedKey } from "../auth.js";
import { sendJson } from "../answer.js";
import type { Handler, RouteContext } from "./route.js";

export const health =
  ({ config, router, hints }: RouteContext): Handler =>
  (req, res) => {
    const key = config.server.masterKey;
    // without the key, only that the gateway is up: the rest names backends, addresses and the config
    if (key && !keyMatches(presentedKey(req.headers), key)) return sendJson(res, 200, { status: "ok" });
    const backends = [...router.backends.values()].map((b) => {
      const d = router.discovered.get(b.name);
      return {
        name: b.name,
        kind: b.kind,
        url: redact(b.baseUrl),
        status: d === undefined ? "unknown" : d instanceof GatewayError ? "unreachable" : "ok",
        ...(d instanceof GatewayError ? { error: redact(d.message) } : {}),
        ...resilienceHealth(router, b.name),
      };
    });
    const body: Record<string, unknown> = {
      status: backends.length ? "ok" : "no_backends",
      config: config.source,
      backends,
      models: router.models().map((m) => m.id),
    };
    if (!backends.length) {
      body.hint = hints ?? [
        "No backend is configured and none was found on the default local ports.",
        "Start Ollama (ollama serve) or llama.cpp (llama-server), or write a config file and run clawbridge serve --config FILE.",
      ];
    }
    sendJson(res, 200, body);
  };

/** A backend's queue and circuit in /health: how many run and wait, whether it is failing. */
function resilienceHealth(router: Router, name: string): Record<string, unknown> {
  const r = router.resilience(name);
  if (!r) return {};
  const { queue, breaker } = r;
  return {
    queue: {
      running: queue.active,
      limit: queue.limit || null,
      waiting: { foreground: queue.waiting("foreground"), background: queue.waiting("background") },
      max_queue: queue.maxQueue,
    },
    circuit: breaker.state,
    ...(breaker.failures ? { failures_in_a_row: breaker.failures } : {}),
    ...(breaker.lastError && breaker.state !== "closed"
      ? { last_failure: redact(breaker.lastError.message) }
      : {}),
    ...(breaker.suspect ? { suspect: true } : {}),
  };
}

/**
 * `HEAD /api/hello` (and GET): the connectivity probe Claude Code sends to its base URL, without a key, unless
 * CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC is set. Answered like /health without the key: that the gateway is up.
 */
export const hello: Handler = (req, res) => {
  if (req.method === "HEAD") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end();
    return;
  }
  sendJson(res, 200, { status: "ok" });
};
