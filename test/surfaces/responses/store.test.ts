import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ResponseStore } from "../../../src/surfaces/responses/store.js";

const msg = (id: string, text: string) => ({ id, type: "message", role: "assistant", content: text });

describe("responses store", () => {
  test("keeps the conversation and the output items by id", () => {
    const s = new ResponseStore({ count: 10, bytes: 1 << 20 });
    s.put("resp_1", [{ role: "user", content: "hi" }], [msg("msg_1", "hello")]);
    assert.deepEqual(
      s.get("resp_1")?.items.map((i) => i.content),
      ["hi", "hello"],
    );
    assert.equal(s.item("msg_1")?.content, "hello");
    assert.equal(s.get("resp_2"), undefined);
  });

  test("bounded by count: the oldest go first, with their items", () => {
    const s = new ResponseStore({ count: 2, bytes: 1 << 20 });
    for (const n of [1, 2, 3]) s.put(`resp_${n}`, [], [msg(`msg_${n}`, "x")]);
    assert.equal(s.size, 2);
    assert.equal(s.get("resp_1"), undefined);
    assert.equal(s.item("msg_1"), undefined);
    assert.ok(s.get("resp_3") && s.item("msg_3"));
  });

  test("bounded by bytes; one response larger than the store is not kept", () => {
    const big = "y".repeat(400);
    const s = new ResponseStore({ count: 100, bytes: 1000 });
    for (const n of [1, 2, 3]) s.put(`resp_${n}`, [], [msg(`msg_${n}`, big)]);
    assert.ok(s.bytes <= 1000, `${s.bytes} bytes kept`);
    assert.equal(s.get("resp_1"), undefined);
    assert.ok(s.get("resp_3"));
    s.put("resp_huge", [], [msg("msg_huge", "z".repeat(2000))]);
    assert.equal(s.get("resp_huge"), undefined);
    assert.ok(s.get("resp_3"), "nothing pushed out by a response that is not kept");
  });
});
