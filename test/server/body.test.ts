/**
 * Reading the request body (src/server/body.ts): whole however it arrives (one chunk, many, with or without
 * content-length), within its limit; its nesting measured.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { describe, test } from "node:test";
import { nestingDepth } from "../../src/server/body.js";
import { startOpenAICompatFake } from "../fakes/openai-compat.js";
import { oneBackend, startGateway } from "../helpers.js";

test("nestingDepth counts objects and arrays, and stops past its limit", () => {
  assert.equal(nestingDepth("x", 10), 0);
  assert.equal(nestingDepth({}, 10), 1);
  assert.equal(nestingDepth({ a: [1, { b: "s" }], c: [] }, 10), 3);
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  assert.equal(nestingDepth(deep, 128), 129);
});

describe("the request body is read whole however it comes", () => {
  test("one chunk, many chunks, no content-length, more than it said; the limit holds", async () => {
    const fake = await startOpenAICompatFake({ models: ["qwen"] });
    const gw = await startGateway(
      oneBackend("openai-compat", fake.url, "qwen", "\nserver: { body_limit_mb: 1 }"),
    );
    try {
      const body = Buffer.from(
        JSON.stringify({
          model: "nope",
          max_tokens: 5,
          messages: [{ role: "user", content: "é".repeat(70_000) }],
        }),
      );
      const send = (chunks: Buffer[], headers: Record<string, string | number>) =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = http.request(
            `${gw.url}/v1/messages`,
            { method: "POST", headers: { "content-type": "application/json", ...headers } },
            (res) => {
              let text = "";
              res.setEncoding("utf8");
              res.on("data", (c) => {
                text += c;
              });
              res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
            },
          );
          req.on("error", reject);
          (async () => {
            for (const c of chunks) {
              req.write(c);
              await new Promise((r) => setTimeout(r, 2));
            }
            req.end();
          })();
        });
      const pieces = (n: number) =>
        Array.from({ length: n }, (_, i) =>
          body.subarray(Math.floor((i * body.length) / n), Math.floor(((i + 1) * body.length) / n)),
        );
      for (const [chunks, headers] of [
        [[body], { "content-length": body.length }],
        [pieces(7), { "content-length": body.length }],
        [pieces(5), { "transfer-encoding": "chunked" }],
      ] as const) {
        const res = await send([...chunks], headers);
        // the body was read and decoded whole: the answer is about the model, not about the JSON
        assert.equal(res.status, 404, res.text);
        assert.match(res.text, /nope/);
      }
      const big = Buffer.from(
        JSON.stringify({
          model: "x",
          max_tokens: 5,
          messages: [{ role: "user", content: "a".repeat(1_100_000) }],
        }),
      );
      const tooBig = await send([big], { "transfer-encoding": "chunked" }).catch((e: Error) => ({
        status: 0,
        text: e.message,
      }));
      assert.ok(tooBig.status === 413 || tooBig.status === 0, `${tooBig.status}`);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
