import { z } from "zod";
import { camelKeys, snakeKeys } from "../../ir/keys.js";
import { defineKind } from "../kind.js";
import { findModels } from "./find.js";
import { EmbeddedBackend, type EmbeddedSettings } from "./index.js";

/** GGUF models run in this process (node-llama-cpp): no server, no URL. */
export const embeddedKind = defineKind<EmbeddedSettings>({
  kind: "embedded",
  label: "the embedded engine",
  fields: {
    models_dir: z.string().min(1).optional(),
    paths: z.array(z.string().min(1)).optional(),
    ollama_models: z.union([z.string().min(1), z.literal(false)]).optional(),
    threads: z.number().int().positive().optional(),
    context_size: z.number().int().positive().optional(),
    parallel: z.number().int().positive().optional(),
    gpu: z.enum(["auto", "off"]).optional(),
  },
  // the file's names camelCased, but for Ollama's models folder
  read(f) {
    const { ollamaModels, ...rest } = camelKeys(f) as EmbeddedSettings & { ollamaModels?: string | false };
    return ollamaModels === undefined ? rest : { ...rest, ollamaDir: ollamaModels };
  },
  write({ ollamaDir, ...rest }) {
    return snakeKeys(ollamaDir === undefined ? rest : { ...rest, ollamaModels: ollamaDir });
  },
  inProcessUrl: "embedded://in-process",
  create: (o) => new EmbeddedBackend(o),
  onDisk(env) {
    const found = findModels({}, env);
    return found.length ? { settings: {}, models: found } : undefined;
  },
  doctor: {
    inProcess: { title: "in-process GGUF models", found: (n) => `${n} model(s) found on disk` },
  },
});
