/**
 * The upstream error tables (src/backends/<kind>/errors.ts): every real message a table lists is
 * read as the table says — a model that cannot take tools, a prompt over the window, or a refusal
 * that is neither — through the same function every backend's answer goes through, and as it was
 * read before the tables existed (the one set of wordings for every server, kept here as the
 * reference).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { meaningOf, upstreamError } from "../../src/backends/http/errors.js";
import { kinds } from "../../src/backends/registry.js";

/** How an error status and message were read before the tables: the same for every server. */
function before(status: number, message: string): string | undefined {
  if (
    status >= 400 &&
    /does not support tools|tools param requires --jinja|tool choice requires --enable-auto-tool-choice|tool(s| calling| use)? (is |are )?not supported/i.test(
      message,
    )
  )
    return "tools_unsupported";
  if (status >= 400 && status < 500 && /does not support thinking/i.test(message))
    return "thinking_unsupported";
  if ((status === 400 || status === 422) && /context|too long|exceed|n_ctx|maximum.*tokens/i.test(message))
    return "context_length";
  return undefined;
}

/** What the error tells the rest of the gateway: its kind and code. */
function verdict(err: { kind: string; code?: string }): string {
  return err.code === "tools_unsupported" || err.code === "thinking_unsupported" ? err.code : err.kind;
}

describe("upstream error tables", () => {
  const withTables = kinds().filter((k) => k.errors);

  test("every kind that talks HTTP to a server has one, and every table lists real messages", () => {
    for (const k of kinds()) assert.equal(Boolean(k.errors), k.inProcessUrl === undefined, k.kind);
    for (const k of withTables)
      for (const p of k.errors!) assert.ok(p.seen.length > 0, `${k.kind}: ${p.match} lists no message`);
  });

  for (const k of withTables) {
    test(`${k.kind}: each message is read as its table says, as an OpenAI- or Ollama-style body`, () => {
      for (const p of k.errors!)
        for (const seen of p.seen) {
          for (const body of [
            JSON.stringify({ error: seen.message }),
            JSON.stringify({ error: { message: seen.message } }),
          ]) {
            const err = upstreamError("b", seen.status, body, {}, k.errors);
            const want = p.means;
            assert.equal(verdict(err), want, `${seen.server}: ${seen.message}`);
            assert.ok(err.message.includes(seen.message), err.message);
            assert.equal(err.upstreamStatus, seen.status);
          }
          assert.equal(meaningOf(seen.status, seen.message, k.errors), p.means, seen.message);
        }
    });

    test(`${k.kind}: each message is read as before the tables`, () => {
      for (const p of k.errors!)
        for (const seen of p.seen) {
          const err = upstreamError("b", seen.status, JSON.stringify({ error: seen.message }), {}, k.errors);
          const was = before(seen.status, seen.message);
          assert.equal(
            verdict(err),
            was ?? (seen.status === 400 || seen.status === 422 ? "invalid_request" : "api_error"),
            `${seen.server}: ${seen.message}`,
          );
        }
    });
  }

  test("a message no table knows is read by its status; the wordings any server may use still count", () => {
    assert.equal(meaningOf(400, "unknown field 'x'"), undefined);
    assert.equal(verdict(upstreamError("b", 400, '{"error":"unknown field"}')), "invalid_request");
    assert.equal(verdict(upstreamError("b", 503, '{"error":"busy"}')), "overloaded");
    assert.equal(
      verdict(upstreamError("b", 400, '{"error":"tool calling is not supported"}')),
      "tools_unsupported",
    );
    assert.equal(verdict(upstreamError("b", 422, '{"detail":"input too long"}')), "context_length");
    // an overflow's wording on a status that is not a client error is the server failing, not an overflow
    assert.equal(verdict(upstreamError("b", 500, '{"error":"context window exceeded"}')), "api_error");
  });
});
