import type { Command } from "commander";
import { GatewayError } from "../ir/errors.js";
import { LOG_LEVELS } from "../log.js";
import type { ModelProfile } from "../ir/contract.js";
import type { Router } from "../routing/router.js";
import { Supervisor } from "../up/supervisor.js";
import { warmConversations, warmUp } from "../up/warmup.js";
import type { Logger } from "../log.js";
import type { BackendConfig } from "../config/types.js";
import { findConfigFile, type ServeOptions, serve } from "./serve.js";

const say = (line: string) => process.stdout.write(`${line}\n`);

/** The model to warm a backend up with: the first configured one it serves, else the first it lists. */
function profileOn(router: Router, backend: string): ModelProfile | undefined {
  for (const m of router.models()) {
    if (m.backend !== backend) continue;
    const t = router.resolve(m.id).find((t) => t.profile.backend.name === backend);
    if (t) return t.profile;
  }
  return undefined;
}

/** The host and port a backend's server listens on, from its URL. */
function listenOf(url: string): { listen?: { host: string; port: number } } {
  try {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
    return { listen: { host: u.hostname.replace(/^\[|\]$/g, ""), port } };
  } catch {
    return {};
  }
}

/**
 * Warms a backend whose server just started: the configured prompt lengths (the model loaded,
 * TinyGrad's JIT compiled), then the last conversations it served (their prompts in its cache).
 */
async function warmBackend(
  router: Router,
  b: BackendConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const lengths = b.start?.warmup ?? [];
  if (lengths.length) {
    const profile = profileOn(router, b.name);
    if (!profile) say(`${b.name}: no model to warm up with`);
    else {
      say(`${b.name}: warming up ${profile.model} with ${lengths.join(", ")}-token prompts`);
      for (const r of await warmUp(profile, lengths, log, signal)) {
        say(
          `  ${String(r.tokens).padStart(6)} tokens: ${r.error ? `failed: ${r.error}` : `${(r.ms / 1000).toFixed(2)} s`}`,
        );
      }
    }
  }
  const recent = router.recentConversations(b.name);
  if (!recent.length) return;
  say(`${b.name}: reading the prompts of its last ${recent.length} conversation(s) into its cache`);
  for (const r of await warmConversations(recent, log, signal)) {
    say(
      `  ${String(r.messages).padStart(4)} messages: ${r.error ? `failed: ${r.error}` : `${(r.ms / 1000).toFixed(2)} s`}`,
    );
  }
}

export function registerUp(program: Command): void {
  program
    .command("up")
    .description(
      "start every backend that has a `start` command in the config (or adopt it when it already runs), wait for it, warm it up, then serve; restarts a backend that exits or hangs, and stops them all on Ctrl-C",
    )
    .option("-c, --config <file>", "config file (the backends' `start` settings)")
    .option("--host <host>", "listen address (default 127.0.0.1)")
    .option("-p, --port <port>", "listen port (default 4000)")
    .option("--log-level <level>", LOG_LEVELS.join(", "))
    .option("--log-file <file>", "write the JSON log (the backends' output too) to this file")
    .option("--check-interval <s>", "seconds between health checks of running backends", "10")
    .action(async (opts: ServeOptions & { checkInterval: string }) => {
      if (!findConfigFile(opts.config)) {
        process.stderr.write(
          "clawbridge up: no config file. `up` starts the backends listed with a `start` command in it (see README, Configuration); to serve servers that already run, use `clawbridge serve`.\n",
        );
        process.exitCode = 2;
        return;
      }
      const checkIntervalMs = Math.max(0.1, Number(opts.checkInterval) || 10) * 1000;
      process.exitCode = await serve({
        ...opts,
        prepare: async (gateway, config, log) => {
          const supervisors: Supervisor[] = [];
          const controller = new AbortController();
          const stopAll = async () => {
            controller.abort();
            await Promise.all(supervisors.map((s) => s.stop()));
          };
          let interrupted = false;
          const onSignal = () => {
            interrupted = true;
            void stopAll();
          };
          process.once("SIGINT", onSignal);
          process.once("SIGTERM", onSignal);
          try {
            const started = await Promise.all(
              config.backends
                .filter((b) => b.start)
                .map(async (b) => {
                  const backend = gateway.router.backends.get(b.name)!;
                  const s = new Supervisor({
                    onRestarted: async () => {
                      // a new server: its caches are empty
                      backend.forget?.();
                      await warmBackend(gateway.router, b, log, controller.signal);
                    },
                    name: b.name,
                    spec: b.start!,
                    healthy: () =>
                      backend.discover().then(
                        () => true,
                        () => false,
                      ),
                    say,
                    log,
                    checkIntervalMs,
                    ...listenOf(b.url),
                  });
                  supervisors.push(s);
                  await s.ensure();
                  return b;
                }),
            );
            if (interrupted) throw new Error("interrupted while starting the backends; stopped them");
            if (!started.length) say("No backend has a `start` command in the config: serving what runs.");
            await gateway.router.discover();
            for (const b of started) await warmBackend(gateway.router, b, log, controller.signal);
          } catch (e) {
            await stopAll();
            throw e instanceof GatewayError ? new Error(e.message) : e;
          } finally {
            // from here on, serve's own shutdown closes the gateway first, then calls the cleanup
            process.off("SIGINT", onSignal);
            process.off("SIGTERM", onSignal);
          }
          return stopAll;
        },
      });
    });
}
