import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import type { Command } from "commander";
import { createDispatcher, type Dispatcher } from "../backends/http/client.js";
import { claudeCodeClient } from "../clients/claude-code.js";
import { codexClient } from "../clients/codex.js";
import type { LaunchClient } from "../clients/launcher.js";
import { openclawClient } from "../clients/openclaw.js";
import { ConfigError, loadConfigFile } from "../config/load.js";
import { detectServing } from "../config/detect.js";
import { DEFAULT_PORT, type GatewayConfig } from "../config/types.js";
import { GatewayError } from "../ir/errors.js";
import { createLogger } from "../log.js";
import { buildGateway, type Gateway } from "../server/app.js";
import { noServerNoModel } from "./from-nothing.js";
import { findConfigFile } from "./serve.js";

/**
 * `clawbridge launch <client>`: one command from a terminal to an agent running on local models. It makes sure a
 * gateway runs (the one already listening on the configured address, else one started in this process for the
 * session and stopped when the client exits), points the client at it for this run only, and runs the client in
 * the terminal, its exit code passed through.
 */

export const LAUNCH_CLIENTS: readonly LaunchClient[] = [claudeCodeClient, openclawClient, codexClient];

const warn = (line: string) => process.stderr.write(`clawbridge: ${line}\n`);

/** The executable `command` on PATH, or undefined. */
export function findOnPath(command: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const exts = process.platform === "win32" ? (env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";") : [""];
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    for (const ext of exts) {
      const file = join(dir, command + ext);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** A model the gateway serves, as far as it is known here. */
interface ServedModel {
  id: string;
  contextWindow?: number;
  /** Native tool calling: false when the server says it has none; undefined when unknown. */
  tools?: boolean;
}

/** The gateway the client talks to. */
interface GatewayHandle {
  baseUrl: string;
  apiKey: string;
  models: ServedModel[];
  /** Said to the user: which gateway this is. */
  description: string;
  /** The log of a gateway started for this session. */
  logFile?: string;
  /** Stops it when it was started for this session; nothing otherwise. */
  stop(): Promise<void>;
}

type Found = GatewayHandle | { exit: number };

/** A clawbridge answering at `url`: its models (with their windows), or why it cannot be used. */
async function running(url: string, key: string | undefined): Promise<ServedModel[] | "refused" | undefined> {
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  try {
    const health = await fetch(`${url}/health`, { headers, signal: AbortSignal.timeout(2000) });
    const h = (await health.json()) as { status?: unknown };
    if (!health.ok || typeof h.status !== "string") return undefined;
    const res = await fetch(`${url}/v1/models`, { headers, signal: AbortSignal.timeout(10_000) });
    if (res.status === 401 || res.status === 403) return "refused";
    if (!res.ok) return undefined;
    const body = (await res.json()) as { data?: Array<{ id: string; context_window?: number }> };
    return (body.data ?? [])
      .filter((m) => m.id !== "*")
      .map((m) => ({ id: m.id, ...(m.context_window ? { contextWindow: m.context_window } : {}) }));
  } catch {
    return undefined;
  }
}

/** Starts a gateway in this process for the session: the config's address, or any free port when that is taken. */
async function startHere(
  config: GatewayConfig,
  dispatcher: Dispatcher,
  logFile: string,
): Promise<{ gateway: Gateway; url: string; log: ReturnType<typeof createLogger> } | { exit: number }> {
  const log = createLogger({ ...config.log, file: config.log.file ?? logFile });
  let gateway: Gateway;
  try {
    gateway = buildGateway({ config, dispatcher, log });
  } catch (e) {
    if (e instanceof GatewayError) {
      warn(e.message);
      return { exit: 2 };
    }
    throw e;
  }
  await gateway.router.discover();
  let url: string;
  try {
    url = await gateway.listen(config.server.host, config.server.port);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE") throw e;
    // something else holds the port: this session's gateway needs none in particular
    url = await gateway.listen(config.server.host, 0);
  }
  return {
    gateway,
    url: url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://127.0.0.1:"),
    log,
  };
}

async function findGateway(
  configOption: string | undefined,
  client: string,
  scratch: string,
): Promise<Found> {
  const file = findConfigFile(configOption);
  let config: GatewayConfig | undefined;
  try {
    if (file) config = loadConfigFile(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      warn(e.message);
      return { exit: 2 };
    }
    throw e;
  }
  const host = config?.server.host ?? "127.0.0.1";
  const port = config?.server.port ?? DEFAULT_PORT;
  const key = config?.server.masterKey ?? process.env.CLAWBRIDGE_MASTER_KEY;
  const local = ["0.0.0.0", "::", ""].includes(host) ? "127.0.0.1" : host;
  const url = `http://${local.includes(":") ? `[${local}]` : local}:${port}`;
  if (port !== 0) {
    const there = await running(url, key);
    if (there === "refused") {
      warn(
        `the clawbridge at ${url} refuses the key: give launch its config (--config) or set CLAWBRIDGE_MASTER_KEY`,
      );
      return { exit: 2 };
    }
    if (there) {
      return {
        baseUrl: url,
        apiKey: key ?? "clawbridge-local",
        models: there,
        description: `the clawbridge already running at ${url}`,
        stop: async () => {},
      };
    }
  }
  const dispatcher = createDispatcher();
  if (!config) config = await detectServing(dispatcher);
  if (!config.backends.length) {
    await dispatcher.close();
    return { exit: await noServerNoModel(client) };
  }
  const logFile = join(scratch, "gateway.log");
  const started = await startHere(config, dispatcher, logFile);
  if ("exit" in started) {
    await dispatcher.close();
    return started;
  }
  const { gateway } = started;
  const router = gateway.router;
  const models: ServedModel[] = router
    .models()
    .filter((m) => m.id !== "*")
    .map((m) => {
      const p = router.resolve(m.id)[0]?.profile;
      return {
        id: m.id,
        ...(p?.contextWindow ? { contextWindow: p.contextWindow } : {}),
        ...(p?.supportsTools !== undefined ? { tools: p.supportsTools } : {}),
      };
    });
  return {
    baseUrl: started.url,
    apiKey: config.server.masterKey ?? "clawbridge-local",
    models,
    description: `a clawbridge started for this session at ${started.url} (config: ${config.source})`,
    logFile: config.log.file ?? logFile,
    stop: async () => {
      await gateway.close(2000);
      await dispatcher.close();
      await new Promise<void>((resolve) => started.log.flush(() => resolve()));
    },
  };
}

/** What to say of the model's window and tools for this client; nothing when all is well. */
export function modelWarnings(client: LaunchClient, m: ServedModel): string[] {
  const out: string[] = [];
  if (m.contextWindow === undefined)
    out.push(
      `the window of ${m.id} is not known (set context_window in the config); ${client.title} needs at least ${client.minWindow} tokens`,
    );
  else if (m.contextWindow < client.minWindow)
    out.push(
      `${m.id} serves a ${m.contextWindow}-token window, but ${client.title} needs at least ${client.minWindow}: ${client.windowNeed}. Expect context errors; serve the model with a larger window (context_window / the server's context size).`,
    );
  if (m.tools === false)
    out.push(
      `${m.id} has no native tool calling: clawbridge emulates it in the prompt, which smaller models follow less reliably`,
    );
  return out;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

/** Runs the client in this terminal; resolves with its exit code (128 + the signal's number when killed). */
function runClient(exe: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(exe, args, { stdio: "inherit", env });
    // Ctrl-C and Ctrl-\ reach the client from the terminal itself (same process group): this process only
    // outlives them, to stop its gateway after the client. A TERM or HUP sent to this process is passed on.
    const ignore = () => {};
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on("SIGINT", ignore);
    process.on("SIGQUIT", ignore);
    process.on("SIGTERM", forward);
    process.on("SIGHUP", forward);
    const done = (code: number) => {
      process.off("SIGINT", ignore);
      process.off("SIGQUIT", ignore);
      process.off("SIGTERM", forward);
      process.off("SIGHUP", forward);
      resolve(code);
    };
    child.on("error", (e) => {
      warn(`cannot start ${exe}: ${e.message}`);
      done(126);
    });
    child.on("exit", (code, signal) => done(code ?? 128 + (SIGNAL_NUMBERS[signal ?? ""] ?? 0)));
  });
}

export async function launch(
  name: string,
  clientArgs: string[],
  opts: { config?: string; model?: string },
): Promise<number> {
  const client = LAUNCH_CLIENTS.find((c) => c.name === name);
  if (!client) {
    warn(`launch knows ${LAUNCH_CLIENTS.map((c) => c.name).join(", ")}; not '${name}'`);
    return 2;
  }
  const exe = findOnPath(client.command);
  if (!exe) {
    warn(
      `${client.title} (\`${client.command}\`) is not on PATH. Install it with: npm install -g ${client.npmPackage}`,
    );
    return 127;
  }
  const scratch = mkdtempSync(join(tmpdir(), `clawbridge-launch-${client.name}-`));
  let keepScratch = false;
  let gateway: GatewayHandle | undefined;
  try {
    const found = await findGateway(opts.config, client.name, scratch);
    if ("exit" in found) return found.exit;
    gateway = found;
    const ids = gateway.models.map((m) => m.id);
    if (!ids.length) {
      warn(`${gateway.description} serves no model: see \`clawbridge status\` and \`clawbridge doctor\``);
      return 1;
    }
    if (opts.model && !ids.includes(opts.model)) {
      warn(`model ${opts.model} is not served; served: ${ids.join(", ")}`);
      return 2;
    }
    const model = gateway.models.find((m) => m.id === (opts.model ?? client.defaultModel(ids)))!;
    warn(`${client.title} on ${model.id}, through ${gateway.description}`);
    for (const w of [
      ...modelWarnings(client, model),
      ...(client.warnings?.(model.id, model.contextWindow) ?? []),
    ])
      warn(`warning: ${w}`);
    const plan = client.plan({
      baseUrl: gateway.baseUrl,
      apiKey: gateway.apiKey,
      model: model.id,
      ...(model.contextWindow ? { contextWindow: model.contextWindow } : {}),
      models: gateway.models,
      scratch,
      env: process.env,
    });
    const code = await runClient(exe, [...plan.args, ...clientArgs], { ...process.env, ...plan.env });
    if (code !== 0 && gateway.logFile === join(scratch, "gateway.log")) {
      keepScratch = true;
      warn(`${client.title} exited with ${code}; the gateway's log is ${gateway.logFile}`);
    }
    return code;
  } finally {
    await gateway?.stop();
    if (!keepScratch) rmSync(scratch, { recursive: true, force: true });
  }
}

export function registerLaunch(program: Command): void {
  program
    .command("launch")
    .description(
      `run an agent client (${LAUNCH_CLIENTS.map((c) => c.name).join(", ")}) on clawbridge for this session: uses the running gateway or starts one until the client exits, points the client at it without changing its settings; arguments after -- go to the client`,
    )
    .argument("<client>", LAUNCH_CLIENTS.map((c) => `${c.name} (${c.title})`).join(", "))
    .argument("[args...]", "the client's own arguments (after --)")
    .option("-c, --config <file>", "clawbridge config file")
    .option("-m, --model <id>", "a model id the gateway serves (default: the client's pick of those served)")
    .action(async (name: string, args: string[], opts: { config?: string; model?: string }) => {
      process.exitCode = await launch(name, args, opts);
    });
}
