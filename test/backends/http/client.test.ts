/**
 * The upstream request's head (src/backends/http/client.ts): Host as the URL names it, the URL's credentials as
 * Basic auth, the configured headers, one content-type.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { startOpenAICompatFake } from "../../fakes/openai-compat.js";
import { startGateway } from "../../helpers.js";

describe("the upstream request's head", () => {
  test("Host as the URL names it, the URL's credentials as Basic auth, the configured headers; theirs win", async () => {
    const fake = await startOpenAICompatFake({ models: ["qwen"] });
    const port = new URL(fake.url).port;
    const gw = await startGateway(`
backends:
  plain: { kind: openai-compat, url: "${fake.url}/v1", discover: false }
  creds:
    kind: openai-compat
    url: "http://us%40er:p%3Ass@localhost:${port}/v1"
    headers: { x-team: blue }
    discover: false
  own:
    kind: openai-compat
    url: "http://them:secret@127.0.0.1:${port}/v1"
    headers: { Authorization: "Bearer mine", Host: "models.internal", Content-Type: "application/json; charset=utf-8" }
    discover: false
models:
  a: { backend: plain, model: qwen }
  b: { backend: creds, model: qwen }
  c: { backend: own, model: qwen }
`);
    try {
      const heads: Array<Record<string, string | string[] | undefined>> = [];
      // "a" twice: a head worked out once is not changed by the request that used it
      for (const model of ["a", "b", "c", "a"]) {
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
        });
        assert.equal(res.status, 200, await res.clone().text());
        heads.push(fake.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.headers);
      }
      const [plain, creds, own, again] = heads as [
        (typeof heads)[0],
        (typeof heads)[0],
        (typeof heads)[0],
        (typeof heads)[0],
      ];
      assert.equal(plain.host, `127.0.0.1:${port}`);
      assert.equal(plain.authorization, undefined);
      assert.equal(plain["content-type"], "application/json");
      assert.equal(plain.accept, "text/event-stream");
      assert.deepEqual(again, plain);
      assert.match(String(plain["content-length"]), /^[1-9]\d*$/);
      assert.equal(plain["transfer-encoding"], undefined);
      assert.equal(creds.host, `localhost:${port}`);
      assert.equal(creds.authorization, `Basic ${Buffer.from("us@er:p:ss").toString("base64")}`);
      assert.equal(creds["x-team"], "blue");
      assert.equal(own.host, "models.internal");
      assert.equal(own.authorization, "Bearer mine");
      assert.equal(own["content-type"], "application/json; charset=utf-8");
      const raw = fake.requests.filter((r) => r.path === "/v1/chat/completions").map((r) => r.rawHeaders);
      assert.deepEqual(
        raw.map((h) => h?.filter((_, i) => i % 2 === 0).filter((k) => /^content-type$/i.test(k)).length),
        [1, 1, 1, 1],
        "one content-type each",
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
