import { z } from "zod";
import type { BackendKind } from "../backends/kind.js";
import { kindOf, kinds, readSettings } from "../backends/registry.js";
import { camelKeys } from "../ir/keys.js";
import { LOG_LEVELS } from "../log.js";
import { keysAt, unknownKey } from "./issues.js";
import { isHostSpec, normalizeOrigin } from "../server/origin.js";
import type { TargetConfig } from "./types.js";

/**
 * clawbridge's own config file (YAML). snake_case, as the file is written by people; what is read
 * comes out camelCased (`camelKeys`), as the code names it, so no field is copied by hand.
 */

function originOf(spec: string, ctx: z.RefinementCtx): string {
  try {
    return normalizeOrigin(spec);
  } catch (e) {
    ctx.issues.push({ code: "custom", message: (e as Error).message, input: spec });
    return z.NEVER;
  }
}

/** Time limits, ms; 0 turns one off (see src/routing/timeouts.ts). */
const Timeouts = z
  .strictObject({
    connect_ms: z.number().int().nonnegative().optional(),
    load_ms: z.number().int().nonnegative().optional(),
    first_token_ms: z.number().int().nonnegative().optional(),
    idle_ms: z.number().int().nonnegative().optional(),
    total_ms: z.number().int().nonnegative().optional(),
  })
  .transform(camelKeys);

/** A rule for the background lane: every condition it sets must hold. */
const LaneRule = z
  .strictObject({
    tools: z.boolean().optional(),
    stream: z.boolean().optional(),
    max_tokens_below: z.number().int().positive().optional(),
    system_matches: z.string().min(1).optional(),
    model_matches: z.string().min(1).optional(),
  })
  .transform(camelKeys);

/** A model's target: its backend and model, and the settings of its profile (`ModelSettings` in ir/contract.ts). */
const Target = z
  .strictObject({
    backend: z.string().min(1),
    timeouts: Timeouts.optional(),
    model: z.string().min(1),
    context_window: z.number().int().positive().optional(),
    max_output_tokens: z.number().int().positive().optional(),
    drop_params: z.boolean().optional(),
    supports_tools: z.boolean().optional(),
    supports_thinking: z.boolean().optional(),
    supports_vision: z.boolean().optional(),
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
  })
  .transform(camelKeys);

/** The target as read is exactly the contract's model settings, its backend and model: checked here. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const targetIsTheContract: Same<z.output<typeof Target>, TargetConfig> = true;
void targetIsTheContract;

/** The fields every backend has, whatever its kind. */
const BACKEND_FIELDS = {
  // every kind but an in-process one needs one: checked in load.ts
  url: z.url({ protocol: /^https?$/ }).optional(),
  api_key: z.string().optional(),
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
    .transform(camelKeys)
    .optional(),
  timeouts: Timeouts.optional(),
  vram_gb: z.number().positive().optional(),
};
const Common = z.strictObject(BACKEND_FIELDS);

/** Each kind's entry: the common fields and the kind's own (`fields` in its registry entry), nothing else. */
const entries = new WeakMap<BackendKind, z.ZodObject>();
function entryOf(kind: BackendKind): z.ZodObject {
  let schema = entries.get(kind);
  if (!schema) {
    schema = z.strictObject({ kind: z.literal(kind.kind), ...BACKEND_FIELDS, ...kind.fields });
    entries.set(kind, schema);
  }
  return schema;
}

/**
 * A backend entry, checked against its kind as the registry knows it when the file is read (so
 * a kind registered later, a test's own, validates too); the kind's own fields become its settings.
 */
const BackendEntry = z.looseObject({ kind: z.string() }).transform((raw, ctx) => {
  const kind = kindOf(raw.kind);
  if (!kind) {
    ctx.issues.push({
      code: "invalid_value",
      values: kinds().map((k) => k.kind),
      input: raw.kind,
      path: ["kind"],
      message: `Invalid option: expected one of ${kinds()
        .map((k) => JSON.stringify(k.kind))
        .join("|")}`,
    });
    return z.NEVER;
  }
  const schema = entryOf(kind);
  const r = schema.safeParse(raw);
  if (!r.success) {
    for (const issue of r.error.issues) {
      if (issue.code !== "unrecognized_keys") {
        ctx.issues.push({ ...issue, input: undefined });
        continue;
      }
      // a misspelled key, or another kind's own setting: said so, with what this kind takes
      for (const key of issue.keys) {
        const owner =
          issue.path.length === 0
            ? kinds().find((k) => k !== kind && k.fields && key in k.fields)
            : undefined;
        ctx.issues.push({
          code: "custom",
          path: [...issue.path, key],
          input: undefined,
          params: { unknownKey: true },
          message: owner
            ? `a setting of kind ${owner.kind}, not of kind ${kind.kind}`
            : unknownKey(key, keysAt(schema, issue.path as PropertyKey[])),
        });
      }
    }
    return z.NEVER;
  }
  const common: Record<string, unknown> = {};
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.data)) {
    if (k === "kind") continue;
    (k in BACKEND_FIELDS ? common : own)[k] = v;
  }
  return { ...(common as z.output<typeof Common>), kind: kind.kind, settings: readSettings(kind.kind, own) };
});

export const NativeConfigSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      master_key: z.string().min(1).optional(),
      answer_limit_mb: z.number().positive().optional(),
      body_limit_mb: z.number().positive().optional(),
      // the time a client has to send a request's headers, then its body
      receive_timeout_ms: z.number().int().positive().optional(),
      // how often each backend is asked again what it has (src/routing/watch.ts); 0: only when it starts or stops answering
      watch_interval_s: z.number().min(0).max(3600).optional(),
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
      level: z.enum(LOG_LEVELS).optional(),
      file: z.string().optional(),
    })
    .optional(),
  // the request journal (src/journal): false turns it off
  journal: z
    .union([
      z.boolean(),
      z.strictObject({
        enabled: z.boolean().optional(),
        path: z.string().min(1).optional(),
        max_mb: z.number().positive().optional(),
        max_age_days: z.number().positive().optional(),
        capture: z.boolean().optional(),
      }),
    ])
    .optional(),
  backends: z.record(z.string().min(1), BackendEntry).optional(),
  models: z.record(z.string().min(1), z.union([Target, z.array(Target).min(1)])).optional(),
  fallbacks: z.record(z.string(), z.array(z.string())).optional(),
  timeouts: Timeouts.optional(),
  lanes: z.strictObject({ background: z.array(LaneRule) }).optional(),
});

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
          timeout: z.number().positive().optional(),
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
      request_timeout: z.number().positive().optional(),
    })
    .optional()
    .nullable(),
  router_settings: z
    .looseObject({
      fallbacks: z.array(z.record(z.string(), z.array(z.string()))).optional(),
      timeout: z.number().positive().optional(),
      allowed_fails: z.number().int().nonnegative().optional(),
      cooldown_time: z.number().positive().optional(),
      model_group_alias: z
        .record(z.string(), z.union([z.string(), z.looseObject({ model: z.string() })]))
        .optional(),
    })
    .optional()
    .nullable(),
});

export type LiteLLMConfig = z.infer<typeof LiteLLMConfigSchema>;
