/** `GET /metrics`: the counters, and the backends' queues and circuits as they are when asked. */
import { LANES } from "../../routing/queue.js";
import type { Router } from "../../routing/router.js";
import { sendJson } from "../answer.js";
import { renderGauge } from "../metrics.js";
import type { Handler, RouteContext } from "./route.js";

export const metrics = ({ router, metrics }: RouteContext): Handler => {
  metrics.gauges.push(() => resilienceGauges(router));
  return (_req, res) => sendJson(res, 200, metrics.render(), metrics.contentType);
};

/** Queue depths, places in use and circuit states, read when /metrics is asked. */
function resilienceGauges(router: Router): string {
  const running: Array<[Record<string, string>, number]> = [];
  const limits: Array<[Record<string, string>, number]> = [];
  const waiting: Array<[Record<string, string>, number]> = [];
  const open: Array<[Record<string, string>, number]> = [];
  for (const name of router.backends.keys()) {
    const r = router.resilience(name);
    if (!r) continue;
    running.push([{ backend: name }, r.queue.active]);
    limits.push([{ backend: name }, r.queue.limit]);
    for (const lane of LANES) waiting.push([{ backend: name, lane }, r.queue.waiting(lane)]);
    const state = r.breaker.state;
    open.push([{ backend: name }, state === "open" ? 1 : state === "half_open" ? 0.5 : 0]);
  }
  return (
    renderGauge("clawbridge_backend_running", "Requests running at a backend now", running) +
    renderGauge("clawbridge_backend_slots", "Requests a backend serves at once (0: no limit)", limits) +
    renderGauge("clawbridge_queue_depth", "Requests waiting for a place at a backend, by lane", waiting) +
    renderGauge("clawbridge_circuit_open", "A backend's circuit: 0 closed, 0.5 half-open, 1 open", open)
  );
}
