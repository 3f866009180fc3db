/** The routing table: every route the gateway answers, by method and path. */
import { anthropicSurface } from "../../surfaces/anthropic/index.js";
import { openaiSurface } from "../../surfaces/openai/index.js";
import { createResponsesSurface } from "../../surfaces/responses/index.js";
import { countTokens } from "./count-tokens.js";
import { generation } from "./generation.js";
import { dashboard, isDashboardPath } from "./dashboard.js";
import { health, hello } from "./health.js";
import { metrics } from "./metrics.js";
import { MODEL_PATHS, model, models } from "./models.js";
import { reload } from "./reload.js";
import type { Route, RouteContext } from "./route.js";

export type { Handler, ReloadOutcome, Route, RouteContext } from "./route.js";

/** Paths answered without the master key: they say only that the gateway is up. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(["/health", "/api/hello"]);

/** The routes, keyed `METHOD /path`; the API's routes with and without `/v1`. */
export function routeTable(
  ctx: RouteContext,
  // each gateway its own store of recent responses (previous_response_id, item_reference)
  responsesSurface = createResponsesSurface(),
): Map<string, Route> {
  const routes = new Map<string, Route>();
  const messages = generation(anthropicSurface)(ctx);
  const chat = generation(openaiSurface)(ctx);
  const responses = generation(responsesSurface)(ctx);
  const count = countTokens(ctx);
  const list = models(ctx);
  for (const prefix of ["/v1", ""]) {
    routes.set(`POST ${prefix}/messages`, { handler: messages, body: true });
    routes.set(`POST ${prefix}/chat/completions`, { handler: chat, body: true });
    routes.set(`POST ${prefix}/responses`, { handler: responses, body: true });
    routes.set(`POST ${prefix}/messages/count_tokens`, { handler: count, body: true });
    routes.set(`GET ${prefix}/models`, { handler: list, body: false });
  }
  routes.set("GET /health", { handler: health(ctx), body: false });
  routes.set("GET /metrics", { handler: metrics(ctx), body: false });
  routes.set("HEAD /api/hello", { handler: hello, body: false });
  routes.set("GET /api/hello", { handler: hello, body: false });
  routes.set("POST /admin/reload", { handler: reload(ctx.reload), body: false });
  routes.set(MODEL_ROUTE, { handler: model(ctx), body: false });
  routes.set(DASHBOARD_ROUTE, { handler: dashboard(ctx), body: false });
  return routes;
}

/** The key of the one route with a parameter: `GET /v1/models/{id}`. */
const MODEL_ROUTE = "GET /v1/models/{id}";

/** The dashboard: the page at `/` and everything under /_dashboard/ (one handler). */
const DASHBOARD_ROUTE = "GET /";

/** The route for a request: by its method and path, or a route that takes the paths under it. */
export function findRoute(
  routes: Map<string, Route>,
  method: string | undefined,
  path: string,
): Route | undefined {
  const exact = routes.get(`${method} ${path}`);
  if (exact) return exact;
  if (method === "GET" && isDashboardPath(path)) return routes.get(DASHBOARD_ROUTE);
  if (method === "GET" && MODEL_PATHS.some((p) => path.startsWith(p) && path.length > p.length))
    return routes.get(MODEL_ROUTE);
  return undefined;
}
