/** A failed request in the doctor's words (src/doctor/explain.ts): each outcome's detail and fix, with the kind's hints. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DoctorHints } from "../../src/backends/kind.js";
import { explainFailure } from "../../src/doctor/explain.js";

const hints: DoctorHints = {
  start: (s) => `serve-models --port ${(s as { port?: number }).port ?? 1}`,
  missingModel: (m) => `fetch-model ${m}`,
};
const base = { status: 503, model: "m", backend: "b", target: "t" };

test("a success has no explanation", () => {
  assert.equal(explainFailure({ ...base, status: 200, outcome: "ok" }), undefined);
});

test("a refused connection: start the server, with the kind's own start command", () => {
  const e = explainFailure(
    { ...base, outcome: "unavailable", cause: "connect ECONNREFUSED 127.0.0.1:9" },
    hints,
    { port: 9 },
  )!;
  assert.match(e.detail, /ECONNREFUSED/);
  assert.match(e.fix, /start the server \(serve-models --port 9\)/);
});

test("a model the backend lacks: the kind's command to get it", () => {
  const e = explainFailure(
    { ...base, status: 404, outcome: "not_found", cause: "model 't' not found" },
    hints,
  )!;
  assert.match(e.detail, /no backend serves the model "m"/);
  assert.match(e.fix, /`fetch-model t`/);
  // without hints: the general advice
  assert.match(
    explainFailure({ ...base, status: 404, outcome: "not_found", cause: "model x" })!.fix,
    /clawbridge models/,
  );
});

test("every outcome word gets a detail and a fix", () => {
  for (const outcome of [
    "client_gone",
    "incomplete",
    "authentication",
    "permission",
    "context_length",
    "request_too_large",
    "request_timeout",
    "invalid_request",
    "rate_limit",
    "overloaded",
    "timeout",
    "api_error",
  ]) {
    const e = explainFailure({ ...base, outcome }, hints)!;
    assert.ok(e.detail.length > 10 && e.fix.length > 10, outcome);
  }
  assert.match(
    explainFailure({ ...base, outcome: "context_length", cause: "prompt is 9000 tokens" })!.detail,
    /9000/,
  );
});
