/**
 * `GET /v1/models`: the models served, as Anthropic lists them or as OpenAI does; and
 * `GET /v1/models/{id}` (both SDKs' `models.retrieve`): one of them, or a 404 in the dialect.
 * The catch-all `*` is a routing rule, not a model: it is not listed, and an id it would serve is
 * answered as that id.
 */
import { GatewayError } from "../../ir/errors.js";
import type { ServedModel } from "../../routing/models.js";
import { sendJson } from "../answer.js";
import type { Handler, RouteContext } from "./route.js";

const CATCH_ALL = "*";

type Listed = Pick<ServedModel, "id" | "backend" | "contextWindow">;

function anthropicModel(m: Listed) {
  return { type: "model", id: m.id, display_name: m.id, created_at: "1970-01-01T00:00:00Z" };
}

function openaiModel(m: Listed) {
  return {
    id: m.id,
    object: "model",
    created: 0,
    owned_by: `clawbridge/${m.backend}`,
    ...(m.contextWindow ? { context_window: m.contextWindow } : {}),
  };
}

export const models =
  ({ router }: RouteContext): Handler =>
  (req, res) => {
    const served = router.models().filter((m) => m.id !== CATCH_ALL);
    if (req.headers["anthropic-version"]) {
      const data = served.map(anthropicModel);
      return sendJson(res, 200, {
        data,
        has_more: false,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
      });
    }
    sendJson(res, 200, { object: "list", data: served.map(openaiModel) });
  };

/** The path prefixes under which `/models/{id}` is answered. */
export const MODEL_PATHS = ["/v1/models/", "/models/"] as const;

export const model =
  ({ router }: RouteContext): Handler =>
  (req, res) => {
    const path = (req.url ?? "").split("?")[0]!;
    const prefix = MODEL_PATHS.find((p) => path.startsWith(p))!;
    let id: string;
    try {
      id = decodeURIComponent(path.slice(prefix.length));
    } catch {
      throw new GatewayError("invalid_request", "the model id in the path is not valid percent-encoding");
    }
    // what a request naming it would be served by (its own entry, its Claude tier, the catch-all)
    const served = router.models();
    const entry = served.find((m) => m.id === id) ?? served.find((m) => m.id === router.servedAs(id));
    if (!id || !entry) {
      const known = served.filter((m) => m.id !== CATCH_ALL).map((m) => m.id);
      throw new GatewayError(
        "not_found",
        `model '${id}' is not served here${known.length ? ` (served: ${known.slice(0, 20).join(", ")})` : ""}`,
        { param: "model", code: "model_not_found", retryable: false },
      );
    }
    const one = { ...entry, id };
    sendJson(res, 200, req.headers["anthropic-version"] ? anthropicModel(one) : openaiModel(one));
  };
