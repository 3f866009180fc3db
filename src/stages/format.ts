import type { Request } from "../ir/types.js";
import type { StageContext } from "./types.js";

/** What `json_object` asks for: any JSON object. */
const ANY_OBJECT: Record<string, unknown> = { type: "object" };

/**
 * Structured output: the JSON answer a client asked for (OpenAI response_format, Anthropic
 * output_config.format) becomes constrained decoding where the backend's wire can constrain
 * (Ollama `format`, `response_format` on llama.cpp / vLLM / LM Studio, the embedded engine's
 * grammar). Where it cannot, the request goes unconstrained and the note says so. A forced tool
 * call's constraint (the tools stage's) is kept: the call is what the turn must produce.
 */
export function format(req: Request, ctx: StageContext): Request {
  const f = req.format;
  if (!f || req.constrain) return req;
  if (req.tools.length && req.toolChoice.type !== "none") {
    // constrained to the answer's schema, the model could not call a tool: the schema waits for the final turn
    ctx.notes.push({
      subject: "response_format",
      detail: "not enforced on a turn that offers tools (it would rule out tool calls)",
    });
    return req;
  }
  if (!ctx.profile.backend.caps.jsonSchema) {
    ctx.notes.push({
      subject: "response_format",
      detail:
        "not enforced (this model's server cannot constrain its answer to JSON); the answer may not be the asked shape",
    });
    if (ctx.state.firstTime("format unconstrained"))
      ctx.log.warn(
        { model: ctx.profile.alias, backend: ctx.profile.backend.name },
        "structured output asked, but the server cannot constrain the answer: it is passed on as the model writes it",
      );
    return req;
  }
  return { ...req, constrain: { schema: f.schema ?? ANY_OBJECT } };
}
