import type { Request } from "../ir/types.js";
import type { StageContext } from "./types.js";

/** What `json_object` asks for: any JSON object. */
const ANY_OBJECT: Record<string, unknown> = { type: "object" };

/**
 * Structured output: the JSON answer a client asked for (OpenAI response_format, Anthropic
 * output_config.format, Responses text.format) becomes constrained decoding where the backend's
 * wire can constrain (Ollama `format`, `response_format` on llama.cpp / vLLM / LM Studio, the
 * embedded engine's grammar). Where it cannot (a server without JSON-schema decoding, a turn that
 * offers tools, which a constraint would rule out), the model is told the shape at the end of
 * the system prompt, the note says the answer is not enforced, and the format check
 * (`format-check.ts`) validates the answer against the schema. A forced tool call's constraint
 * (the tools stage's) is kept: the call is what the turn must produce.
 */
export function format(req: Request, ctx: StageContext): Request {
  const f = req.format;
  if (!f || req.constrain) return req;
  // the tools the client offered: emulated ones are text in the prompt by now, callable all the same
  const offered =
    ctx.client.tools.length > 0 && ctx.client.toolChoice.type !== "none" && ctx.toolMode !== "strip";
  if (offered) {
    // constrained to the answer's schema, the model could not call a tool: the schema waits for the final turn
    ctx.notes.push({
      subject: "response_format",
      detail:
        "not enforced on a turn that offers tools (it would rule out tool calls); the answer is checked",
    });
    return told(req, "When you give your final answer (not a tool call), write it as");
  }
  if (!ctx.profile.backend.caps.jsonSchema) {
    ctx.notes.push({
      subject: "response_format",
      detail:
        "not enforced (this model's server cannot constrain its answer to JSON): the model is told the shape, and the answer is checked",
    });
    if (ctx.state.firstTime("format unconstrained"))
      ctx.log.warn(
        { model: ctx.profile.alias, backend: ctx.profile.backend.name },
        "structured output asked, but the server cannot constrain the answer: the model is told the shape and its answer checked against it",
      );
    return told(req, "Answer with");
  }
  return { ...req, constrain: { schema: f.schema ?? ANY_OBJECT } };
}

/** The request with the asked shape said at the end of its system prompt. */
function told(req: Request, lead: string): Request {
  const schema = req.format?.schema;
  const shape = schema
    ? `${lead} a single JSON value, and nothing else, matching this JSON schema:\n${JSON.stringify(schema)}`
    : `${lead} a single JSON object, and nothing else.`;
  return { ...req, system: req.system ? `${req.system}\n\n${shape}` : shape };
}
