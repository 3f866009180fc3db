import { defaultModelsDir } from "../backends/embedded/find.js";
import { localServers } from "../backends/registry.js";

/**
 * What `launch` does when no model server answers and no model is on disk: for now it says how to get one (a
 * server to start, a GGUF file to pull). This is the place where offering, pulling and serving a model that fits
 * the machine goes; it returns the exit code when it gives up.
 */
export async function noServerNoModel(client: string): Promise<number> {
  const ports = localServers()
    .map((s) => new URL(s.url).port)
    .join(", ");
  process.stderr.write(
    [
      `clawbridge launch ${client}: no model to run it on: no clawbridge is running, no local server answered on ${ports}, and no GGUF model was found on disk.`,
      "  Start one (e.g. `ollama serve` and `ollama pull qwen2.5-coder:7b`, or `llama-server -m model.gguf --port 8080`),",
      `  or put a GGUF model in ${defaultModelsDir()} (\`clawbridge pull <url>\`) to run it in-process,`,
      `  or write a config file (see README, Configuration) and run: clawbridge launch ${client} --config clawbridge.yaml`,
      "",
    ].join("\n"),
  );
  return 1;
}
