import { kindOf, listedAs } from "../backends/registry.js";
import { OPENCLAW_MIN_CONTEXT } from "../context/window.js";
import type { Served } from "../routing/served.js";
import type { Add } from "./check.js";

/** Each model: on its backend, its context window (and big enough for OpenClaw), its tool support. */
export function modelChecks(s: Served, add: Add): void {
  for (const { id, profile: p } of s.models) {
    const listed = s.router.discovered.get(p.backend.name);
    if (Array.isArray(listed)) {
      const names = new Set(listed.map((d) => d.name));
      const hints = kindOf(p.backend.kind)?.doctor;
      const present = listedAs(p.backend.kind, p.model).some((n) => names.has(n));
      if (!present && hints?.listsEveryModel !== false)
        add({
          id: `model:${id}:present`,
          status: "fail",
          title: `model ${id}: present on ${p.backend.name}`,
          detail: `${p.backend.name} does not have ${p.model} (it has: ${
            [...listed]
              .map((d) => d.name)
              .slice(0, 10)
              .join(", ") || "nothing"
          })`,
          fix:
            hints?.missingModel?.(p.model) ??
            `load ${p.model} in the server, or correct model: in the config`,
        });
    }
    const c = p.context;
    const window = p.contextWindow;
    const detail = window
      ? `${window} tokens (${c?.why ?? "configured"})`
      : "not known: the server does not say and the config does not state it";
    add({
      id: `model:${id}:context`,
      status: !window || c?.warnings.length ? "warn" : "ok",
      title: `model ${id}: context window`,
      detail: c?.warnings.length ? `${detail}; ${c.warnings.join("; ")}` : detail,
      ...(!window ? { fix: `set context_window for ${id} (the window the server runs with)` } : {}),
    });
    if (window && window < OPENCLAW_MIN_CONTEXT)
      add({
        id: `model:${id}:openclaw-minimum`,
        status: "warn",
        title: `model ${id}: big enough for OpenClaw`,
        detail: `${window} tokens; OpenClaw's first prompt alone is ~12k tokens and it needs ~16k`,
        fix: "serve the model with a larger window (Ollama: context_window / vram_gb; llama.cpp: -c 16384)",
      });
    if (p.supportsTools === false || !p.backend.caps.tools)
      add({
        id: `model:${id}:tools`,
        status: "warn",
        title: `model ${id}: tool calls`,
        detail:
          p.toolMode === "strip"
            ? "no native tool support, and tool_mode: strip drops tools: the agent cannot use any"
            : `no native tool support${p.backend.caps.tools ? "" : " on this server"}: clawbridge emulates tools in the prompt and rescues the calls`,
        fix:
          p.toolMode === "strip"
            ? "tool_mode: auto (emulation) lets the agent use tools"
            : "works as it is; for the most reliable tool use, serve a model with native tools (qwen2.5, llama3.1+, mistral-nemo)",
      });
  }
}
