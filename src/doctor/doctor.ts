import { ConfigError } from "../config/load.js";
import { loadServed, type Served } from "../routing/served.js";
import { openclawConfigPath } from "../clients/openclaw.js";
import { redact } from "../redact.js";
import { backendChecks } from "./backends.js";
import type { Check, Status } from "./check.js";
import { portCheck } from "./gateway.js";
import { modelChecks } from "./models.js";
import { openclawChecks } from "./openclaw.js";
import { probes } from "./probes.js";

export type { Check, Status };

export interface DoctorOptions {
  /** The config file (as `findConfigFile` found it); none: the servers on the default ports. */
  config?: string;
  /** OpenClaw's config file (default: where OpenClaw reads it). */
  openclawConfig?: string;
  /** Send a real request to each model served under an alias: tool-call and streaming probes. */
  probe?: boolean;
  /** Probe every discovered model too, not only the aliased ones. */
  probeAll?: boolean;
  probeTimeoutMs?: number;
  /** Told of each check as soon as it is made (the CLI prints it then, not at the end). */
  onCheck?: (c: Check) => void;
  /** Told when a slow step starts (a probe): what it is, in words. */
  onStart?: (what: string) => void;
}

/** Every check, area by area, in order; never throws: a check that cannot run says why. */
export async function runDoctor(o: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [];
  // what it says names backend URLs: their credentials stay out of it
  const add = (c: Check) => {
    const shown = {
      ...c,
      ...(c.detail !== undefined ? { detail: redact(c.detail) } : {}),
      ...(c.fix !== undefined ? { fix: redact(c.fix) } : {}),
    };
    checks.push(shown);
    o.onCheck?.(shown);
  };
  let served: Served;
  try {
    served = await loadServed(o.config);
  } catch (e) {
    add({
      id: "config",
      status: "fail",
      title: "configuration",
      detail: (e as Error).message,
      fix: e instanceof ConfigError ? "correct the line named above" : "see README, Configuration",
    });
    return checks;
  }
  try {
    add({ id: "config", status: "ok", title: "configuration", detail: served.config.source });
    await backendChecks(served, add);
    modelChecks(served, add);
    await portCheck(served, add);
    openclawChecks(served, o.openclawConfig ?? openclawConfigPath(), add);
    if (o.probe)
      await probes(served, {
        timeoutMs: o.probeTimeoutMs ?? 120_000,
        all: o.probeAll ?? false,
        add,
        ...(o.onStart ? { started: o.onStart } : {}),
      });
  } finally {
    await served.close();
  }
  return checks;
}

/** Used by `clawbridge doctor`'s text output. */
export function renderChecks(checks: Check[]): string {
  return checks.map(renderCheck).join("\n");
}

const MARK: Record<Status, string> = { ok: "ok  ", warn: "WARN", fail: "FAIL", skip: "--  " };

/** One check as `clawbridge doctor` prints it (as soon as it is made). */
export function renderCheck(c: Check): string {
  return `${MARK[c.status]}  ${c.title}${c.detail ? `: ${c.detail}` : ""}${c.fix ? `\n      fix: ${c.fix}` : ""}`;
}
