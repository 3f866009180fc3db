/** `GET /v1/models`: the models served, as Anthropic lists them or as OpenAI does. */
import { sendJson } from "../answer.js";
import type { Handler, RouteContext } from "./route.js";

export const models =
  ({ router }: RouteContext): Handler =>
  (req, res) => {
    const served = router.models();
    if (req.headers["anthropic-version"]) {
      const data = served.map((m) => ({
        type: "model",
        id: m.id,
        display_name: m.id,
        created_at: "1970-01-01T00:00:00Z",
      }));
      return sendJson(res, 200, {
        data,
        has_more: false,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
      });
    }
    sendJson(res, 200, {
      object: "list",
      data: served.map((m) => ({
        id: m.id,
        object: "model",
        created: 0,
        owned_by: `clawbridge/${m.backend}`,
        ...(m.contextWindow ? { context_window: m.contextWindow } : {}),
      })),
    });
  };
