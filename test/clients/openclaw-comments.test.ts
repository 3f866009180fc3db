import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { hasComments } from "../../src/clients/json-file.js";
import { writeOpenClawConfig } from "../../src/clients/openclaw.js";

const OPTIONS = {
  baseUrl: "http://127.0.0.1:4000",
  apiKey: "sk-local",
  models: [{ id: "claude-sonnet-4-5", contextWindow: 32768, maxTokens: 4096 }],
};

describe("openclaw: the user's JSON5 comments", () => {
  test("a file with comments: written as JSON, with a warning that names the backup holding them", () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-openclaw-comments-"));
    const path = join(dir, "openclaw.json");
    const original = `{
  // the gateway OpenClaw runs
  gateway: { port: 18789 },
  /* my agents */
  agents: { defaults: { workspace: "~/work" } },
}
`;
    writeFileSync(path, original);
    const plan = writeOpenClawConfig(OPTIONS, { path });
    assert.equal(plan.written, true);
    assert.equal(
      plan.warning,
      `the comments in ${path} are not kept (it is written as plain JSON); the file with its comments is ${plan.backup}`,
    );
    assert.equal(readFileSync(plan.backup!, "utf8"), original);
    assert.equal(JSON.parse(readFileSync(path, "utf8")).gateway.port, 18789);
  });

  test("no comments (a // inside a URL is no comment): no warning", () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-openclaw-comments-"));
    const path = join(dir, "openclaw.json");
    writeFileSync(
      path,
      `{ "models": { "providers": { "x": { "baseUrl": "http://box:1/*v1", "models": [] } } } }\n`,
    );
    const plan = writeOpenClawConfig(OPTIONS, { path });
    assert.equal(plan.written, true);
    assert.equal(plan.warning, undefined);
  });

  test("comments are told from strings", () => {
    assert.equal(hasComments(`{ a: "http://x" }`), false);
    assert.equal(hasComments(`{ a: 'it\\'s // not' }`), false);
    assert.equal(hasComments(`{ a: 1 } // trailing`), true);
    assert.equal(hasComments(`{ /* x */ a: 1 }`), true);
  });
});
