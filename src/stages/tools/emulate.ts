import type {
  Message,
  Part,
  Request,
  Tool,
  ToolCallPart,
  ToolChoice,
  ToolResultPart,
} from "../../ir/types.js";
import type { ToolFormat } from "../../ir/contract.js";

/**
 * Tool emulation: for servers or models without tool support, the offered tools go into the
 * system prompt in the format the model family was trained on, and the tool history — the
 * assistant's calls and the tools' results — becomes text in that same format. The request that
 * leaves has no tools, no tool parts and no tool roles: a text-only server takes it. The model's
 * answer, written in that format, goes through the rescue stage, which turns it back into calls.
 *
 * A forced call ("You must call …") is said at the end of the prompt, never in the system prompt:
 * the next turn (usually with the choice back to auto) then shares everything before it, and the
 * server's prompt cache still holds the whole conversation.
 */
export function emulateTools(req: Request, format: ToolFormat): Request {
  const r = RENDERERS[format];
  const offered = req.toolChoice.type === "none" ? [] : req.tools;
  const toolText = offered.length ? r.tools(offered) : "";
  const system = [req.system, toolText].filter(Boolean).join("\n\n");
  const names = new Map<string, string>();
  for (const m of req.messages) for (const p of m.parts) if (p.type === "toolCall") names.set(p.id, p.name);
  const messages: Message[] = [];
  for (const m of req.messages) {
    const parts: Part[] = [];
    const results: ToolResultPart[] = [];
    const calls: ToolCallPart[] = [];
    for (const p of m.parts) {
      if (p.type === "toolCall") calls.push(p);
      else if (p.type === "toolResult") {
        const toolName = p.toolName ?? names.get(p.toolCallId);
        results.push(toolName ? { ...p, toolName } : p);
      } else parts.push(p);
    }
    // A tool result answers the assistant's call: it becomes a user turn, before any text the
    // client put after it in the same message.
    if (results.length) messages.push({ role: "user", parts: [{ type: "text", text: r.results(results) }] });
    if (calls.length) parts.push({ type: "text", text: r.calls(calls) });
    if (parts.length) messages.push({ role: m.role, parts });
  }
  const must = offered.length ? choiceLine(req.toolChoice) : "";
  if (must) {
    const last = messages.at(-1);
    if (last?.role === "user")
      messages[messages.length - 1] = { role: "user", parts: [...last.parts, { type: "text", text: must }] };
    else messages.push({ role: "user", parts: [{ type: "text", text: must }] });
  }
  const out: Request = { ...req, system, messages, tools: [], toolChoice: { type: "auto" } };
  delete out.parallelToolCalls;
  return out;
}

/**
 * The JSON schema a forced call must match, for constrained decoding: one object naming an
 * offered tool and its arguments. The rescue stage reads such a whole-reply object as a call.
 */
export function forcedCallSchema(req: Request): Record<string, unknown> | undefined {
  const choice = req.toolChoice;
  if (choice.type !== "any" && choice.type !== "tool") return undefined;
  const tools = choice.type === "tool" ? req.tools.filter((t) => t.name === choice.name) : req.tools;
  if (!tools.length) return undefined;
  const variants = tools.map((t) => ({
    type: "object",
    properties: { name: { type: "string", enum: [t.name] }, arguments: argumentSchema(t) },
    required: ["name", "arguments"],
  }));
  return variants.length === 1 ? variants[0]! : { anyOf: variants };
}

function argumentSchema(t: Tool): Record<string, unknown> {
  const s = t.inputSchema;
  return s && typeof s === "object" && Object.keys(s).length ? s : { type: "object" };
}

interface Renderer {
  tools(tools: Tool[]): string;
  calls(calls: ToolCallPart[]): string;
  results(results: ToolResultPart[]): string;
}

function fn(t: Tool): Record<string, unknown> {
  return {
    type: "function",
    function: { name: t.name, description: t.description ?? "", parameters: argumentSchema(t) },
  };
}

/** What a forced choice asks of the model, said at the end of the prompt. */
function choiceLine(choice: ToolChoice): string {
  if (choice.type === "any") return "You must call at least one function in this reply.";
  if (choice.type === "tool") return `You must call the function ${choice.name} in this reply.`;
  return "";
}

function resultText(r: ToolResultPart): string {
  const text = r.content
    .map((c) => (c.type === "text" ? c.text : "[image omitted: this model's server cannot take it]"))
    .join("\n");
  return r.isError ? `ERROR: ${text}` : text;
}

/** Hermes / Qwen 2.5+ / NousResearch: the format most local instruct models know. */
const hermes: Renderer = {
  tools: (tools) =>
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
    tools.map((t) => JSON.stringify(fn(t))).join("\n") +
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments " +
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n" +
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>',
  calls: (calls) =>
    calls
      .map((c) => `<tool_call>\n${JSON.stringify({ name: c.name, arguments: c.input })}\n</tool_call>`)
      .join("\n"),
  results: (results) => results.map((r) => `<tool_response>\n${resultText(r)}\n</tool_response>`).join("\n"),
};

/** Llama 3.1+: JSON-based tool calling with `parameters`. */
const llama3: Renderer = {
  tools: (tools) =>
    "You have access to the following functions. To call a function, respond with only a JSON " +
    'object of the form {"name": function name, "parameters": dictionary of argument name and ' +
    "its value}, and nothing else. Do not use variables.\n\n" +
    tools.map((t) => JSON.stringify(fn(t))).join("\n\n"),
  calls: (calls) =>
    calls.map((c) => `<|python_tag|>${JSON.stringify({ name: c.name, parameters: c.input })}`).join("\n"),
  results: (results) =>
    results.map((r) => `Output of ${r.toolName ?? "the function"}:\n${resultText(r)}`).join("\n\n"),
};

/** Mistral: [AVAILABLE_TOOLS] in the prompt, [TOOL_CALLS] in the answer. */
const mistral: Renderer = {
  tools: (tools) =>
    `[AVAILABLE_TOOLS]${JSON.stringify(tools.map(fn))}[/AVAILABLE_TOOLS]\n\n` +
    "To call functions, answer with [TOOL_CALLS] followed by a JSON array of " +
    '{"name": ..., "arguments": {...}} objects, and nothing else.',
  calls: (calls) => `[TOOL_CALLS]${JSON.stringify(calls.map((c) => ({ name: c.name, arguments: c.input })))}`,
  results: (results) =>
    results
      .map((r) => `[TOOL_RESULTS]${JSON.stringify({ content: resultText(r) })}[/TOOL_RESULTS]`)
      .join("\n"),
};

/** Plain JSON, for models that know no tool format: a fenced object per call. */
const json: Renderer = {
  tools: (tools) =>
    "You can use tools. The tools are described by these JSON schemas:\n" +
    tools.map((t) => JSON.stringify(fn(t).function)).join("\n") +
    "\n\nTo use a tool, reply with only a JSON object, in a ```json fenced block: " +
    '{"name": "<tool name>", "arguments": {<arguments>}}. To use several, put one block per call. ' +
    "After a tool is used you will get its result; then continue.",
  calls: (calls) =>
    calls
      .map((c) => `\`\`\`json\n${JSON.stringify({ name: c.name, arguments: c.input })}\n\`\`\``)
      .join("\n"),
  results: (results) =>
    results.map((r) => `Result of ${r.toolName ?? "the tool"}:\n${resultText(r)}`).join("\n\n"),
};

const RENDERERS: Record<ToolFormat, Renderer> = { hermes, llama3, mistral, json };
