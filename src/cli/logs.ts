import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import type { Command } from "commander";
import { ConfigError, loadConfigFile } from "../config/load.js";
import { serviceManager } from "../service/service.js";
import { findConfigFile } from "./serve.js";
import { serviceSpec } from "./service.js";

const LEVELS: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};

/** One JSON log line (pino) as a line a person reads: time, level, message, then the fields. */
export function formatLogLine(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line);
  } catch {
    return line;
  }
  if (!rec || typeof rec !== "object") return line;
  const { time, level, msg, ...rest } = rec;
  const when = typeof time === "number" ? new Date(time).toISOString().replace("T", " ").slice(0, 23) : "";
  const lvl = (typeof level === "number" ? (LEVELS[level] ?? String(level)) : String(level ?? "")).padEnd(5);
  const fields = Object.entries(rest)
    .map(
      ([k, v]) =>
        `${k}=${typeof v === "string" ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`,
    )
    .join(" ");
  return `${when} ${lvl} ${String(msg ?? "")}${fields ? `  ${fields}` : ""}`;
}

/** The last `n` lines of a file, read from its end. */
function lastLines(path: string, n: number): { lines: string[]; size: number } {
  const size = statSync(path).size;
  const fd = openSync(path, "r");
  try {
    let pos = size;
    let text = "";
    const buf = Buffer.alloc(64 * 1024);
    while (pos > 0 && text.split("\n").length <= n + 1) {
      const len = Math.min(buf.length, pos);
      pos -= len;
      readSync(fd, buf, 0, len, pos);
      text = buf.toString("utf8", 0, len) + text;
    }
    const lines = text.split("\n").filter(Boolean);
    return { lines: lines.slice(-n), size };
  } finally {
    closeSync(fd);
  }
}

/** Prints what is appended to the file from `from` on, until the process is stopped. */
function follow(path: string, from: number, print: (l: string) => void): Promise<void> {
  let pos = from;
  let partial = "";
  const read = () => {
    const size = statSync(path).size;
    if (size < pos) pos = 0; // rotated or truncated: start over
    if (size === pos) return;
    const fd = openSync(path, "r");
    const buf = Buffer.alloc(size - pos);
    readSync(fd, buf, 0, buf.length, pos);
    closeSync(fd);
    pos = size;
    const lines = (partial + buf.toString("utf8")).split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) if (l) print(l);
  };
  // polled against the position reached, not against the last stat seen: a line appended between
  // printing the tail and the first look is still printed
  const timer = setInterval(read, 250);
  read();
  return new Promise((resolve) => {
    const stop = () => {
      clearInterval(timer);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}

export function registerLogs(program: Command): void {
  program
    .command("logs")
    .description("show the gateway's log (the config's log.file, or the service's log)")
    .option("-c, --config <file>", "config file (for log.file)")
    .option("--file <file>", "the log file to read")
    .option("-f, --follow", "keep printing what is logged")
    .option("-n, --lines <n>", "lines to show first", "50")
    .option("--json", "print the JSON lines as they are")
    .action(
      async (opts: { config?: string; file?: string; follow?: boolean; lines: string; json?: boolean }) => {
        const n = Math.max(0, Number(opts.lines) || 50);
        const print = (l: string) => process.stdout.write(`${opts.json ? l : formatLogLine(l)}\n`);
        let file = opts.file;
        if (!file) {
          const cfg = findConfigFile(opts.config);
          if (cfg) {
            try {
              file = loadConfigFile(cfg).log.file;
            } catch (e) {
              if (!(e instanceof ConfigError)) throw e;
            }
          }
        }
        if (!file && process.platform === "linux") {
          let installed = false;
          try {
            installed = existsSync(serviceManager().path);
          } catch {}
          if (installed) {
            // the systemd service logs to the journal
            const args = [
              "--user",
              "-u",
              "clawbridge.service",
              "-n",
              String(n),
              "-o",
              "cat",
              ...(opts.follow ? ["-f"] : []),
            ];
            const child = spawn("journalctl", args, { stdio: ["ignore", "pipe", "inherit"] });
            let partial = "";
            child.stdout.on("data", (d: Buffer) => {
              const lines = (partial + d.toString("utf8")).split("\n");
              partial = lines.pop() ?? "";
              for (const l of lines) if (l) print(l);
            });
            await new Promise((r) => child.on("close", r));
            return;
          }
        }
        if (!file && process.platform === "darwin") file = serviceSpec(undefined, "darwin").logFile;
        if (!file || !existsSync(file)) {
          process.stderr.write(
            file
              ? `clawbridge: no log at ${file} yet (has the gateway run with this config?)\n`
              : "clawbridge: the gateway logs to the terminal that runs it. To keep a log, set `log: { file: PATH }` in the config (or serve --log-file PATH), or run it as a service: clawbridge service install\n",
          );
          process.exitCode = 1;
          return;
        }
        const { lines, size } = lastLines(file, n);
        for (const l of lines) print(l);
        if (opts.follow) await follow(file, size, print);
      },
    );
}
