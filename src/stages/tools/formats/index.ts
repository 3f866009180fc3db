/**
 * The text formats local models write tool calls in, listed in one place. The scanner finds where
 * a candidate starts (an opener below) and its candidate, one file per format, decides what the
 * text says as it streams in. Adding a format: its file here, and its line in OPENERS.
 *
 *   hermes       <tool_call>{"name": .., "arguments": {..}}</tool_call>   (Qwen 2.5, Hermes, many)
 *   qwen3_coder  <function=name><parameter=key>value</parameter></function>, maybe inside <tool_call>
 *   llama3       <|python_tag|>{"name": .., "parameters": {..}}, <|python_tag|>name.call(k="v"),
 *                and Llama 3.1's <function=name>{..}</function>
 *   mistral      [TOOL_CALLS][{"name": .., "arguments": {..}}], [TOOL_CALLS]name[ARGS]{..}
 *   json         a bare JSON object or array of calls on lines of its own
 *   json_fence   the same inside a ```json (or bare ```) fence
 *   tool_calls   <tool_calls>[{"name": .., "arguments": {..}}, ..]</tool_calls>
 *   pythonic     Llama 3.2's [get_weather(city="Paris"), ..] on a line of its own
 *   tool_code    Gemma's ```tool_code fence of Python calls (print(..) around them or not)
 *   harmony      gpt-oss: <|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{..}<|call|>,
 *                an analysis channel before it given out as thinking
 */
import { BareJsonCandidate } from "./bare-json.js";
import { type Candidate, type Env, TAGS } from "./candidate.js";
import { FenceCandidate } from "./fence.js";
import { FunctionCandidate } from "./function.js";
import { HarmonyCandidate } from "./harmony.js";
import { HermesCandidate } from "./hermes.js";
import { MistralCandidate } from "./mistral.js";
import { PythonTagCandidate } from "./python-tag.js";
import { PythonicCandidate } from "./pythonic.js";
import { ToolCallsCandidate } from "./tool-calls.js";

export type { CallDraft, Candidate, Env, Lead, ScanCall, ToolFormat } from "./candidate.js";
export { TAGS } from "./candidate.js";
export type { JsonTracker } from "./json-tracker.js";
export { ToolSet } from "./tool-set.js";

/** Where a format's candidate starts. */
export interface Opener {
  /** The text that starts it. */
  tags: readonly string[];
  /** Only at the start of a line (blanks before it), and not inside a JSON value being skipped. */
  lineStart: boolean;
  make: (env: Env) => Candidate;
}

/** Every format, in the order their tags are tried (a longer tag before a shorter one it begins with). */
export const OPENERS: readonly Opener[] = [
  { tags: [TAGS.pythonTag], lineStart: false, make: (env) => new PythonTagCandidate(env) },
  {
    tags: [TAGS.harmonyChannel, TAGS.harmonyStart],
    lineStart: false,
    make: (env) => new HarmonyCandidate(env),
  },
  { tags: [TAGS.toolCalls], lineStart: false, make: (env) => new ToolCallsCandidate(env) },
  { tags: [TAGS.toolCall], lineStart: false, make: (env) => new HermesCandidate(env) },
  { tags: [TAGS.function], lineStart: false, make: (env) => new FunctionCandidate(env) },
  { tags: [TAGS.mistral], lineStart: false, make: (env) => new MistralCandidate(env) },
  { tags: ["{"], lineStart: true, make: (env) => new BareJsonCandidate(env) },
  // a `[` opens Llama 3.2's pythonic list or, handed on, a bare JSON array
  { tags: ["["], lineStart: true, make: (env) => new PythonicCandidate(env) },
  { tags: [TAGS.fence], lineStart: true, make: (env) => new FenceCandidate(env) },
];
