import assert from "node:assert/strict";
import { test } from "node:test";
import { claudeFamily, claudeTierAlias } from "../../../src/surfaces/anthropic/claude-names.js";

test("a Claude name's family, old and new naming; other names have none", () => {
  assert.equal(claudeFamily("claude-sonnet-4-5-20250929"), "sonnet");
  assert.equal(claudeFamily("claude-3-5-haiku-20241022"), "haiku");
  assert.equal(claudeFamily("claude-opus-4-1"), "opus");
  assert.equal(claudeFamily("Claude-Opus-4"), "opus");
  for (const n of ["gpt-4o", "qwen2.5:7b", "my-sonnet-model", "claude-instant-1", "claudesonnet"])
    assert.equal(claudeFamily(n), undefined, n);
});

test("the tier alias a name means: same family, most parts in common, a whole alias first", () => {
  const aliases = [
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
    "claude-sonnet-4",
    "claude-opus-4-5",
    "*",
    "local",
  ];
  assert.equal(claudeTierAlias("claude-sonnet-4-5-20250929", aliases), "claude-sonnet-4-5");
  assert.equal(claudeTierAlias("claude-sonnet-4-20250514", aliases), "claude-sonnet-4");
  assert.equal(claudeTierAlias("claude-3-7-sonnet-latest", aliases), "claude-sonnet-4-5");
  assert.equal(claudeTierAlias("claude-3-haiku-20240307", aliases), "claude-haiku-4-5");
  assert.equal(claudeTierAlias("claude-opus-5", aliases), "claude-opus-4-5");
  assert.equal(claudeTierAlias("gpt-4o", aliases), undefined);
  // no alias of that family: nothing (the caller falls back to '*' or a 404)
  assert.equal(claudeTierAlias("claude-opus-4", ["claude-sonnet-4-5", "local"]), undefined);
});
