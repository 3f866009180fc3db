// Starts the peer @musistudio/llms (claude-code-router's core: a Fastify server that translates Anthropic
// /v1/messages to OpenAI-compatible providers) with the bench upstream as its only provider, named "up".
// Clients address it the way claude-code-router does after routing: `"model": "up,fake-model"`.
//
//   node --import tsx bench/peers/start-llms.ts --dir bench/peers --upstream http://127.0.0.1:PORT \
//     [--port 0] [--host 127.0.0.1]
//
// --dir is the folder whose node_modules holds the package (run.ts installs it there). Prints one JSON line
// `{"event":"listening","port":N}` on stdout once it listens. Self-contained (node: imports only) so that
// run.ts can run it as plain JavaScript from anywhere.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import { join, resolve } from "node:path";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function freePort(host: string): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once("error", rej);
    srv.listen(0, host, () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => res(addr.port));
    });
  });
}

async function main(): Promise<void> {
  const dir = resolve(arg("--dir") ?? "bench/peers");
  const upstream = arg("--upstream");
  if (!upstream) throw new Error("--upstream <url> is required");
  const host = arg("--host") ?? "127.0.0.1";
  let port = Number(arg("--port") ?? "0");
  if (port === 0) port = await freePort(host);

  const pkgDir = join(dir, "node_modules", "@musistudio", "llms");
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as {
    version?: string;
    main?: string;
    exports?: { "."?: { require?: string } };
  };
  // The CommonJS build: the ESM bundle does `require("child_process")` and fails to load.
  const entry = pkg.exports?.["."]?.require ?? pkg.main;
  if (!entry) throw new Error("@musistudio/llms: no CommonJS entry point in package.json");
  const loaded = createRequire(join(pkgDir, "package.json"))(join(pkgDir, entry)) as
    | (new (
        o: unknown,
      ) => any)
    | { default: new (o: unknown) => any };
  const Server = typeof loaded === "function" ? loaded : loaded.default;

  const server = new Server({
    initialConfig: {
      providers: [
        {
          name: "up",
          api_base_url: `${upstream.replace(/\/+$/, "")}/v1/chat/completions`,
          api_key: "bench",
          models: ["fake-model"],
        },
      ],
      HOST: host,
      PORT: String(port),
    },
    logger: { level: "warn" },
  });
  await server.start();
  process.stdout.write(`${JSON.stringify({ event: "listening", port, version: pkg.version })}\n`);

  // Never outlive the harness: exit when orphaned, and after --max-lifetime seconds in any case.
  const parentPid = process.ppid;
  const stop = (): void => process.exit(0);
  setInterval(() => {
    if (process.ppid !== parentPid) stop();
  }, 1000).unref();
  setTimeout(stop, Number(arg("--max-lifetime") ?? "3600") * 1000).unref();
  process.on("disconnect", stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`start-llms: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
