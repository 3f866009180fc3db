import { pino } from "pino";

export type Logger = pino.Logger;

export interface LogOptions {
  level?: string;
  file?: string;
  pretty?: boolean;
}

/** The gateway's logger: JSON lines (pino), to stderr or to a file. */
export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.CLAWBRIDGE_LOG_LEVEL ?? "info";
  if (opts.file) {
    return pino({ level, base: undefined }, pino.destination({ dest: opts.file, mkdir: true, sync: false }));
  }
  return pino({ level, base: undefined }, pino.destination({ dest: 2, sync: false }));
}

/** A logger that discards everything (tests, library use). */
export const silentLogger: Logger = pino({ level: "silent" });
