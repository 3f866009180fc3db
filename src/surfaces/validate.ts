import { z } from "zod";
import { GatewayError } from "../ir/errors.js";

/** A number a request field may hold: finite (JSON has no NaN, but a parsed 1e999 is Infinity). */
export const num = z.number().refine(Number.isFinite, "must be a finite number");

/** Parses with a zod schema; a failure is a 400 naming the field and what is wrong with it. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix = ""): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = [prefix, ...issue.path.map(String)].filter(Boolean).join(".");
  throw new GatewayError("invalid_request", path ? `${path}: ${issue.message}` : issue.message, {
    param: path || undefined,
  });
}

export function invalid(path: string, message: string): GatewayError {
  return new GatewayError("invalid_request", `${path}: ${message}`, { param: path });
}
