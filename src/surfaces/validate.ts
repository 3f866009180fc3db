import type { z } from "zod";
import { GatewayError } from "../ir/errors.js";

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
