// The request path's abort signal (src/ir/signal.ts): it stands in for AbortController and its
// signal, so it must behave as they do wherever the path relies on them.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Abort, type Signal } from "../../src/ir/signal.js";

describe("Abort", () => {
  test("listeners run once each, in the order added; one added twice runs once; a removed one not at all", () => {
    for (const make of [() => new Abort(), () => new AbortController()]) {
      const a = make();
      const signal: Signal = a instanceof Abort ? a : a.signal;
      const calls: string[] = [];
      const first = () => calls.push("first");
      const second = () => calls.push("second");
      const removed = () => calls.push("removed");
      signal.addEventListener("abort", first);
      signal.addEventListener("abort", second);
      signal.addEventListener("abort", first);
      signal.addEventListener("abort", removed);
      signal.removeEventListener("abort", removed);
      assert.equal(signal.aborted, false);
      a.abort();
      a.abort();
      assert.deepEqual(calls, ["first", "second"], a.constructor.name);
      // added after the abort: never called, as EventTarget does it
      signal.addEventListener("abort", () => calls.push("late"));
      assert.deepEqual(calls, ["first", "second"], a.constructor.name);
    }
  });

  test("the reason is the one given, else an AbortError as AbortController makes it", () => {
    const given = new Error("watchdog");
    const a = new Abort();
    a.abort(given);
    assert.equal(a.aborted, true);
    assert.equal(a.reason, given);
    a.abort(new Error("later"));
    assert.equal(a.reason, given, "the first abort's reason stays");

    const b = new Abort();
    b.abort();
    const c = new AbortController();
    c.abort();
    assert.ok(b.reason instanceof DOMException);
    assert.equal((b.reason as DOMException).name, (c.signal.reason as DOMException).name);
    assert.equal((b.reason as DOMException).message, (c.signal.reason as DOMException).message);
  });

  test("a listener that throws does not keep the others from running; its error comes out after them", () => {
    const a = new Abort();
    const ran: number[] = [];
    a.addEventListener("abort", () => ran.push(1));
    a.addEventListener("abort", () => {
      throw new Error("listener failed");
    });
    a.addEventListener("abort", () => ran.push(3));
    assert.throws(() => a.abort(), /listener failed/);
    assert.deepEqual(ran, [1, 3]);
    assert.equal(a.aborted, true);
  });
});
