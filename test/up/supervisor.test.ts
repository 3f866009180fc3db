import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { silentLogger } from "../../src/log.js";
import { Supervisor } from "../../src/up/supervisor.js";

const dir = mkdtempSync(join(tmpdir(), "cb-supervisor-"));
const node = JSON.stringify(process.execPath);
/** A command that counts its starts in a file, then runs `script`. */
const counted = (file: string, script: string) =>
  `${node} -e ${JSON.stringify(`require("fs").appendFileSync(${JSON.stringify(file)}, "x"); ${script}`)}`;
const starts = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").length : 0);

function supervisor(command: string, healthy: () => Promise<boolean>, extra: object = {}) {
  const said: string[] = [];
  const s = new Supervisor({
    name: "llm",
    spec: { command, readyTimeoutMs: 20_000, warmup: [] },
    healthy,
    say: (l) => said.push(l),
    log: silentLogger,
    checkIntervalMs: 60_000,
    ...extra,
  });
  return { s, said };
}

describe("up's supervisor: what the user reads", () => {
  test("a server that will not start: its own last lines, readable, and no restart loop", async () => {
    const file = join(dir, "fail.count");
    const { s, said } = supervisor(
      counted(
        file,
        `console.log("loading model"); console.error("error: failed to open /models/qwen.gguf: No such file or directory"); process.exit(1)`,
      ),
      async () => false,
    );
    await assert.rejects(s.ensure(), (e: Error) => {
      assert.equal(
        e.message,
        "llm: the server exited with code 1 before it answered; its last lines:\n" +
          "    loading model\n" +
          "    error: failed to open /models/qwen.gguf: No such file or directory",
      );
      return true;
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(starts(file), 1, "started once, not restarted");
    assert.ok(!said.some((l) => /restarting/.test(l)), said.join("\n"));
    await s.stop();
  });

  test("a restarted server is warmed up again once it answers (onRestarted), not the first start", async () => {
    const file = join(dir, "rewarm.count");
    let sup: Supervisor | undefined;
    const warmed: number[] = [];
    const { s } = supervisor(
      // the first run exits soon, the second stays up
      counted(
        file,
        `if (require("fs").readFileSync(${JSON.stringify(file)}, "utf8").length < 2) setTimeout(() => process.exit(3), 300); else setInterval(() => {}, 1000)`,
      ),
      async () => sup?.child !== undefined,
      { backoffMs: 50, onRestarted: () => void warmed.push(sup!.restarts) },
    );
    sup = s;
    assert.equal(await s.ensure(), "started");
    assert.deepEqual(warmed, [], "the first start is warmed by up itself");
    const end = Date.now() + 10_000;
    while (!warmed.length && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(warmed, [1], "called once, after the restart answered");
    await s.stop();
  });

  test("a stop during the restart backoff ends it at once", async () => {
    const file = join(dir, "crash.count");
    let sup: Supervisor | undefined;
    const { s, said } = supervisor(
      counted(file, "setTimeout(() => process.exit(3), 300)"),
      async () => sup?.child !== undefined,
      { backoffMs: 30_000 },
    );
    sup = s;
    assert.equal(await s.ensure(), "started");
    // it exits; the restart waits 30 s
    const end = Date.now() + 10_000;
    while (!said.some((l) => /restarting in 30 s/.test(l)) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      said.some((l) => /llm: the server exited with code 3; restarting in 30 s/.test(l)),
      said.join("\n"),
    );
    const t0 = Date.now();
    await s.stop();
    await (s as unknown as { restarting?: Promise<void> }).restarting;
    assert.ok(Date.now() - t0 < 2000, `stopped after ${Date.now() - t0} ms`);
    assert.equal(starts(file), 1, "not started again after the stop");
  });

  test("a stale process holding the port is named, and nothing is started", async () => {
    const stale = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((r) => stale.listen(0, "127.0.0.1", r));
    const port = (stale.address() as { port: number }).port;
    const file = join(dir, "stale.count");
    try {
      const { s } = supervisor(counted(file, ""), async () => false, {
        listen: { host: "127.0.0.1", port },
      });
      await assert.rejects(s.ensure(), (e: Error) => {
        assert.match(
          e.message,
          new RegExp(
            `^llm: port ${port} is held by (pid ${process.pid} \\(node\\)|another process), which does not answer as this backend's server; stop it( \\(kill ${process.pid}\\))? or give the server another port, then run clawbridge up again$`,
          ),
        );
        return true;
      });
      assert.equal(starts(file), 0);
    } finally {
      stale.close();
    }
  });
});
