/**
 * The gateway's counters, exposed at /metrics in Prometheus' text format. Hand-written: a few
 * counters and histograms do not justify a metrics library's memory and per-observation cost
 * (prom-client's registry, its label hashing and default collectors; see README).
 */
type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** `{a="1",b="2"}`, the series' key and its text (on every request: no intermediate arrays). */
function labelText(labels: Labels): string {
  let s = "";
  for (const k in labels) s += `${s ? "," : "{"}${k}="${escapeLabel(labels[k]!)}"`;
  return s ? `${s}}` : "";
}

/**
 * The key of a label set, with the last one remembered: a busy gateway counts the same model and
 * outcome again and again, and comparing a few strings costs less than building the text and
 * hashing it.
 */
class LabelKeys {
  private last: Labels | undefined;
  private lastSize = 0;
  private lastKey = "";

  of(labels: Labels): string {
    const last = this.last;
    let size = 0;
    let same = last !== undefined;
    for (const k in labels) {
      size++;
      if (same && labels[k] !== last![k]) same = false;
    }
    if (same && size === this.lastSize) return this.lastKey;
    this.last = { ...labels };
    this.lastSize = size;
    this.lastKey = labelText(labels);
    return this.lastKey;
  }
}

export class Counter<L extends string> {
  private readonly values = new Map<string, number>();
  private readonly keys = new LabelKeys();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Record<L, string>, by = 1): void {
    const key = this.keys.of(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Record<L, string>): number {
    return this.values.get(labelText(labels)) ?? 0;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [k, v] of this.values) out += `${this.name}${k} ${v}\n`;
    return out;
  }
}

export class Histogram<L extends string> {
  private readonly series = new Map<
    string,
    { counts: number[]; sum: number; count: number; labels: Labels }
  >();
  private readonly keys = new LabelKeys();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[],
  ) {}

  observe(labels: Record<L, string>, value: number): void {
    const key = this.keys.of(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0, labels };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const s of this.series.values()) {
      for (const [i, le] of this.buckets.entries()) {
        out += `${this.name}_bucket${labelText({ ...s.labels, le: String(le) })} ${s.counts[i]}\n`;
      }
      out += `${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}\n`;
      out += `${this.name}_sum${labelText(s.labels)} ${s.sum}\n${this.name}_count${labelText(s.labels)} ${s.count}\n`;
    }
    return out;
  }
}

/** Renders one gauge family from label sets and values. */
export function renderGauge(name: string, help: string, values: Array<[Labels, number]>): string {
  let out = `# HELP ${name} ${help}\n# TYPE ${name} gauge\n`;
  for (const [labels, v] of values) out += `${name}${labelText(labels)} ${v}\n`;
  return out;
}

export class Metrics {
  readonly requests = new Counter<"surface" | "model" | "outcome">(
    "clawbridge_requests_total",
    "Requests answered, by surface, model and outcome",
  );
  readonly reshaped = new Counter<"what">(
    "clawbridge_reshaped_total",
    "Things a stage dropped or changed in a request for its backend, by what",
  );
  readonly switched = new Counter<"from_backend" | "kind">(
    "clawbridge_target_switches_total",
    "Times routing moved from a failed target to the next (replica or fallback)",
  );
  readonly toolCalls = new Counter<"what">(
    "clawbridge_tool_calls_total",
    "What the tool stages did to answers: calls rescued from text, arguments repaired, by what",
  );
  readonly promptTokens = new Counter<"model" | "from">(
    "clawbridge_prompt_tokens_total",
    "Prompt tokens the backends reported, by model: read afresh (evaluated) or held by the server's prompt cache (cache; only where the server says)",
  );
  readonly duration = new Histogram<"model" | "backend">(
    "clawbridge_request_duration_seconds",
    "Time from a generation request to the end of its answer, by model (as served; other: not served) and backend (none: never sent)",
    [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 15, 60, 300],
  );
  readonly firstToken = new Histogram<"model" | "backend">(
    "clawbridge_time_to_first_token_seconds",
    "Time from a generation request to the first token of its answer, by model and backend",
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  );
  readonly tokens = new Counter<"model" | "backend" | "direction">(
    "clawbridge_tokens_total",
    "Tokens the backends reported, by model, backend and direction: input (the whole prompt), output, cached (of the input, held by the server's prompt cache)",
  );

  readonly queued = new Counter<"backend" | "lane">(
    "clawbridge_queued_total",
    "Requests that had to wait for a place at a busy backend, by backend and lane",
  );
  readonly queueWait = new Histogram<"backend" | "lane">(
    "clawbridge_queue_wait_seconds",
    "Time from asking for a place at a backend to getting it (0 when one was free)",
    [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300],
  );
  /** Values read when /metrics is asked (queue depths, circuit states): rendered as gauges. */
  readonly gauges: Array<() => string> = [];

  readonly contentType = "text/plain; version=0.0.4; charset=utf-8";

  render(): string {
    return (
      [
        this.requests,
        this.reshaped,
        this.switched,
        this.toolCalls,
        this.promptTokens,
        this.duration,
        this.firstToken,
        this.tokens,
        this.queued,
        this.queueWait,
      ]
        .map((m) => m.render())
        .join("") + this.gauges.map((g) => g()).join("")
    );
  }
}
