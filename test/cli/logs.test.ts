import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { formatLogLine } from "../../src/cli/logs.js";

const line = (msg: string, extra: Record<string, unknown> = {}) =>
  `${JSON.stringify({ level: 40, time: Date.UTC(2026, 10, 21, 12, 0, 0), msg, ...extra })}\n`;

describe("clawbridge logs", () => {
  test("a JSON log line reads as time, level, message and fields", () => {
    assert.equal(
      formatLogLine(line("target failed", { from: "a@b", reason: "connection refused" }).trim()),
      '2026-11-21 12:00:00.000 WARN  target failed  from=a@b reason="connection refused"',
    );
    assert.equal(formatLogLine("not json"), "not json");
  });

  test("shows the last lines, then follows what is appended (-f) until stopped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-logs-"));
    const file = join(dir, "gw.log");
    writeFileSync(file, line("one") + line("two") + line("three"));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "logs", "--file", file, "-n", "2", "-f"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, re);
    };
    try {
      await waitFor(/three/);
      assert.doesNotMatch(out, /one/, "only the last two lines");
      assert.match(out, /WARN {2}two\n.*WARN {2}three\n/);
      appendFileSync(file, line("four"));
      await waitFor(/four/);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.on("close", r));
    }
  });
});
