import { parseJsonLenient } from "../repair.js";
import { type Read, WAIT } from "./candidate.js";
import { JsonTracker } from "./json-tracker.js";
import type { ToolSet } from "./tool-set.js";

/** One JSON value from `start`: where it ends, and what it is once parsed leniently. */
export class JsonReader {
  readonly tracker: JsonTracker;
  cur: number;
  private result: Read<{ value: unknown; repairs: string[] }> | undefined;

  constructor(
    private readonly start: number,
    strict: boolean,
    tools: ToolSet,
    stops: readonly string[] = [],
  ) {
    this.tracker = new JsonTracker(strict, tools, stops);
    this.cur = start;
  }

  read(buf: string, final: boolean): Read<{ value: unknown; repairs: string[] }> {
    if (this.result) return this.result;
    const r = this.tracker.feed(buf, this.cur);
    this.cur = r.at;
    if (r.status === "more" && !final) return WAIT;
    const truncated = r.status === "more";
    const parsed = r.status === "reject" ? undefined : parseJsonLenient(buf.slice(this.start, r.at));
    this.result = parsed
      ? { kind: "ok", end: r.at, truncated, value: parsed.value, repairs: parsed.repairs }
      : { kind: "fail" };
    return this.result;
  }
}
