import { readConfigObject } from "../clients/json-file.js";
import type { Served } from "../routing/served.js";
import type { Add } from "./check.js";

type Obj = Record<string, any>;

/** OpenClaw's config: a provider that points at this gateway, with its key, the models it serves and their real windows. */
export function openclawChecks(s: Served, path: string, add: Add): void {
  let cfg: Obj | undefined;
  try {
    cfg = readConfigObject(path) as Obj | undefined;
  } catch (e) {
    add({ id: "openclaw:config", status: "fail", title: "OpenClaw config", detail: (e as Error).message });
    return;
  }
  if (!cfg) {
    add({
      id: "openclaw:config",
      status: "skip",
      title: "OpenClaw config",
      detail: `no ${path}`,
      fix: "run `clawbridge openclaw` to point OpenClaw at clawbridge",
    });
    return;
  }
  const providers = (cfg.models?.providers ?? {}) as Record<string, Obj>;
  const gw = new URL(s.baseUrl);
  const sameGateway = (u: unknown) => {
    try {
      const x = new URL(String(u));
      const local = (h: string) => ["127.0.0.1", "localhost", "[::1]", "::1"].includes(h);
      return x.port === gw.port && (x.hostname === gw.hostname || (local(x.hostname) && local(gw.hostname)));
    } catch {
      return false;
    }
  };
  const ours = Object.entries(providers).filter(([, p]) => sameGateway(p?.baseUrl));
  const primary = String(cfg.agents?.defaults?.model?.primary ?? "");
  if (!ours.length) {
    const named = providers.clawbridge;
    add({
      id: "openclaw:provider",
      status: "fail",
      title: "OpenClaw points at clawbridge",
      detail: named
        ? `its clawbridge provider points at ${named.baseUrl}, but clawbridge serves ${s.baseUrl}`
        : `no provider in ${path} points at ${s.baseUrl}`,
      fix: "clawbridge openclaw",
    });
    return;
  }
  for (const [name, p] of ours) {
    const base = String(p.baseUrl).replace(/\/+$/, "");
    const api = p.api ?? "anthropic-messages";
    if (api === "openai-completions" && !base.endsWith("/v1"))
      add({
        id: `openclaw:${name}:url`,
        status: "fail",
        title: `OpenClaw provider ${name}: base URL`,
        detail: `api openai-completions with baseUrl ${base}: OpenClaw will call ${base}/chat/completions, which does not exist`,
        fix: `baseUrl: "${base}/v1" (or run \`clawbridge openclaw\`)`,
      });
    else if (api === "anthropic-messages" && base.endsWith("/v1"))
      add({
        id: `openclaw:${name}:url`,
        status: "fail",
        title: `OpenClaw provider ${name}: base URL`,
        detail: `api anthropic-messages with baseUrl ${base}: OpenClaw appends /v1/messages itself (→ /v1/v1/messages)`,
        fix: `baseUrl: "${base.replace(/\/v1$/, "")}" (or run \`clawbridge openclaw\`)`,
      });
    else
      add({
        id: `openclaw:${name}:url`,
        status: "ok",
        title: `OpenClaw provider ${name} points at clawbridge`,
        detail: base,
      });
    const key = s.config.server.masterKey;
    if (key && p.apiKey !== key)
      add({
        id: `openclaw:${name}:key`,
        status: "fail",
        title: `OpenClaw provider ${name}: key`,
        detail: "its apiKey is not clawbridge's master key: every request will get 401",
        fix: "clawbridge openclaw (writes the key)",
      });
    const servedIds = new Map(s.models.map((m) => [m.id, m.profile]));
    for (const m of (p.models ?? []) as Obj[]) {
      const profile = servedIds.get(m.id);
      if (!profile) {
        add({
          id: `openclaw:${name}:${m.id}`,
          status: "fail",
          title: `OpenClaw model ${name}/${m.id}`,
          detail: "clawbridge does not serve this model",
          fix: "clawbridge openclaw (rewrites the model list)",
        });
        continue;
      }
      const told = Number(m.contextWindow);
      const window = profile.contextWindow;
      if (window && told > window)
        add({
          id: `openclaw:${name}:${m.id}:context`,
          status: "fail",
          title: `OpenClaw model ${name}/${m.id}: context window`,
          detail: `OpenClaw believes ${told} tokens, the server serves ${window}: it will send prompts that do not fit (clawbridge refuses them with an overflow error, so OpenClaw compacts more than it needs to, or fails)`,
          fix: "clawbridge openclaw (writes the real windows)",
        });
      else if (window && told)
        add({
          id: `openclaw:${name}:${m.id}:context`,
          status: "ok",
          title: `OpenClaw model ${name}/${m.id}: context window`,
          detail: `${told} ≤ ${window} served`,
        });
    }
    if (primary.startsWith(`${name}/`) && !servedIds.has(primary.slice(name.length + 1)))
      add({
        id: "openclaw:primary",
        status: "fail",
        title: "OpenClaw's primary model",
        detail: `${primary} is not served by clawbridge`,
        fix: "clawbridge openclaw --primary MODEL",
      });
  }
}
