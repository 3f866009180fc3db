import { z } from "zod";
import { FLAVORS } from "../backends/openai-compat/index.js";
import { isHostSpec, normalizeOrigin } from "../server/origin.js";

/** clawbridge's own config file (YAML). snake_case, as the file is written by people. */

function originOf(spec: string, ctx: z.RefinementCtx): string {
  try {
    return normalizeOrigin(spec);
  } catch (e) {
    ctx.issues.push({ code: "custom", message: (e as Error).message, input: spec });
    return z.NEVER;
  }
}

/** Time limits, ms; 0 turns one off (see src/routing/timeouts.ts). */
const Timeouts = z.strictObject({
  connect_ms: z.number().int().nonnegative().optional(),
  load_ms: z.number().int().nonnegative().optional(),
  first_token_ms: z.number().int().nonnegative().optional(),
  idle_ms: z.number().int().nonnegative().optional(),
  total_ms: z.number().int().nonnegative().optional(),
});

/** A rule for the background lane: every condition it sets must hold. */
const LaneRule = z.strictObject({
  tools: z.boolean().optional(),
  stream: z.boolean().optional(),
  max_tokens_below: z.number().int().positive().optional(),
  system_matches: z.string().min(1).optional(),
  model_matches: z.string().min(1).optional(),
});

const Target = z.strictObject({
  backend: z.string().min(1),
  timeouts: Timeouts.optional(),
  model: z.string().min(1),
  context_window: z.number().int().positive().optional(),
  max_output_tokens: z.number().int().positive().optional(),
  drop_params: z.boolean().optional(),
  supports_tools: z.boolean().optional(),
  tool_mode: z.enum(["auto", "native", "rescue", "emulate", "strip"]).optional(),
  tool_format: z.enum(["hermes", "llama3", "mistral", "json"]).optional(),
  strict_alternation: z.boolean().optional(),
  keep_alive: z.union([z.string(), z.number()]).optional(),
  num_ctx: z.number().int().positive().optional(),
  fit_policy: z.enum(["error", "drop-oldest"]).optional(),
  reserve_output_tokens: z.number().int().nonnegative().optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().nonnegative().optional(),
  extra_body: z.record(z.string(), z.unknown()).optional(),
  // a demo and test aid: the client's tool choice becomes this tool while the turn has no tool result yet
  force_tool: z.string().min(1).optional(),
});

export const NativeConfigSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      master_key: z.string().min(1).optional(),
      answer_limit_mb: z.number().positive().optional(),
      body_limit_mb: z.number().positive().optional(),
      // web pages that may use the gateway (src/server/origin.ts); none by default, "*" for all
      cors_origins: z.array(z.string().transform(originOf)).optional(),
      // names besides localhost, 127.x and [::1] that requests to a loopback bind may be addressed to
      allowed_hosts: z
        .array(
          z
            .string()
            .refine(
              isHostSpec,
              "expected a host name or address, with a port or not (e.g. myhost or myhost:4000)",
            ),
        )
        .optional(),
    })
    .optional(),
  log: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).optional(),
      file: z.string().optional(),
    })
    .optional(),
  backends: z
    .record(
      z.string().min(1),
      z.strictObject({
        kind: z.enum(["ollama", "openai-compat", "anthropic", "embedded"]),
        // every kind but embedded (in-process) needs one: checked in load.ts
        url: z.url({ protocol: /^https?$/ }).optional(),
        api_key: z.string().optional(),
        flavor: z.enum(FLAVORS).optional(),
        headers: z.record(z.string(), z.string()).optional(),
        discover: z.boolean().optional(),
        // `clawbridge up`: how to start the server when it is not running
        start: z
          .strictObject({
            command: z.string().min(1),
            cwd: z.string().optional(),
            env: z.record(z.string(), z.string()).optional(),
            ready_timeout_s: z.number().positive().optional(),
            warmup: z.array(z.number().int().positive()).optional(),
          })
          .optional(),
        concurrency: z.number().int().nonnegative().optional(),
        max_queue: z.number().int().nonnegative().optional(),
        breaker: z
          .strictObject({
            failures: z.number().int().nonnegative().optional(),
            cooldown_ms: z.number().int().positive().optional(),
          })
          .optional(),
        timeouts: Timeouts.optional(),
        vram_gb: z.number().positive().optional(),
        // embedded (GGUF models in-process)
        models_dir: z.string().min(1).optional(),
        paths: z.array(z.string().min(1)).optional(),
        ollama_models: z.union([z.string().min(1), z.literal(false)]).optional(),
        threads: z.number().int().positive().optional(),
        context_size: z.number().int().positive().optional(),
        parallel: z.number().int().positive().optional(),
        gpu: z.enum(["auto", "off"]).optional(),
      }),
    )
    .optional(),
  models: z.record(z.string().min(1), z.union([Target, z.array(Target).min(1)])).optional(),
  fallbacks: z.record(z.string(), z.array(z.string())).optional(),
  timeouts: Timeouts.optional(),
  lanes: z.strictObject({ background: z.array(LaneRule) }).optional(),
});

export type NativeConfig = z.infer<typeof NativeConfigSchema>;
export type NativeTarget = z.infer<typeof Target>;
export type NativeBackend = NonNullable<NativeConfig["backends"]>[string];
export type NativeTimeouts = z.infer<typeof Timeouts>;
export type NativeLaneRule = z.infer<typeof LaneRule>;

export const LiteLLMConfigSchema = z.looseObject({
  model_list: z
    .array(
      z.looseObject({
        model_name: z.string().min(1),
        litellm_params: z.looseObject({
          model: z.string().min(1),
          api_base: z.string().optional(),
          api_key: z.string().optional(),
          drop_params: z.boolean().optional(),
          temperature: z.number().optional(),
          top_p: z.number().optional(),
          top_k: z.number().optional(),
          max_tokens: z.number().int().positive().optional(),
          num_ctx: z.number().int().positive().optional(),
          keep_alive: z.union([z.string(), z.number()]).optional(),
          // clawbridge's own settings, accepted in a LiteLLM file too
          tool_mode: z.enum(["auto", "native", "rescue", "emulate", "strip"]).optional(),
          tool_format: z.enum(["hermes", "llama3", "mistral", "json"]).optional(),
        }),
        model_info: z
          .looseObject({
            supports_function_calling: z.boolean().optional(),
            max_input_tokens: z.number().int().positive().optional(),
            max_output_tokens: z.number().int().positive().optional(),
            max_tokens: z.number().int().positive().optional(),
          })
          .optional()
          .nullable(),
      }),
    )
    .min(1),
  general_settings: z
    .looseObject({ master_key: z.string().optional(), drop_params: z.boolean().optional() })
    .optional()
    .nullable(),
  litellm_settings: z
    .looseObject({
      drop_params: z.boolean().optional(),
      fallbacks: z.array(z.record(z.string(), z.array(z.string()))).optional(),
    })
    .optional()
    .nullable(),
  router_settings: z
    .looseObject({ fallbacks: z.array(z.record(z.string(), z.array(z.string()))).optional() })
    .optional()
    .nullable(),
});

export type LiteLLMConfig = z.infer<typeof LiteLLMConfigSchema>;
