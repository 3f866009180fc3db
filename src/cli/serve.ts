import { FAST_PATHS, type FastPath, fastPathsOn } from "../fast-paths.js";
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { createDispatcher } from "../backends/http/client.js";
import { ConfigError, loadConfigFile } from "../config/load.js";
import { defaultModelsDir } from "../backends/embedded/find.js";
import { localServers } from "../backends/registry.js";
import { detectLocalServers, detectOnDisk, detectedConfig } from "../config/detect.js";
import type { GatewayConfig } from "../config/types.js";
import { GatewayError } from "../ir/errors.js";
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from "../log.js";
import { Journal } from "../journal/journal.js";
import { journalSettings } from "../journal/settings.js";
import { buildGateway } from "../server/app.js";
import type { ReloadOutcome } from "../server/routes/index.js";
import { redact } from "../redact.js";
import { missingModels } from "../routing/served.js";
import { offerModel } from "../setup/offer.js";

export interface ServeOptions {
  /**
   * Runs before the gateway discovers its models and listens (`up` starts the backends here);
   * returns what to do on shutdown, after the gateway has closed.
   */
  prepare?: (
    gateway: ReturnType<typeof buildGateway>,
    config: GatewayConfig,
    log: Logger,
  ) => Promise<() => Promise<void>>;
  config?: string;
  host?: string;
  port?: string;
  logLevel?: string;
  logFile?: string;
  /** With nothing to serve, download the catalogue model that fits without asking. */
  yes?: boolean;
}

/** The config file to use: --config, $CLAWBRIDGE_CONFIG, or ./clawbridge.yaml when present. */
export function findConfigFile(explicit: string | undefined, env = process.env): string | undefined {
  if (explicit) return explicit;
  if (env.CLAWBRIDGE_CONFIG) return env.CLAWBRIDGE_CONFIG;
  for (const f of ["clawbridge.yaml", "clawbridge.yml"]) if (existsSync(f)) return f;
  return undefined;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description(
      "run the gateway (with no config file, serve the local servers found on their default ports)",
    )
    .option("-c, --config <file>", "config file: clawbridge's own YAML or a LiteLLM config.yaml")
    .option("--host <host>", "listen address (default 127.0.0.1)")
    .option("-p, --port <port>", "listen port (default 4000)")
    .option("--log-level <level>", LOG_LEVELS.join(", "))
    .option("--log-file <file>", "write the JSON log to this file instead of stderr")
    .option(
      "-y, --yes",
      "with no server and no model on disk, download the catalogue model that fits this machine without asking",
    )
    .action(async (opts: ServeOptions) => {
      process.exitCode = await serve(opts);
    });
}

const say = (line: string) => process.stdout.write(`${line}\n`);

export async function serve(opts: ServeOptions): Promise<number> {
  const dispatcher = createDispatcher();
  let config: GatewayConfig;
  const file = findConfigFile(opts.config);
  let hints: string[] | undefined;
  try {
    if (file) config = loadConfigFile(file);
    else {
      const found = await detectLocalServers(dispatcher);
      let embedded = found.length ? undefined : detectOnDisk();
      if (!found.length && !embedded) {
        // from nothing: offer the model that fits this machine, served in-process once pulled
        const pulled = await offerModel({
          interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
          yes: Boolean(opts.yes),
          log: say,
          instead: false,
        });
        if (pulled) embedded = detectOnDisk();
      }
      config = detectedConfig(embedded ? [embedded] : found);
      if (embedded) {
        say(
          `No config file and no local server: serving the ${embedded.models} GGUF model${embedded.models === 1 ? "" : "s"} found on disk in-process (embedded engine):`,
        );
        for (const m of embedded.found) say(`  ${m.name}  (${m.from}: ${m.path})`);
      } else if (found.length) {
        say("No config file: serving the local servers found on their default ports:");
        for (const f of found)
          say(`  ${f.backend.name} at ${f.backend.url} (${f.models} model${f.models === 1 ? "" : "s"})`);
      } else {
        hints = [
          `No config file, no local server answered on ${localServers()
            .map((s) => new URL(s.url).port)
            .join(", ")}, and no GGUF model was found on disk.`,
          "Start one (e.g. `ollama serve`, or `llama-server -m model.gguf --port 8080`) and restart clawbridge,",
          `or put a GGUF model in ${defaultModelsDir()} (\`clawbridge pull <url>\`) to run it in-process,`,
          "or write a config file (see README, Configuration) and run: clawbridge serve --config clawbridge.yaml",
        ];
        for (const h of hints) say(h);
      }
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`clawbridge: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (opts.host) config.server.host = opts.host;
  if (opts.port !== undefined) {
    const port = Number(opts.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`clawbridge: --port must be a number from 0 to 65535, not '${opts.port}'\n`);
      return 2;
    }
    config.server.port = port;
  }
  if (opts.logLevel) {
    if (!LOG_LEVELS.includes(opts.logLevel as LogLevel)) {
      process.stderr.write(
        `clawbridge: --log-level must be one of ${LOG_LEVELS.join(", ")}, not '${opts.logLevel}'\n`,
      );
      return 2;
    }
    config.log.level = opts.logLevel;
  }
  if (opts.logFile) config.log.file = opts.logFile;
  let fastPaths: FastPath[];
  try {
    fastPaths = fastPathsOn();
  } catch (e) {
    process.stderr.write(`clawbridge: ${(e as Error).message}\n`);
    return 2;
  }
  const log = createLogger(config.log);
  for (const w of config.warnings) log.warn(w);
  const off = (Object.keys(FAST_PATHS) as FastPath[]).filter((n) => !fastPaths.includes(n));
  if (off.length) log.info({ off }, "fast paths turned off (CLAWBRIDGE_FAST_PATHS): see docs/fast-paths.md");

  // the request journal: on unless turned off; one that cannot be opened costs itself, not the gateway
  const journalWanted = journalSettings(config);
  const journal = journalWanted ? Journal.open(journalWanted, log) : undefined;
  let gateway: ReturnType<typeof buildGateway>;
  // one reload at a time (SIGHUP, POST /admin/reload); each re-reads the file
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (why: string): Promise<ReloadOutcome> => {
    const next = reloading.then(() => reloadFrom(file!, gateway, opts, log, why));
    reloading = next.catch(() => {});
    return next;
  };
  try {
    gateway = buildGateway({
      config,
      dispatcher,
      log,
      journal,
      ...(hints ? { hints } : {}),
      ...(file ? { reload: () => reload("clawbridge reload") } : {}),
    });
  } catch (e) {
    journal?.close();
    if (e instanceof GatewayError) {
      process.stderr.write(`clawbridge: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  // SIGHUP re-reads the config (it no longer ends the gateway)
  const onHangup = () => {
    if (!file) {
      log.warn("SIGHUP: started without a config file, nothing to re-read (backends are watched anyway)");
      return;
    }
    reload("SIGHUP").catch((e: unknown) => log.error({ err: e }, "reload failed"));
  };
  process.on("SIGHUP", onHangup);

  let cleanup: (() => Promise<void>) | undefined;
  if (opts.prepare) {
    try {
      cleanup = await opts.prepare(gateway, config, log);
    } catch (e) {
      process.stderr.write(`clawbridge: ${(e as Error).message}\n`);
      process.off("SIGHUP", onHangup);
      await gateway.close(0);
      journal?.close();
      return 1;
    }
  }
  await gateway.router.discover();
  gateway.router.startWatching();
  let address: string;
  try {
    address = await gateway.listen(config.server.host, config.server.port);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    process.stderr.write(
      code === "EADDRINUSE"
        ? `clawbridge: port ${config.server.port} on ${config.server.host} is already in use (another clawbridge?). Use --port.\n`
        : `clawbridge: cannot listen on ${config.server.host}:${config.server.port}: ${(e as Error).message}\n`,
    );
    process.off("SIGHUP", onHangup);
    await cleanup?.();
    journal?.close();
    return 1;
  }
  const models = gateway.router.models();
  say(`clawbridge listening on ${address}  (config: ${config.source})`);
  for (const b of gateway.router.backends.values()) {
    const d = gateway.router.discovered.get(b.name);
    const state = d instanceof GatewayError ? `NOT REACHABLE: ${d.message}` : `${d?.length ?? 0} model(s)`;
    say(`  backend ${b.name} (${b.kind}) ${redact(b.baseUrl)} — ${redact(state)}`);
  }
  say(`  models: ${models.map((m) => m.id).join(", ") || "none"}`);
  for (const m of missingModels(gateway.router)) {
    const line = `model ${m.id}: backend ${m.backend} does not have ${m.model} (it has: ${m.has.join(", ") || "nothing"}); ${m.fix}`;
    say(`  WARNING ${line}`);
    log.warn(line);
  }
  say(`  Anthropic clients: base URL ${address}   OpenAI clients: base URL ${address}/v1`);
  if (journal) say(`  request journal: ${journal.path}  (clawbridge requests)`);
  say(`  dashboard: ${address}/${config.server.masterKey ? "  (it asks for the master key)" : ""}`);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, "shutting down");
      say(`clawbridge: ${signal}, shutting down`);
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      gateway
        .close(5000)
        .then(() => dispatcher.close())
        .then(() => journal?.close())
        .then(() => cleanup?.())
        .finally(resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  process.off("SIGHUP", onHangup);
  return 0;
}

/**
 * Reads the config file again and gives it to the gateway: a valid one takes effect for new
 * requests; an invalid one is refused (its file:line error logged) and the one in effect kept.
 * The command line's settings (--host, --port, --log-level, --log-file) still win.
 */
async function reloadFrom(
  file: string,
  gateway: ReturnType<typeof buildGateway>,
  opts: ServeOptions,
  log: Logger,
  why: string,
): Promise<ReloadOutcome> {
  let next: GatewayConfig;
  try {
    next = loadConfigFile(file);
  } catch (e) {
    const error = e instanceof ConfigError ? e.message : `${file}: ${(e as Error).message}`;
    log.error({ trigger: why, file }, `config not reloaded, the one in effect is kept: ${error}`);
    return { ok: false, error };
  }
  if (opts.host) next.server.host = opts.host;
  if (opts.port !== undefined) next.server.port = Number(opts.port);
  if (opts.logLevel) next.log.level = opts.logLevel;
  if (opts.logFile) next.log.file = opts.logFile;
  const was = gateway.config;
  let needsRestart: string[];
  try {
    ({ needsRestart } = await gateway.reload(next));
  } catch (e) {
    const error = (e as Error).message;
    log.error({ trigger: why, file }, `config not reloaded, the one in effect is kept: ${error}`);
    return { ok: false, error };
  }
  if (JSON.stringify(next.log) !== JSON.stringify(was.log)) needsRestart.push("log");
  for (const w of next.warnings) log.warn(w);
  const models = gateway.router.models().map((m) => m.id);
  log.info(
    { trigger: why, file, models, ...(needsRestart.length ? { needs_restart: needsRestart } : {}) },
    needsRestart.length
      ? `config reloaded; ${needsRestart.join(", ")} change only with a restart`
      : "config reloaded",
  );
  for (const m of missingModels(gateway.router))
    log.warn(
      `model ${m.id}: backend ${m.backend} does not have ${m.model} (it has: ${m.has.join(", ") || "nothing"}); ${m.fix}`,
    );
  return { ok: true, source: next.source, models, needsRestart };
}
