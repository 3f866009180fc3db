/**
 * Medians over several bench/run.ts results written with the same targets (`--out name-1`, `name-2`, …):
 * per cell, each target's server CPU per request, requests per second and p50, and the ratio of each
 * target to a reference target, with the spread (lowest–highest ratio) between the runs.
 * Run: node --import tsx bench/compare-runs.ts --ref "clawbridge before" bench/results/redesign-{3,4,5}.json
 */
import { readFileSync } from "node:fs";

interface Cell {
  serverCpuUsPerRequest?: number;
  result: { rps: number; latencyMs: { p50: number } };
}
interface Run {
  scenarios: Array<{ id: string; results: Record<string, Cell> }>;
}

const args = process.argv.slice(2);
const at = args.indexOf("--ref");
const ref = at >= 0 ? args.splice(at, 2)[1]! : "clawbridge before";
const runs = args.map((f) => JSON.parse(readFileSync(f, "utf8")) as Run);
if (!runs.length) throw new Error("usage: compare-runs.ts --ref <target> <result.json>…");

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (r: number) => `${r >= 1 ? "+" : ""}${((r - 1) * 100).toFixed(0)}%`;

const lines = [
  `| cell | target | CPU µs/req (median) | vs ${ref} (median, spread) | req/s (median) | vs ${ref} |`,
  "| --- | --- | --- | --- | --- | --- |",
];
for (const s of runs[0]!.scenarios) {
  const targets = Object.keys(s.results).filter((t) => t !== "passthrough");
  for (const t of targets) {
    const [dialect] = t.split("-").slice(-1);
    const refKey = `${ref}-${dialect}`;
    if (t === refKey) continue;
    const cpu: number[] = [];
    const cpuRatio: number[] = [];
    const rps: number[] = [];
    const rpsRatio: number[] = [];
    for (const run of runs) {
      const cell = run.scenarios.find((x) => x.id === s.id)?.results;
      const mine = cell?.[t];
      const theirs = cell?.[refKey];
      if (!mine || !theirs) continue;
      if (mine.serverCpuUsPerRequest && theirs.serverCpuUsPerRequest) {
        cpu.push(mine.serverCpuUsPerRequest);
        cpuRatio.push(mine.serverCpuUsPerRequest / theirs.serverCpuUsPerRequest);
      }
      rps.push(mine.result.rps);
      rpsRatio.push(mine.result.rps / theirs.result.rps);
    }
    if (!rps.length) continue;
    const spread = cpuRatio.length ? `${pct(Math.min(...cpuRatio))} … ${pct(Math.max(...cpuRatio))}` : "";
    lines.push(
      `| ${s.id} | ${t} | ${cpu.length ? median(cpu).toFixed(0) : "–"} | ${cpuRatio.length ? `${pct(median(cpuRatio))} (${spread})` : "–"} | ${median(rps).toFixed(0)} | ${pct(median(rpsRatio))} |`,
    );
  }
}
console.log(`${runs.length} runs; reference: ${ref}\n`);
console.log(lines.join("\n"));
