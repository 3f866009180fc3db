/**
 * Compares clawbridge run with different fast-path settings (`npm run bench -- --fast-paths …`),
 * over several result files: for each scenario, dialect and setting, the median over the runs of
 * req/s, p50, TTFB p50 and server CPU per request, and each as a change against a reference
 * setting (`1`, every fast path on, unless --ref says otherwise), with the spread of the runs.
 *
 *   node --import tsx bench/compare.ts bench/results/fp-a-1.json bench/results/fp-a-2.json [--ref 1] [--md]
 *
 * A change is how much worse the setting is than the reference: +12% means 12% fewer req/s, or a
 * 12% longer p50, or 12% more CPU per request, without the fast paths the setting turns off.
 */
import { readFileSync } from "node:fs";

interface Rec {
  result: { rps: number; latencyMs: { p50: number }; ttfbMs: { p50: number }; ok: number } | null;
  serverCpuUsPerRequest?: number;
}
interface Run {
  targets: Array<{ id: string; proc: string; dialect: string }>;
  scenarios: Array<{ id: string; stream: boolean; results: Record<string, Rec> }>;
  meta: { machineBusyBeforeRun: number | null };
}

const args = process.argv.slice(2);
const md = args.includes("--md");
const refAt = args.indexOf("--ref");
const ref = refAt >= 0 ? args[refAt + 1]! : "1";
const files = args.filter((a, i) => !a.startsWith("--") && (refAt < 0 || i !== refAt + 1));
const runs = files.map((f) => JSON.parse(readFileSync(f, "utf8")) as Run);

type Metric = "rps" | "p50" | "ttfb" | "cpu";
const METRICS: Metric[] = ["rps", "p50", "ttfb", "cpu"];
const value = (r: Rec | undefined, m: Metric): number | undefined => {
  if (!r?.result || r.result.ok === 0) return undefined;
  if (m === "rps") return r.result.rps;
  if (m === "p50") return r.result.latencyMs.p50;
  if (m === "ttfb") return r.result.ttfbMs.p50 || undefined;
  return r.serverCpuUsPerRequest;
};
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};
/** How much worse `v` is than `base`, in percent (req/s: fewer is worse). */
const worse = (m: Metric, v: number, base: number): number =>
  m === "rps" ? (base / v - 1) * 100 : (v / base - 1) * 100;
const setting = (proc: string): string => /^clawbridge\[(.*)\]$/.exec(proc)?.[1] ?? proc;

const rows: string[][] = [
  [
    "scenario",
    "dialect",
    "setting",
    "req/s",
    "p50 ms",
    "TTFB ms",
    "CPU µs/req",
    ...METRICS.map((m) => `Δ${m}`),
  ],
];
const scenarioIds = [...new Set(runs.flatMap((r) => r.scenarios.map((s) => s.id)))];
for (const sid of scenarioIds) {
  const targets = runs[0]!.targets.filter((t) => t.proc.startsWith("clawbridge"));
  for (const dialect of ["openai", "anthropic"]) {
    const ofDialect = targets.filter((t) => t.dialect === dialect);
    const refTarget = ofDialect.find((t) => setting(t.proc) === ref);
    for (const t of ofDialect) {
      const per: Record<Metric, number[]> = { rps: [], p50: [], ttfb: [], cpu: [] };
      const deltas: Record<Metric, number[]> = { rps: [], p50: [], ttfb: [], cpu: [] };
      for (const run of runs) {
        const s = run.scenarios.find((x) => x.id === sid);
        if (!s) continue;
        for (const m of METRICS) {
          const v = value(s.results[t.id], m);
          const base = refTarget ? value(s.results[refTarget.id], m) : undefined;
          if (v !== undefined) per[m].push(v);
          if (v !== undefined && base !== undefined) deltas[m].push(worse(m, v, base));
        }
      }
      const show = (xs: number[], digits: number) => (xs.length ? median(xs).toFixed(digits) : "—");
      const delta = (xs: number[]) => {
        if (!xs.length || t === refTarget) return "";
        const lo = Math.min(...xs);
        const hi = Math.max(...xs);
        const sign = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(0)}`;
        return xs.length > 1 ? `${sign(median(xs))}% (${sign(lo)}…${sign(hi)})` : `${sign(xs[0]!)}%`;
      };
      rows.push([
        sid,
        dialect,
        setting(t.proc),
        show(per.rps, 0),
        show(per.p50, 2),
        show(per.ttfb, 2),
        show(per.cpu, 0),
        ...METRICS.map((m) => delta(deltas[m])),
      ]);
    }
  }
}

const busy = runs.map((r) => r.meta.machineBusyBeforeRun);
if (md) {
  const [head, ...body] = rows;
  process.stdout.write(
    `${[head!, head!.map(() => "---"), ...body].map((r) => `| ${r.join(" | ")} |`).join("\n")}\n`,
  );
} else {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join("  ")}\n`);
}
process.stdout.write(
  `\n${runs.length} run(s); machine busy before each: ${busy.map((b) => (b === null ? "?" : `${Math.round(b * 100)}%`)).join(", ")}; Δ: how much worse than setting ${ref} (median of the runs, and their range)\n`,
);
