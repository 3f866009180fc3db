import type { Command } from "commander";
import { renderCheck, runDoctor } from "../doctor/doctor.js";
import { findConfigFile } from "./serve.js";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description(
      "check the set-up and say what is wrong in plain words, with the fix: backends, models, context windows, tool support, the port, OpenClaw's config",
    )
    .option("-c, --config <file>", "clawbridge config file")
    .option("--openclaw-config <file>", "OpenClaw's config (default: where OpenClaw reads it)")
    .option("--no-probe", "skip the real requests (tool-call and streaming probes)")
    .option("--all", "probe every discovered model, not only those served under an alias")
    .option("--json", "print the checks as JSON")
    .action(
      async (opts: {
        config?: string;
        openclawConfig?: string;
        probe: boolean;
        all?: boolean;
        json?: boolean;
      }) => {
        const say = (line: string) => process.stdout.write(`${line}\n`);
        // each check printed as soon as it is made; JSON: all of them at the end
        const checks = await runDoctor({
          config: findConfigFile(opts.config),
          ...(opts.openclawConfig ? { openclawConfig: opts.openclawConfig } : {}),
          probe: opts.probe,
          probeAll: opts.all ?? false,
          ...(opts.json
            ? {}
            : { onCheck: (c) => say(renderCheck(c)), onStart: (what) => say(`...   ${what}`) }),
        });
        if (opts.json) say(JSON.stringify({ checks }, null, 2));
        const fails = checks.filter((c) => c.status === "fail").length;
        const warns = checks.filter((c) => c.status === "warn").length;
        if (!opts.json)
          process.stdout.write(`\n${fails} failed, ${warns} warning(s), ${checks.length} checks\n`);
        process.exitCode = fails ? 1 : 0;
      },
    );
}
