import { fetchJson } from "../http.js";
import { defineKind } from "../kind.js";
import { OllamaBackend } from "./index.js";

const DEFAULT_BASE = "http://localhost:11434";

/** Ollama: its native API (`/api/chat`), the window chosen per request (num_ctx). */
export const ollamaKind = defineKind({
  kind: "ollama",
  label: "Ollama",
  windowPerRequest: true,
  // a name without a tag is the `latest` one
  listedAs: (model) => (model.includes(":") ? [model] : [model, `${model}:latest`]),
  create: (o) => new OllamaBackend(o),
  local: [{ name: "ollama", url: "http://127.0.0.1:11434", probe: "/api/tags" }],
  at: (root) => ({ url: root, probe: "/api/tags" }),
  foundName: "ollama",
  // Ollama's own route: llama.cpp answers /api/tags too, but not /api/version
  async identify(root, dispatcher) {
    const v = (await fetchJson("probe", `${root}/api/version`, dispatcher, { timeoutMs: 1500 }).catch(
      () => undefined,
    )) as { version?: unknown } | undefined;
    return typeof v?.version === "string"
      ? { label: `Ollama ${v.version}`, name: "ollama", url: root }
      : undefined;
  },
  litellm: { ollama: { defaultBase: DEFAULT_BASE }, ollama_chat: { defaultBase: DEFAULT_BASE } },
  doctor: {
    start: () => "`ollama serve`",
    urlAdvice(url) {
      const u = new URL(url);
      const path = u.pathname.replace(/\/+$/, "");
      if (!path) return undefined;
      return {
        detail: `${url} has a path (${path}); Ollama's native API hangs off the root`,
        fix: `url: ${u.origin}`,
      };
    },
    wrongKind: (url, _configured, found) =>
      `this is ${found?.label ?? "an Ollama server"}: set kind: ollama and url: ${url}`,
    missingModel: (model) => `ollama pull ${model}`,
  },
  /** What Ollama has in memory right now (/api/ps); the other servers load one model at start. */
  async loaded(backend, url, dispatcher) {
    const ps = (await fetchJson(backend, `${url}/api/ps`, dispatcher, { timeoutMs: 2000 }).catch(
      () => undefined,
    )) as { models?: Array<{ name?: unknown }> } | undefined;
    return ps ? (ps.models ?? []).map((m) => String(m.name)) : undefined;
  },
});
