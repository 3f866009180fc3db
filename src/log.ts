import { pino } from "pino";
import { redact } from "./redact.js";

export type Logger = pino.Logger;

/** The levels `log.level` and `--log-level` take. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogOptions {
  level?: string;
  file?: string;
  pretty?: boolean;
}

/**
 * The gateway's logger: JSON lines (pino), to stderr or to a file. Every line is written with the
 * credentials of any URL in it redacted (a backend's `http://user:pass@host` in an error).
 */
export function createLogger(opts: LogOptions = {}, dest?: pino.DestinationStream): Logger {
  const level = opts.level ?? process.env.CLAWBRIDGE_LOG_LEVEL ?? "info";
  const options = { level, base: undefined, hooks: { streamWrite: redact } };
  if (dest) return pino(options, dest);
  if (opts.file) {
    return pino(options, pino.destination({ dest: opts.file, mkdir: true, sync: false }));
  }
  return pino(options, pino.destination({ dest: 2, sync: false }));
}

/** A logger that discards everything (tests, library use). */
export const silentLogger: Logger = pino({ level: "silent" });
