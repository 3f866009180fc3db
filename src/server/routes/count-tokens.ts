/** `POST /v1/messages/count_tokens`: the prompt's tokens, as its model's first target counts them. */
import { anthropicSurface } from "../../surfaces/anthropic/index.js";
import { sendJson } from "../answer.js";
import type { Handler, RouteContext } from "./route.js";

export const countTokens =
  ({ router, log, requests }: RouteContext): Handler =>
  async (req, res, body) => {
    // count_tokens takes a Messages request without max_tokens
    const decoded = anthropicSurface.decode(
      body && typeof body === "object" && !Array.isArray(body) ? { max_tokens: 1, ...body } : body,
    );
    const trace = requests.of(req);
    if (trace) {
      trace.surface = anthropicSurface.name;
      trace.model = decoded.model;
    }
    // as the model's first target would be sent it: counted by its server where it can
    const count = await router.countTokens(decoded, log);
    trace?.usage({ inputTokens: count.tokens });
    sendJson(res, 200, { input_tokens: count.tokens });
  };
