import { z } from "zod";
import { fetchJson } from "../http/client.js";
import { defineKind } from "../kind.js";
import { OPENAI_COMPAT_ERRORS } from "./errors.js";
import { FLAVORS, type Flavor, OpenAICompatBackend } from "./index.js";

/** Who each server says owns its models (`/v1/models` `owned_by`), and so which it is. */
const OWNERS: Record<string, Flavor> = { llamacpp: "llamacpp", vllm: "vllm", organization_owner: "lmstudio" };
const LABELS: Record<Flavor, string> = {
  generic: "an OpenAI-compatible server",
  llamacpp: "llama.cpp",
  vllm: "vLLM",
  lmstudio: "LM Studio",
  tinygrad: "TinyGrad",
};

/** How each server is started, for the doctor's advice. */
const START: Partial<Record<Flavor, string>> = {
  llamacpp: "`llama-server -m model.gguf --port 8080`",
  tinygrad: "`python3 tinygrad/apps/llm.py --serve PORT`",
  vllm: "`vllm serve MODEL`",
};

/** Anything that speaks `/v1/chat/completions`; `flavor` says which server it is, for its quirks. */
export const openaiCompatKind = defineKind<{ flavor?: Flavor; cacheAffinity?: boolean }>({
  errors: OPENAI_COMPAT_ERRORS,
  kind: "openai-compat",
  label: "OpenAI-compatible",
  names: FLAVORS,
  fields: {
    flavor: z.enum(FLAVORS).optional(),
    // llama.cpp: send each conversation to the slot that holds its prompt (default true)
    cache_affinity: z.boolean().optional(),
  },
  create: (o) => new OpenAICompatBackend(o),
  local: [
    { name: "llamacpp", url: "http://127.0.0.1:8080/v1", probe: "/models", settings: { flavor: "llamacpp" } },
    { name: "lmstudio", url: "http://127.0.0.1:1234/v1", probe: "/models", settings: { flavor: "lmstudio" } },
    { name: "vllm", url: "http://127.0.0.1:8000/v1", probe: "/models", settings: { flavor: "vllm" } },
  ],
  at: (root) => ({ url: `${root}/v1`, probe: "/models" }),
  foundName: "server",
  async identify(root, dispatcher) {
    const url = `${root}/v1`;
    const list = (await fetchJson("probe", `${url}/models`, dispatcher, { timeoutMs: 1500 }).catch(
      () => undefined,
    )) as { data?: Array<{ owned_by?: unknown }> } | undefined;
    if (!Array.isArray(list?.data)) return undefined;
    const flavor = OWNERS[String(list.data[0]?.owned_by)] ?? "generic";
    return {
      label: LABELS[flavor],
      name: flavor === "generic" ? "server" : flavor,
      url,
      ...(flavor !== "generic" ? { settings: { flavor } } : {}),
    };
  },
  litellm: {
    openai: { defaultBase: "https://api.openai.com/v1" },
    hosted_vllm: { defaultBase: "http://localhost:8000/v1", settings: { flavor: "vllm" } },
    lm_studio: { defaultBase: "http://localhost:1234/v1", settings: { flavor: "lmstudio" } },
    llamafile: { defaultBase: "http://localhost:8080/v1", settings: { flavor: "llamacpp" } },
  },
  doctor: {
    start: (s) => (s.flavor && START[s.flavor]) || "its start command",
    urlAdvice(url) {
      const u = new URL(url);
      const path = u.pathname.replace(/\/+$/, "");
      if (!path || /^\/v\d+$/.test(path)) return undefined;
      return { detail: `${url}: OpenAI-compatible servers answer under /v1`, fix: `url: ${u.origin}/v1` };
    },
    wrongKind: (url, configured, found) => {
      const flavor = found?.settings?.flavor;
      return found && flavor
        ? `this is ${found.label}, not ${configured}: set kind: openai-compat (flavor: ${flavor}) and url: ${url}`
        : `this server speaks the OpenAI API, not ${configured}'s: set kind: openai-compat and url: ${url}`;
    },
  },
});
