import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import { LAUNCHD_LABEL, launchdPlist, type ServiceSpec, SYSTEMD_UNIT, systemdUnit } from "./units.js";

/** Runs a service manager command; injectable so tests can see what would run. */
export type Runner = (cmd: string, args: string[]) => { status: number; output: string };

const runCommand: Runner = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) return { status: 127, output: r.error.message };
  return { status: r.status ?? 1, output: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
};

export interface ServiceManager {
  kind: "systemd" | "launchd";
  /** The file the service is defined in. */
  path: string;
  render(spec: ServiceSpec): string;
  /** Commands that load and start it, after the file is written. */
  start: Array<[string, string[]]>;
  /** Commands that stop and unload it, before the file is removed. */
  stop: Array<[string, string[]]>;
  status: [string, string[]];
}

export function serviceManager(platform = process.platform, home = homedir()): ServiceManager {
  if (platform === "darwin") {
    const path = join(home, "Library", "LaunchAgents", `${LAUNCHD_LABEL}.plist`);
    const domain = `gui/${userInfo().uid}`;
    return {
      kind: "launchd",
      path,
      render: launchdPlist,
      start: [["launchctl", ["bootstrap", domain, path]]],
      stop: [["launchctl", ["bootout", `${domain}/${LAUNCHD_LABEL}`]]],
      status: ["launchctl", ["print", `${domain}/${LAUNCHD_LABEL}`]],
    };
  }
  if (platform === "linux") {
    const configHome = process.env.XDG_CONFIG_HOME || join(home, ".config");
    return {
      kind: "systemd",
      path: join(configHome, "systemd", "user", SYSTEMD_UNIT),
      render: systemdUnit,
      start: [
        ["systemctl", ["--user", "daemon-reload"]],
        ["systemctl", ["--user", "enable", "--now", SYSTEMD_UNIT]],
      ],
      stop: [["systemctl", ["--user", "disable", "--now", SYSTEMD_UNIT]]],
      status: ["systemctl", ["--user", "status", "--no-pager", SYSTEMD_UNIT]],
    };
  }
  throw new Error(`clawbridge service supports Linux (systemd) and macOS (launchd), not ${platform}`);
}

export interface ServiceResult {
  ok: boolean;
  lines: string[];
}

export function installService(
  m: ServiceManager,
  spec: ServiceSpec,
  run: Runner = runCommand,
): ServiceResult {
  mkdirSync(dirname(m.path), { recursive: true });
  mkdirSync(dirname(spec.logFile), { recursive: true });
  // re-installing replaces the running service: stop the old one first (failures are fine here)
  if (existsSync(m.path)) for (const [c, a] of m.stop) run(c, a);
  writeFileSync(m.path, m.render(spec));
  const lines = [`wrote ${m.path}`];
  for (const [c, a] of m.start) {
    const r = run(c, a);
    if (r.status !== 0) {
      lines.push(`\`${c} ${a.join(" ")}\` failed (${r.status}): ${r.output || "no output"}`);
      return { ok: false, lines };
    }
  }
  lines.push(
    m.kind === "systemd"
      ? `started; it starts at login. Logs: journalctl --user -u ${SYSTEMD_UNIT} -f`
      : `started; it starts at login. Logs: ${spec.logFile}`,
  );
  return { ok: true, lines };
}

export function uninstallService(m: ServiceManager, run: Runner = runCommand): ServiceResult {
  if (!existsSync(m.path)) return { ok: true, lines: [`not installed (no ${m.path})`] };
  const lines: string[] = [];
  for (const [c, a] of m.stop) {
    const r = run(c, a);
    if (r.status !== 0) lines.push(`\`${c} ${a.join(" ")}\` said (${r.status}): ${r.output || "no output"}`);
  }
  rmSync(m.path);
  if (m.kind === "systemd") run("systemctl", ["--user", "daemon-reload"]);
  lines.push(`stopped and removed ${m.path}`);
  return { ok: true, lines };
}

export function serviceStatus(m: ServiceManager, run: Runner = runCommand): ServiceResult {
  if (!existsSync(m.path)) return { ok: false, lines: ["not installed: run `clawbridge service install`"] };
  const [c, a] = m.status;
  const r = run(c, a);
  return { ok: r.status === 0, lines: [`installed at ${m.path}`, r.output || `${c} exited ${r.status}`] };
}
