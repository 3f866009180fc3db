import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Dispatcher } from "undici";
import type { GatewayConfig } from "../config/types.js";
import { GatewayError } from "../ir/errors.js";
import type { Logger } from "../log.js";
import { Router } from "../routing/router.js";
import { estimateTokens } from "../stages/count.js";
import { anthropicSurface } from "../surfaces/anthropic/index.js";
import { openaiSurface } from "../surfaces/openai/index.js";
import type { Surface } from "../surfaces/types.js";
import { isLoopback, keyMatches, presentedKey } from "./auth.js";
import { type HandlerDeps, handleGeneration, sendError } from "./handler.js";
import { Metrics } from "./metrics.js";

export interface AppOptions {
  config: GatewayConfig;
  dispatcher: Dispatcher;
  log: Logger;
  keepAliveAfterMs?: number;
  pingIntervalMs?: number;
  /** Lines for /health when nothing is configured: how to add a backend. */
  hints?: string[];
}

export interface Gateway {
  app: FastifyInstance;
  router: Router;
  metrics: Metrics;
}

/** Which dialect an error on this request should be in. */
function surfaceFor(req: FastifyRequest): Surface {
  const url = req.url;
  if (url.startsWith("/v1/messages") || url.startsWith("/messages")) return anthropicSurface;
  if (url.startsWith("/v1/chat") || url.startsWith("/chat")) return openaiSurface;
  return req.headers["anthropic-version"] ? anthropicSurface : openaiSurface;
}

export function buildGateway(opts: AppOptions): Gateway {
  const { config, log } = opts;
  if (!config.server.masterKey && !isLoopback(config.server.host)) {
    throw new GatewayError(
      "invalid_request",
      `refusing to listen on ${config.server.host} without a master key: set server.master_key (or CLAWBRIDGE_MASTER_KEY), or listen on 127.0.0.1`,
    );
  }
  const router = new Router(config, opts.dispatcher, log);
  const metrics = new Metrics();
  const deps: HandlerDeps = {
    router,
    metrics,
    log,
    keepAliveAfterMs: opts.keepAliveAfterMs ?? 2000,
    pingIntervalMs: opts.pingIntervalMs ?? 10_000,
  };
  const app = Fastify({
    logger: false,
    bodyLimit: config.server.bodyLimitBytes,
    // Local generations run for minutes: no server-side request timeout of our own.
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
  });

  // Clients that forget the content type still mean JSON.
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch (e) {
      const err = e as Error & { statusCode?: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = error.statusCode ?? 500;
    const err =
      status === 413
        ? new GatewayError(
            "request_too_large",
            `request body is larger than the limit of ${Math.round(config.server.bodyLimitBytes / 1024 / 1024)} MB`,
          )
        : status < 500
          ? new GatewayError("invalid_request", bodyErrorMessage(error))
          : new GatewayError("api_error", `internal error: ${error.message}`);
    if (status >= 500) log.error({ err: error }, "unhandled error");
    reply.hijack();
    sendError(surfaceFor(req), reply.raw, err, deps, "invalid");
  });

  app.setNotFoundHandler((req, reply) => {
    reply.hijack();
    sendError(
      surfaceFor(req),
      reply.raw,
      new GatewayError("not_found", `no route for ${req.method} ${req.url.split("?")[0]}`),
      deps,
      "invalid",
    );
  });

  const key = config.server.masterKey;
  if (key) {
    app.addHook("onRequest", (req, reply, done) => {
      if (req.url === "/health" || req.url === "/") return done();
      const presented = presentedKey(req.headers);
      if (keyMatches(presented, key)) return done();
      reply.hijack();
      sendError(
        surfaceFor(req),
        reply.raw,
        new GatewayError(
          "authentication",
          presented === undefined
            ? "no API key: send the clawbridge master key as x-api-key or Authorization: Bearer"
            : "invalid API key",
        ),
        deps,
        "invalid",
      );
    });
  }

  const generation = (surface: Surface) => (req: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    return handleGeneration(surface, req.body, reply.raw, deps);
  };
  for (const prefix of ["/v1", ""]) {
    app.post(`${prefix}/messages`, generation(anthropicSurface));
    app.post(`${prefix}/chat/completions`, generation(openaiSurface));
    app.post(`${prefix}/messages/count_tokens`, (req, reply) => {
      reply.hijack();
      try {
        const body = req.body as Record<string, unknown> | null;
        // count_tokens takes a Messages request without max_tokens
        const decoded = anthropicSurface.decode(
          body && typeof body === "object" && !Array.isArray(body) ? { max_tokens: 1, ...body } : body,
        );
        router.resolve(decoded.model);
        const out = JSON.stringify({ input_tokens: estimateTokens(decoded) });
        reply.raw.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(out),
        });
        reply.raw.end(out);
      } catch (e) {
        sendError(
          anthropicSurface,
          reply.raw,
          e instanceof GatewayError ? e : new GatewayError("api_error", String(e)),
          deps,
          "invalid",
        );
      }
    });
  }

  app.get("/v1/models", async (req, reply) => {
    const models = router.models();
    if (req.headers["anthropic-version"]) {
      const data = models.map((m) => ({
        type: "model",
        id: m.id,
        display_name: m.id,
        created_at: "1970-01-01T00:00:00Z",
      }));
      return reply.send({
        data,
        has_more: false,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
      });
    }
    return reply.send({
      object: "list",
      data: models.map((m) => ({
        id: m.id,
        object: "model",
        created: 0,
        owned_by: `clawbridge/${m.backend}`,
        ...(m.contextWindow ? { context_window: m.contextWindow } : {}),
      })),
    });
  });

  app.get("/health", async (_req, reply) => {
    const backends = [...router.backends.values()].map((b) => {
      const d = router.discovered.get(b.name);
      return {
        name: b.name,
        kind: b.kind,
        url: b.baseUrl,
        status: d === undefined ? "unknown" : d instanceof GatewayError ? "unreachable" : "ok",
        ...(d instanceof GatewayError ? { error: d.message } : {}),
      };
    });
    const models = router.models().map((m) => m.id);
    const body: Record<string, unknown> = { status: "ok", config: config.source, backends, models };
    if (!backends.length) {
      body.status = "no_backends";
      body.hint = opts.hints ?? [
        "No backend is configured and none was found on the default local ports.",
        "Start Ollama (ollama serve) or llama.cpp (llama-server), or write a config file and run clawbridge serve --config FILE.",
      ];
    }
    return reply.send(body);
  });

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return reply.send(await metrics.registry.metrics());
  });

  return { app, router, metrics };
}

function bodyErrorMessage(error: Error & { code?: string }): string {
  if (error.code === "FST_ERR_CTP_EMPTY_JSON_BODY")
    return "the request body is empty; expected a JSON object";
  if (error instanceof SyntaxError || /JSON/.test(error.message))
    return `the request body is not valid JSON: ${error.message}`;
  return error.message;
}
