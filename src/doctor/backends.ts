import { fetchJson } from "../backends/http.js";
import type { BackendKind } from "../backends/kind.js";
import { kindOf, kinds, localServers } from "../backends/registry.js";
import type { BackendConfig } from "../config/types.js";
import { GatewayError } from "../ir/errors.js";
import type { Served } from "../routing/served.js";
import type { Add, Check } from "./check.js";

/** Each backend: reachable, its URL of the right shape; when it is not, whether the port or the kind is wrong. */
export async function backendChecks(s: Served, add: Add): Promise<void> {
  if (!s.config.backends.length)
    add({
      id: "backends",
      status: "fail",
      title: "backends",
      detail: "no backend is configured, and none was found on the default local ports",
      fix: "start a model server (`ollama serve`) or run `clawbridge init`",
    });
  for (const b of s.config.backends) {
    const kind = kindOf(b.kind);
    const found = s.router.discovered.get(b.name);
    const id = `backend:${b.name}`;
    if (kind?.inProcessUrl !== undefined) {
      const what = kind.doctor?.inProcess;
      add({
        id,
        status: found instanceof GatewayError ? "fail" : "ok",
        title: `backend ${b.name} (${what?.title ?? kind.label})`,
        detail:
          found instanceof GatewayError
            ? found.message
            : (what?.found(found?.length ?? 0) ?? `${found?.length ?? 0} model(s)`),
      });
      continue;
    }
    const advice = kind?.doctor?.urlAdvice?.(b.url);
    if (advice) add({ id: `${id}:url`, status: "warn", title: `backend ${b.name}: base URL`, ...advice });
    if (!(found instanceof GatewayError)) {
      add({
        id,
        status: "ok",
        title: `backend ${b.name} reachable`,
        detail: `${b.url}, ${found?.length ?? 0} model(s)`,
      });
      continue;
    }
    const check: Check = { id, status: "fail", title: `backend ${b.name} reachable`, detail: found.message };
    // what answers at the URL comes first: a server of another kind there is the answer, whatever else runs
    check.fix = (await wrongKind(s, b, kind)) ?? (await wrongPort(s, b));
    check.fix ??= /refused/.test(found.message)
      ? `nothing listens at ${new URL(b.url).origin}: start the server (${kind?.doctor?.start?.(b.settings ?? {}) ?? "its start command"}) or correct the port`
      : "check the URL and that the server is up";
    add(check);
  }
}

function answers(s: Served, url: string): Promise<boolean> {
  return fetchJson("probe", url, s.dispatcher, { timeoutMs: 1500 }).then(
    () => true,
    () => false,
  );
}

/** Is it the port? Something answering where this kind of server usually listens says so. */
async function wrongPort(s: Served, b: BackendConfig): Promise<string | undefined> {
  const port = new URL(b.url).port;
  for (const l of localServers()) {
    if (l.kind !== b.kind || new URL(l.url).port === port) continue;
    if (await answers(s, l.url + l.probe))
      return `a ${l.name} server answers at ${l.url}: set url: ${l.url} for backend ${b.name}`;
  }
  return undefined;
}

/** Is it the kind? A server of another kind answering at the same root (an Ollama URL that speaks the OpenAI API). */
async function wrongKind(
  s: Served,
  b: BackendConfig,
  kind: BackendKind | undefined,
): Promise<string | undefined> {
  const root = new URL(b.url).origin;
  for (const other of kinds()) {
    if (other.kind === b.kind || !other.doctor?.wrongKind) continue;
    if (other.identify) {
      const found = await other.identify(root, s.dispatcher);
      if (found) return other.doctor.wrongKind(found.url, kind?.label ?? b.kind, found);
      continue;
    }
    const at = other.at?.(root);
    if (at && (await answers(s, at.url + at.probe)))
      return other.doctor.wrongKind(at.url, kind?.label ?? b.kind);
  }
  return undefined;
}
