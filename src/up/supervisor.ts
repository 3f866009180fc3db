import { type ChildProcess, spawn } from "node:child_process";
import type { Logger } from "../log.js";
import { portHolder, portTaken } from "./port.js";

/** How to start one backend's server, from the config. */
export interface StartSpec {
  /** A shell command line: `ollama serve`, `llama-server -m model.gguf --port 8080`, … */
  command: string;
  cwd?: string;
  env?: Record<string, string>;
  /** How long the server may take to answer its health check after starting. */
  readyTimeoutMs: number;
  /** Prompt lengths (tokens) to warm the model up with, in order (TinyGrad JITs per length). */
  warmup: number[];
}

export interface SupervisorOptions {
  name: string;
  spec: StartSpec;
  /** Whether the server answers (its discovery endpoint). */
  healthy: () => Promise<boolean>;
  /** Say something to the person at the terminal. */
  say: (line: string) => void;
  log: Logger;
  /** Health checks while running; this many failures in a row is a hang. */
  checkIntervalMs?: number;
  hangAfterFailures?: number;
  /** First restart delay; doubles up to maxBackoffMs, back to the first after a healthy minute. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How long a stopped child may take before it is killed. */
  stopGraceMs?: number;
  /** Where the server listens: a port held by something that does not answer is named, not started over. */
  listen?: { host: string; port: number };
  /** Called once a restarted server answers (to warm it up again). */
  onRestarted?: () => Promise<void> | void;
}

/** The server's last lines of output kept, to show when it will not start. */
const TAIL_LINES = 15;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Keeps one backend server running: adopts it when it already answers, else starts it and waits
 * until it does; restarts it (with backoff) when it exits or stops answering; stops it cleanly.
 */
export class Supervisor {
  child: ChildProcess | undefined;
  /** Whether the running server is one this supervisor started (vs one it found running). */
  owned = false;
  restarts = 0;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private backoff: number;
  private healthySince = 0;
  private restarting: Promise<void> | undefined;
  /** Children this supervisor is killing itself: their exit is no news. */
  private readonly killed = new WeakSet<ChildProcess>();
  /** Whether the server ever answered: until then an exit is a failure to start, not a crash to restart. */
  private everUp = false;
  /** The server's last lines of output (stdout and stderr, as it wrote them). */
  private tail: string[] = [];
  /** Ends a wait (the restart backoff) at once when stopping. */
  private wake: (() => void) | undefined;

  constructor(private readonly o: SupervisorOptions) {
    this.backoff = o.backoffMs ?? 1000;
  }

  /** Adopts or starts the server and waits until it answers. */
  async ensure(): Promise<"adopted" | "started"> {
    if (await this.o.healthy()) {
      this.o.say(`${this.o.name}: already running, adopted`);
      this.everUp = true;
      this.watch();
      return "adopted";
    }
    const at = this.o.listen;
    if (at && (await portTaken(at.host, at.port))) {
      // something holds the port but does not answer as the server: starting another would only fail
      const holder = portHolder(at.port);
      throw new Error(
        `${this.o.name}: port ${at.port} is held by ${holder ?? "another process"}, which does not answer as this backend's server; ` +
          `stop it${holder ? ` (kill ${/pid (\d+)/.exec(holder)?.[1]})` : ""} or give the server another port, then run clawbridge up again`,
      );
    }
    await this.start();
    this.watch();
    return "started";
  }

  private async start(): Promise<void> {
    const { name, spec, say, log } = this.o;
    say(`${name}: starting \`${spec.command}\``);
    const child = spawn(spec.command, {
      shell: true,
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ["ignore", "pipe", "pipe"],
      // its own process group, so a stop reaches the server and not only the shell around it
      detached: true,
    });
    this.child = child;
    this.owned = true;
    const forward = (stream: NodeJS.ReadableStream | null) => {
      let partial = "";
      stream?.on("data", (d: Buffer) => {
        const lines = (partial + d.toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) {
          if (!l.trim()) continue;
          log.info({ backend: name, pid: child.pid }, l);
          this.tail.push(l);
          if (this.tail.length > TAIL_LINES) this.tail.shift();
        }
      });
    };
    forward(child.stdout);
    forward(child.stderr);
    let exitedHow = "";
    child.on("exit", (code, signal) => {
      if (this.child === child) this.child = undefined;
      const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
      exitedHow = how;
      // before it ever answered, start() reports the failure and stops: no restart loop
      if (this.stopping || this.killed.has(child) || !this.everUp) return;
      say(`${name}: the server ${how}; restarting in ${Math.round(this.backoff / 1000)} s`);
      log.warn({ backend: name, code, signal }, "backend server exited; restarting");
      void this.restart();
    });
    const started = Date.now();
    let lastSaid = started;
    for (;;) {
      if (this.stopping) return;
      if (await this.o.healthy()) break;
      if (this.child !== child) {
        // let the last output arrive
        await sleep(50);
        const tail = this.tail.length
          ? `; its last lines:\n${this.tail.map((l) => `    ${l}`).join("\n")}`
          : " without a word";
        throw new Error(`${name}: the server ${exitedHow || "exited"} before it answered${tail}`);
      }
      const waited = Date.now() - started;
      if (waited > spec.readyTimeoutMs) {
        await this.kill(child);
        throw new Error(
          `${name}: no answer ${Math.round(waited / 1000)} s after starting \`${spec.command}\``,
        );
      }
      if (Date.now() - lastSaid >= 5000) {
        lastSaid = Date.now();
        say(`${name}: waiting for the server to answer… ${Math.round(waited / 1000)} s`);
      }
      await sleep(200);
    }
    this.healthySince = Date.now();
    this.everUp = true;
    say(`${name}: up after ${((Date.now() - started) / 1000).toFixed(1)} s (pid ${child.pid})`);
  }

  private restart(): Promise<void> {
    if (this.restarting) return this.restarting;
    this.restarting = (async () => {
      if (Date.now() - this.healthySince > 60_000) this.backoff = this.o.backoffMs ?? 1000;
      // a stop ends the wait at once (Ctrl-C does not wait out the backoff)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.backoff);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
      this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs ?? 60_000);
      if (this.stopping) return;
      if (this.child) await this.kill(this.child);
      this.restarts++;
      try {
        await this.start();
        this.failures = 0;
      } catch (e) {
        if (this.stopping) return;
        this.o.say(
          `${(e as Error).message}\n${this.o.name}: trying again in ${Math.round(this.backoff / 1000)} s`,
        );
        this.restarting = undefined;
        return this.restart();
      }
      if (this.stopping) return;
      try {
        await this.o.onRestarted?.();
      } catch (e) {
        // a warm-up that failed leaves a server that answers: it serves cold
        this.o.log.warn({ backend: this.o.name, err: (e as Error).message }, "warm-up after restart failed");
      }
    })().finally(() => {
      this.restarting = undefined;
    });
    return this.restarting;
  }

  /** Health checks: a server that stops answering is restarted (a hang), one found dead too. */
  private watch(): void {
    if (this.stopping) return;
    const every = this.o.checkIntervalMs ?? 10_000;
    const limit = this.o.hangAfterFailures ?? 3;
    const tick = async () => {
      if (this.stopping || this.restarting) return;
      const ok = await this.o.healthy().catch(() => false);
      if (ok) {
        this.failures = 0;
        return;
      }
      if (++this.failures < limit) return;
      this.failures = 0;
      this.o.say(`${this.o.name}: the server stopped answering (${limit} health checks); restarting it`);
      this.o.log.warn({ backend: this.o.name }, "backend server not answering; restarting");
      void this.restart();
    };
    this.timer = setInterval(() => void tick(), every);
  }

  private async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    this.killed.add(child);
    const exited = new Promise((r) => child.once("exit", r));
    const group = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        child.kill(sig);
      }
    };
    group("SIGTERM");
    const grace = this.o.stopGraceMs ?? 10_000;
    const t = setTimeout(() => group("SIGKILL"), grace);
    await exited;
    clearTimeout(t);
  }

  /** Stops health checks and, when this supervisor started the server, the server. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.wake?.();
    if (this.child) {
      this.o.say(`${this.o.name}: stopping the server (pid ${this.child.pid})`);
      await this.kill(this.child);
    }
  }
}
