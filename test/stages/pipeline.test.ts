import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Request } from "../../src/ir/types.js";
import { runStages } from "../../src/stages/pipeline.js";
import type { RequestStage } from "../../src/stages/types.js";
import { emptyRequest, stageContext } from "../helpers.js";

const tag =
  (t: string, wait = false): RequestStage =>
  (req) => {
    const out: Request = { ...req, system: req.system + t };
    return wait ? Promise.resolve(out) : out;
  };

describe("the stage runner", () => {
  const req = emptyRequest("m");
  const ctx = stageContext({ alias: "m", model: "m", dropParams: true } as never, req);

  test("stages that answer at once are not awaited: the request comes back as it is, not a promise", () => {
    const out = runStages([tag("a"), tag("b"), tag("c")], req, ctx);
    assert.ok(!(out instanceof Promise));
    assert.equal((out as Request).system, "abc");
  });

  test("a stage that waits: the rest run after it, in order", async () => {
    const out = runStages([tag("a"), tag("b", true), tag("c"), tag("d", true)], req, ctx);
    assert.ok(out instanceof Promise);
    assert.equal((await out).system, "abcd");
  });
});
