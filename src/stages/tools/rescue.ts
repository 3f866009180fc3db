/**
 * The rescue stage: tool calls a local model wrote as text (or in its reasoning) become real
 * tool-call events, so the client sees tool_use blocks / tool_calls and stop reason tool_use.
 *
 * Applies when the client offered tools and the tools stage did not pin the mode to native or
 * strip; otherwise the events are returned untouched, at no cost. Native tool-call events pass
 * through as they are. Every rescue and repair is logged and counted.
 */
import { newId } from "../../ir/ids.js";
import type { Event, EventStream } from "../../ir/types.js";
import type { ResponseStage, StageContext } from "../types.js";
import { ToolSet } from "./formats/index.js";
import { type ScanCall, type ScanOutput, ToolCallScanner } from "./scanner.js";

export const rescue: ResponseStage = (events, _req, ctx) => {
  const { tools, toolChoice } = ctx.client;
  if (tools.length === 0 || toolChoice.type === "none") return events;
  if (ctx.toolMode === "native" || ctx.toolMode === "strip") return events;
  return rescueEvents(events, ctx);
};

async function* rescueEvents(events: EventStream, ctx: StageContext): AsyncGenerator<Event[]> {
  const r = new Rescuer(ctx);
  for await (const batch of events) {
    const out: Event[] = [];
    for (const ev of batch) out.push(...r.on(ev));
    if (out.length) yield out;
  }
  // a stream that ended without its stop (the stop closes the answer itself; then this is a no-op)
  const rest = r.close();
  if (rest.length) yield rest;
}

/** A call's identity for finding the same call twice (drafted in the reasoning, then made). */
function callKey(name: string, input: unknown): string {
  return `${name}\u0000${canonical(input)}`;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

/**
 * The stage's state for one answer. Text and reasoning are two sections, each with its own
 * scanner; any other content event ends the open section (what it held is decided then), so
 * the order of everything the client sees is the order the backend sent.
 */
class Rescuer {
  private readonly tools: ToolSet;
  private readonly text: ToolCallScanner;
  /** Reasoning is scanned too, unless the backend signs it (then it must stay byte for byte). */
  private readonly thinking: ToolCallScanner | undefined;
  private section: "text" | "thinking" | undefined;
  /**
   * Calls found in the reasoning (or in a `<think>` block of the text) wait for the end of the
   * answer: the reasoning block stays whole, and a call the model drafted while thinking and then
   * made for real (as text or natively) is made once.
   */
  private deferred: ScanCall[] = [];
  private readonly made = new Set<string>();
  /** Native calls so far: a call also written as text after one of them is the same call. */
  private readonly madeNatively = new Set<string>();
  private native: { name: string; json: string } | undefined;
  private rescued = 0;
  /** Whitespace at the end of the text so far, held back: dropped next to a call. */
  private pendingSpace = "";
  private afterCall = false;

  constructor(private readonly ctx: StageContext) {
    this.tools = new ToolSet(ctx.client.tools);
    this.text = new ToolCallScanner(this.tools);
    if (!ctx.profile.backend.caps.thinkingNeedsSignature) this.thinking = new ToolCallScanner(this.tools);
  }

  on(ev: Event): Event[] {
    const out: Event[] = [];
    switch (ev.type) {
      case "textDelta":
        if (this.section !== "text") this.endSection(out);
        this.section = "text";
        this.give(this.text.push(ev.text), "text", out);
        return out;
      case "thinkingDelta":
        if (!this.thinking || ev.signature !== undefined || ev.redacted !== undefined) {
          this.endSection(out);
          out.push(ev);
          return out;
        }
        if (this.section !== "thinking") this.endSection(out);
        this.section = "thinking";
        this.give(this.thinking.push(ev.text), "thinking", out);
        return out;
      case "toolCallStart":
        this.endSection(out);
        this.endNative();
        this.native = { name: ev.name, json: "" };
        this.afterCall = true;
        this.pendingSpace = "";
        out.push(ev);
        return out;
      case "toolCallDelta":
        if (this.native) this.native.json += ev.json;
        out.push(ev);
        return out;
      case "toolCallEnd":
        this.endNative();
        out.push(ev);
        return out;
      case "stop": {
        out.push(...this.close());
        // A cut answer (max_tokens) keeps its reason even when a repaired call came out of it:
        // the client should know the answer was cut; its call is there for it to use or not.
        // A stop sequence that ended the answer (often `</tool_call>` itself) was the call's end.
        if (this.rescued > 0 && (ev.reason === "end_turn" || ev.reason === "stop_sequence")) {
          this.ctx.log.debug({ was: ev.reason, rescued: this.rescued }, "stop reason set to tool_use");
          out.push({ type: "stop", reason: "tool_use" });
        } else out.push(ev);
        return out;
      }
      default:
        // start, usage: they carry no content and need no order against it
        out.push(ev);
        return out;
    }
  }

  /** The answer is over: what is held is decided, and calls from the reasoning are made. */
  close(): Event[] {
    const out: Event[] = [];
    this.endSection(out);
    this.endNative();
    const seen = new Set<string>();
    for (const call of this.deferred) {
      const key = callKey(call.name, call.input);
      if (this.made.has(key) || seen.has(key)) {
        this.ctx.log.debug({ tool: call.name }, "call from the reasoning made already; not made twice");
        continue;
      }
      seen.add(key);
      this.makeCall(call, out);
    }
    this.deferred = [];
    if (this.pendingSpace && !this.afterCall) out.push({ type: "textDelta", text: this.pendingSpace });
    this.pendingSpace = "";
    return out;
  }

  private endSection(out: Event[]): void {
    if (this.section === "text") this.give(this.text.end(), "text", out);
    else if (this.section === "thinking" && this.thinking) this.give(this.thinking.end(), "thinking", out);
    this.section = undefined;
  }

  private endNative(): void {
    if (!this.native) return;
    let input: unknown = {};
    try {
      input = this.native.json.trim() ? JSON.parse(this.native.json) : {};
    } catch {
      // unparseable native arguments: it cannot be compared, nothing more
    }
    const key = callKey(this.native.name, input);
    this.made.add(key);
    this.madeNatively.add(key);
    this.native = undefined;
  }

  private give(outputs: ScanOutput[], section: "text" | "thinking", out: Event[]): void {
    for (const o of outputs) {
      if (o.type === "call") {
        if (section === "thinking" || o.thinking) this.deferred.push(o);
        else if (this.madeNatively.has(callKey(o.name, o.input)))
          this.ctx.log.debug(
            { tool: o.name },
            "call written as text was made natively already; not made twice",
          );
        else this.makeCall(o, out);
      } else if (o.type === "thinking" || section === "thinking") {
        if (o.text) out.push({ type: "thinkingDelta", text: o.text });
      } else this.giveText(o.text, out);
    }
  }

  /**
   * Text as the client should see it around calls. Whitespace at the end of a piece is held
   * back: given out before the next text, dropped if a call comes next (or the answer ends after
   * one), so a text block does not end in the blank line that separated it from a call, and no
   * block is only blanks (noise, and Anthropic refuses one when the history is sent back). All
   * else goes out unchanged and in place — leading whitespace included: OpenAI clients see the
   * text around calls as one string, where it keeps words apart.
   */
  private giveText(text: string, out: Event[]): void {
    const body = text.trimEnd();
    if (body) {
      out.push({ type: "textDelta", text: this.pendingSpace + body });
      this.pendingSpace = "";
      this.afterCall = false;
    }
    this.pendingSpace += text.slice(body.length);
  }

  private makeCall(call: ScanCall, out: Event[]): void {
    this.pendingSpace = "";
    this.afterCall = true;
    this.rescued++;
    this.made.add(callKey(call.name, call.input));
    // call_ ids, as the local backends give native calls: both surfaces take them
    out.push(
      { type: "toolCallStart", id: newId("call_"), name: call.name },
      { type: "toolCallDelta", json: JSON.stringify(call.input) },
      { type: "toolCallEnd" },
    );
    const { log, count } = this.ctx;
    log.info(
      { tool: call.name, format: call.format, repairs: call.repairs, problems: call.problems },
      "rescued a tool call written as text",
    );
    if (call.problems.length)
      log.warn({ tool: call.name, problems: call.problems }, "rescued tool call does not fit its schema");
    count?.(`rescued_${call.format}`);
    for (const r of call.repairs) count?.(`repaired_${r}`);
  }
}
