/**
 * `clawbridge reload`: asks the running gateway to re-read its config file (what SIGHUP does), by
 * POST /admin/reload behind the master key. An HTTP call, not a signal: it finds the gateway as
 * `status` does (whether `serve`, `up` or a service started it, on any OS, with no pid file to go
 * stale), and the answer says whether the new config took effect or its file:line error.
 */
import type { Command } from "commander";
import { redact } from "../redact.js";
import { gatewayAddress } from "./status.js";

export function registerReload(program: Command): void {
  program
    .command("reload")
    .description(
      "make the running gateway re-read its config file (as SIGHUP does); requests in flight go on",
    )
    .option("-c, --config <file>", "config file (for the address and key)")
    .option("--url <url>", "the gateway's URL (default: from the config, or http://127.0.0.1:4000)")
    .action(async (opts: { config?: string; url?: string }) => {
      const { url, key } = gatewayAddress(opts);
      let status: number;
      let answer: {
        ok?: boolean;
        error?: string;
        source?: string;
        models?: string[];
        needsRestart?: string[];
      };
      try {
        const res = await fetch(`${url}/admin/reload`, {
          method: "POST",
          signal: AbortSignal.timeout(60_000),
          ...(key ? { headers: { "x-api-key": key } } : {}),
        });
        status = res.status;
        const text = await res.text();
        try {
          answer = JSON.parse(text);
        } catch {
          answer = { error: text.slice(0, 300) };
        }
      } catch (e) {
        process.stderr.write(
          `clawbridge is not answering at ${redact(url)} (${redact((e as Error).message)}): nothing to reload.\n`,
        );
        process.exitCode = 1;
        return;
      }
      if (status === 200 && answer.ok) {
        process.stdout.write(
          `clawbridge at ${redact(url)} reloaded ${answer.source}: serving ${answer.models?.join(", ") || "no models"}\n`,
        );
        if (answer.needsRestart?.length)
          process.stdout.write(`  unchanged until a restart: ${answer.needsRestart.join(", ")}\n`);
        return;
      }
      const why =
        typeof answer.error === "string"
          ? answer.error
          : ((answer as { error?: { message?: string } }).error?.message ?? `HTTP ${status}`);
      process.stderr.write(`clawbridge: not reloaded, the config in effect is kept: ${why}\n`);
      process.exitCode = 1;
    });
}
