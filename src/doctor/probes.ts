import { kindOf } from "../backends/registry.js";
import { GatewayError } from "../ir/errors.js";
import type { Event, Request } from "../ir/types.js";
import { silentLogger } from "../log.js";
import type { Served } from "../routing/served.js";
import type { Add } from "./check.js";

function probeRequest(model: string, tools: boolean): Request {
  return {
    model,
    system: "",
    messages: [
      {
        role: "user",
        parts: [
          {
            type: "text",
            text: tools
              ? "What time is it? Use the get_time tool."
              : "Count from 1 to 20, separated by spaces.",
          },
        ],
      },
    ],
    tools: tools
      ? [
          {
            name: "get_time",
            description: "The current time",
            inputSchema: { type: "object", properties: { zone: { type: "string" } } },
          },
        ]
      : [],
    toolChoice: { type: "auto" },
    limits: { maxOutputTokens: tools ? 128 : 64 },
    sampling: { temperature: 0 },
    thinking: {},
    stream: true,
    metadata: {},
    ignored: [],
  };
}

export interface ProbeOptions {
  timeoutMs: number;
  /** Every discovered model too (`--all`), not only those served under an alias. */
  all: boolean;
  add: Add;
  /** Told as each model's probes start. */
  started?: (what: string) => void;
}

/**
 * A real request to each model clients are served under an alias (every one with `all`): does it
 * call a tool, and how fast does it stream.
 */
export async function probes(s: Served, { timeoutMs, all, add, started }: ProbeOptions): Promise<void> {
  const chosen = all ? s.models : s.models.filter((m) => m.source === "config");
  if (!chosen.length && s.models.length) {
    add({
      id: "probes",
      status: "skip",
      title: "probes",
      detail: `no model is served under an alias (${s.models.length} discovered)`,
      fix: "clawbridge doctor --all probes every discovered model",
    });
  }
  for (const { id, profile } of chosen) {
    if (kindOf(profile.backend.kind)?.doctor?.probes === false) continue;
    const listed = s.router.discovered.get(profile.backend.name);
    if (listed instanceof GatewayError) continue;
    started?.(`probing model ${id} (streaming, then a tool call)…`);
    // streaming: time to first token and tokens per second
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const started = performance.now();
      let first: number | undefined;
      let out = 0;
      for await (const batch of s.router.stream(probeRequest(id, false), signal, silentLogger)) {
        for (const e of batch) {
          if (e.type === "textDelta" && first === undefined) first = performance.now();
          if (e.type === "usage" && e.usage.outputTokens) out = e.usage.outputTokens;
        }
      }
      const end = performance.now();
      const ttft = first !== undefined ? first - started : undefined;
      const rate =
        first !== undefined && out > 1 && end > first ? ((out - 1) * 1000) / (end - first) : undefined;
      add({
        id: `model:${id}:stream`,
        status: ttft === undefined ? "warn" : "ok",
        title: `model ${id}: streaming`,
        detail:
          ttft === undefined
            ? "the stream carried no text"
            : `first token after ${(ttft / 1000).toFixed(2)} s${rate ? `, ${rate.toFixed(1)} tokens/s` : ""}`,
      });
    } catch (e) {
      add({
        id: `model:${id}:stream`,
        status: "fail",
        title: `model ${id}: streaming`,
        detail: (e as Error).message,
      });
      continue;
    }
    // tools: a call asked for plainly
    const counted: string[] = [];
    try {
      const events: Event[] = [];
      for await (const batch of s.router.stream(
        probeRequest(id, true),
        AbortSignal.timeout(timeoutMs),
        silentLogger,
        {
          count: (what) => counted.push(what),
        },
      ))
        events.push(...batch);
      const called = events.some((e) => e.type === "toolCallStart");
      const rescued = counted.some((w) => w.startsWith("rescued"));
      const emulated = profile.supportsTools === false || !profile.backend.caps.tools;
      add({
        id: `model:${id}:tool-probe`,
        status: !called ? "warn" : "ok",
        title: `model ${id}: tool-call probe`,
        detail: !called
          ? "asked to call a tool, it answered in text: agents will struggle with this model"
          : emulated
            ? "called the tool through emulation (the model has no native tools)"
            : rescued
              ? "called the tool, written as text: clawbridge rescues it (tool_mode auto)"
              : "called the tool natively",
        ...(!called ? { fix: "pick a model trained for tool use (qwen2.5, llama3.1+, mistral-nemo)" } : {}),
      });
    } catch (e) {
      add({
        id: `model:${id}:tool-probe`,
        status: "fail",
        title: `model ${id}: tool-call probe`,
        detail: (e as Error).message,
      });
    }
  }
}
