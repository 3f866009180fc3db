/**
 * `GET /health`: the gateway's word (ok, degraded, down; 503 when no backend can serve); with the
 * master key (or without one configured), each backend's word, since when and why, its queue and
 * circuit, and the models served.
 */
import { redact } from "../../redact.js";
import type { Router } from "../../routing/router.js";
import { keyMatches, presentedKey } from "../auth.js";
import { sendJson } from "../answer.js";
import type { Handler, RouteContext } from "./route.js";

export const health =
  ({ config, router, hints }: RouteContext): Handler =>
  (req, res) => {
    const key = config.server.masterKey;
    const backends = [...router.backends.values()].map((b) => {
      const h = router.health(b.name);
      const served = router.models().filter((m) => m.backend === b.name).length;
      return {
        name: b.name,
        kind: b.kind,
        url: redact(b.baseUrl),
        state: h?.state ?? "up",
        since: (h?.since ?? new Date()).toISOString(),
        ...(h?.reason ? { reason: redact(h.reason) } : {}),
        ...(h?.models !== undefined ? { models_listed: h.models } : {}),
        models_served: served,
        ...(h?.gone ? { models_gone: h.gone } : {}),
        ...resilienceHealth(router, b.name),
      };
    });
    const status = overall(backends.map((b) => b.state));
    // a supervisor's answer: 503 when no backend can serve a request
    const code = status === "down" ? 503 : 200;
    // without the key, only the overall word: the rest names backends, addresses and the config
    if (key && !keyMatches(presentedKey(req.headers), key)) return sendJson(res, code, { status });
    const body: Record<string, unknown> = {
      status,
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
    sendJson(res, code, body);
  };

/** The gateway's word: ok when every backend is up, down when none can serve, degraded between. */
function overall(states: string[]): "ok" | "degraded" | "down" {
  if (!states.some((s) => s !== "down")) return "down";
  return states.every((s) => s === "up") ? "ok" : "degraded";
}

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
