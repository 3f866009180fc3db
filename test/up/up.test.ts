import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, f: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("clawbridge up", () => {
  test("starts a backend from its command, warms it up, restarts it when killed, stops it on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-up-"));
    const port = await freePort();
    const log = join(dir, "requests.jsonl");
    const command = `"${process.execPath}" --import tsx test/fakes/run.ts --kind openai-compat --flavor tinygrad --model qwen2.5:14b --port ${port} --log "${log}"`;
    const config = join(dir, "clawbridge.yaml");
    writeFileSync(
      config,
      `
backends:
  tiny:
    kind: openai-compat
    flavor: tinygrad
    url: http://127.0.0.1:${port}
    start:
      command: '${command}'
      ready_timeout_s: 60
      warmup: [16, 32, 64]
models:
  local: { backend: tiny, model: "qwen2.5:14b" }
`,
    );
    const up: ChildProcess = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "up",
        "--config",
        config,
        "--port",
        "0",
        "--check-interval",
        "0.5",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    up.stdout!.on("data", (d) => {
      out += d;
    });
    up.stderr!.on("data", (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => up.on("exit", (code) => r(code)));
    const requests = () =>
      existsSync(log)
        ? readFileSync(log, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l))
        : [];
    try {
      const url = await until(
        "the gateway to listen",
        () => /listening on (http:\/\/\S+)/.exec(out)?.[1],
        60_000,
      );
      assert.match(out, /tiny: starting `/);
      assert.match(out, /tiny: up after/);
      // warmed up with prompts of the configured lengths, in order, one output token each
      const warm = requests();
      assert.deepEqual(
        warm.map((r) => r.body.messages.at(-1).content.split(" ").length),
        [16, 32, 64],
      );
      assert.ok(warm.every((r) => r.body.max_tokens === 1));

      // the server dies: it is started again, and the gateway serves through the new one
      const firstPid = warm[0].pid as number;
      process.kill(firstPid, "SIGKILL");
      await until("the restart", () => (out.match(/tiny: up after/g) ?? []).length >= 2, 60_000);
      assert.match(out, /tiny: the server (exited|was killed).*restarting/);
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "local", messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(((await res.json()) as any).choices[0].message.content, "ok");
      const secondPid = requests().at(-1).pid as number;
      assert.notEqual(secondPid, firstPid);

      // SIGTERM: the gateway closes and the backend it started is stopped
      up.kill("SIGTERM");
      assert.equal(await exited, 0, out);
      await until("the backend to stop", () => !alive(secondPid) || undefined, 15_000);
      assert.match(out, /tiny: stopping the server/);
    } finally {
      if (up.exitCode === null) up.kill("SIGKILL");
      for (const r of requests()) if (alive(r.pid)) process.kill(r.pid, "SIGKILL");
    }
  });

  test("without a config file it says what up is for", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-up-"));
    const child = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), join(process.cwd(), "src/cli/main.ts"), "up"],
      {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, CLAWBRIDGE_CONFIG: "" },
      },
    );
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
    });
    const code = await new Promise((r) => child.on("exit", r));
    assert.equal(code, 2);
    assert.match(err, /no config file.*`start` command/);
  });
});
