/**
 * A failed request in the doctor's words: what went wrong and what to do, from the entry's outcome
 * (an error kind, `client_gone`, `incomplete`), its cause, and the advice its backend's kind declares
 * (`doctor` hints: how to start the server, how to get a missing model). What the dashboard shows
 * beside each failure.
 */
import type { DoctorHints } from "../backends/kind.js";
import type { RequestEntry } from "../journal/entry.js";

export interface Explanation {
  /** What happened, in plain words. */
  detail: string;
  /** What to do about it. */
  fix: string;
}

/** The advice for a failed entry; undefined for a success. */
export function explainFailure(
  e: Pick<RequestEntry, "outcome" | "status" | "cause" | "model" | "target" | "backend">,
  hints?: DoctorHints,
  settings: Record<string, unknown> = {},
): Explanation | undefined {
  if (e.outcome === "ok") return undefined;
  const cause = e.cause ?? "";
  const start = hints?.start?.(settings) ?? "its start command";
  switch (e.outcome) {
    case "client_gone":
      return {
        detail: "the client closed the connection before the answer was complete",
        fix: "nothing on the gateway's side; if the client gave up waiting, raise its timeout or use a faster model",
      };
    case "incomplete":
      return {
        detail: `the answer stopped before its end${cause ? `: ${cause}` : ""}`,
        fix: "look at the backend's own log for a crash or a reset; `clawbridge doctor` checks that it answers",
      };
    case "not_found":
      if (/model/i.test(cause) && e.model !== undefined) {
        const pull = e.target && hints?.missingModel ? hints.missingModel(e.target) : undefined;
        return {
          detail: `no backend serves the model "${e.model}"${cause ? ` (${cause})` : ""}`,
          fix: pull
            ? `get the model (\`${pull}\`), or name one that \`clawbridge models\` lists`
            : "name a model that `clawbridge models` lists, or add an alias for it under models: in the config",
        };
      }
      return {
        detail: cause || "no such route",
        fix: "check the client's base URL (it should end at the gateway, with /v1 where the SDK expects it)",
      };
    case "authentication":
      return {
        detail: cause || "the API key was missing or wrong",
        fix: "give the client the gateway's master key (server.master_key) as its API key; a backend's own key goes in its api_key setting",
      };
    case "permission":
      return {
        detail: cause || "the backend refused the request",
        fix: "check the backend's api_key and what it allows",
      };
    case "context_length":
      return {
        detail: cause || "the prompt did not fit the model's context window",
        fix: "let the client compact its conversation, raise the server's context (and context_window in the config), or set context.overflow: truncate",
      };
    case "request_too_large":
      return { detail: cause || "the request body was over the limit", fix: "raise server.body_limit_mb" };
    case "request_timeout":
      return {
        detail: cause || "the client did not send its request in time",
        fix: "raise server.receive_timeout_ms if the client is slow to send",
      };
    case "invalid_request":
      return {
        detail: cause || "the request was not valid",
        fix: "the message says which field; fix it in the client's request",
      };
    case "rate_limit":
    case "overloaded":
      return {
        detail: cause || "too many requests were waiting for the backend",
        fix: "raise the backend's concurrency or max_queue, or send fewer requests at once",
      };
    case "unavailable":
      return {
        detail: cause || "the backend could not be reached",
        fix: /refused|ECONNREFUSED/i.test(cause)
          ? `start the server (${start}) or correct the port in the backend's url; \`clawbridge doctor\` says which`
          : "run `clawbridge doctor`: it checks that each backend answers and says what to change",
      };
    case "timeout":
      return {
        detail: cause || "the backend did not answer in time",
        fix: "a model that loads slowly needs a longer timeouts.load_ms; one that stalls mid-answer, a look at the server's log",
      };
    default:
      return {
        detail: cause || `the request failed (${e.outcome}${e.status !== null ? `, ${e.status}` : ""})`,
        fix: "run `clawbridge doctor`, and look at the backend's own log",
      };
  }
}
