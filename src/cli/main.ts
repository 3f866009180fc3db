import { readFileSync } from "node:fs";
import { Command } from "commander";
import { registerClients } from "./clients.js";
import { registerDoctor } from "./doctor.js";
import { registerInit } from "./init.js";
import { registerLaunch } from "./launch.js";
import { registerLogs } from "./logs.js";
import { registerModels } from "./models.js";
import { registerPull } from "./pull.js";
import { registerReload } from "./reload.js";
import { registerRequests } from "./requests.js";
import { registerServe } from "./serve.js";
import { registerService } from "./service.js";
import { registerStatus } from "./status.js";
import { registerUp } from "./up.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command()
  .name("clawbridge")
  .description(
    "Run Anthropic- and OpenAI-speaking agent clients (OpenClaw, Claude Code, SDKs) on local models.",
  )
  .version(pkg.version)
  .showHelpAfterError();

registerInit(program);
registerServe(program);
registerModels(program);
registerUp(program);
registerClients(program);
registerDoctor(program);
registerService(program);
registerStatus(program);
registerReload(program);
registerLogs(program);
registerRequests(program);
registerPull(program);
registerLaunch(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`clawbridge: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
