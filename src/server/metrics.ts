import { Counter, Histogram, Registry } from "prom-client";

/** The gateway's counters, exposed at /metrics in Prometheus' text format. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "clawbridge_requests_total",
    help: "Requests answered, by surface, model and outcome",
    labelNames: ["surface", "model", "outcome"] as const,
    registers: [this.registry],
  });
  readonly reshaped = new Counter({
    name: "clawbridge_reshaped_total",
    help: "Things a stage dropped or changed in a request for its backend, by what",
    labelNames: ["what"] as const,
    registers: [this.registry],
  });
  readonly switched = new Counter({
    name: "clawbridge_target_switches_total",
    help: "Times routing moved from a failed target to the next (replica or fallback)",
    labelNames: ["from_backend", "kind"] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "clawbridge_request_duration_seconds",
    help: "Time from request to the end of the answer",
    labelNames: ["surface"] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
}
