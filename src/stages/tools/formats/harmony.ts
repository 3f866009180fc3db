/**
 * gpt-oss's Harmony markup, as a server that does not parse it passes it on:
 *
 *     <|channel|>analysis<|message|>Need the weather.<|end|>
 *     <|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>
 *
 * A message addressed `to=` an offered tool is a call (its body the JSON arguments); the
 * `analysis` channel is the model's reasoning, given out as thinking; other messages (a
 * commentary preamble, `final`) are text. Only a run of messages with at least one call to an
 * offered tool is taken; anything else (prose naming the tokens, a call to an unknown tool) is text.
 */
import { parseJsonLenient } from "../repair.js";
import {
  type CallDraft,
  type Candidate,
  couldBe,
  type Env,
  isObject,
  type Lead,
  REJECT_ONE,
  type Step,
  skipWs,
  TAGS,
  WAIT,
} from "./candidate.js";

const H = {
  start: TAGS.harmonyStart,
  channel: TAGS.harmonyChannel,
  message: "<|message|>",
  constrain: "<|constrain|>",
} as const;
/** What ends a message's body (the first three are consumed with it). */
const ENDS = ["<|end|>", "<|call|>", "<|return|>"] as const;
const NEXT = [H.start, H.channel] as const;
/** A header longer than this is not one. */
const MAX_HEADER = 256;

export class HarmonyCandidate implements Candidate {
  constructor(private readonly env: Env) {}

  step(buf: string, final: boolean): Step {
    const drafts: CallDraft[] = [];
    const lead: Lead[] = [];
    let i = 0;
    let end = 0;
    for (;;) {
      // header: [<|start|>role] [<|channel|>channel [to=recipient] [<|constrain|>json]] <|message|>
      const msg = buf.indexOf(H.message, i);
      if (msg < 0) {
        if (final || buf.length - i > MAX_HEADER) break;
        return WAIT;
      }
      const header = buf.slice(i, msg);
      if (header.length > MAX_HEADER || header.includes("\n")) break;
      const h = readHeader(header);
      if (!h) break;
      const bodyStart = msg + H.message.length;
      let bodyEnd = -1;
      let next = -1;
      for (const t of [...ENDS, ...NEXT]) {
        const k = buf.indexOf(t, bodyStart);
        if (k >= 0 && (bodyEnd < 0 || k < bodyEnd)) {
          bodyEnd = k;
          next = (ENDS as readonly string[]).includes(t) ? k + t.length : k;
        }
      }
      if (bodyEnd < 0) {
        if (!final) return WAIT;
        bodyEnd = next = buf.length;
      }
      const body = buf.slice(bodyStart, bodyEnd);
      if (h.recipient !== undefined) {
        const resolved = this.env.tools.resolve(h.recipient);
        if (!resolved) return REJECT_ONE;
        const parsed = body.trim() ? parseJsonLenient(body.trim()) : { value: {}, repairs: [] };
        if (!parsed || !isObject(parsed.value)) return REJECT_ONE;
        drafts.push({
          name: resolved.tool.name,
          args: parsed.value,
          repairs: [...resolved.repairs, ...parsed.repairs],
        });
      } else if (h.channel === "analysis") lead.push({ type: "thinking", text: body });
      else lead.push({ type: "text", text: body });
      end = next;
      // another message follows, or the run is over
      i = skipWs(buf, next);
      if (NEXT.some((t) => buf.startsWith(t, i))) continue;
      if (!final && (i >= buf.length || NEXT.some((t) => couldBe(buf, i, t)))) return WAIT;
      break;
    }
    if (drafts.length === 0) return REJECT_ONE;
    // arguments cut off (the answer ended inside them) are not trusted without their required keys
    const truncated = drafts.some((d) => d.repairs.includes("truncated"));
    const calls = this.env.finish(drafts, "harmony", truncated, []);
    return calls ? { kind: "accept", end, calls, lead } : REJECT_ONE;
  }
}

/** A message header's channel and recipient, or undefined when it is not one. */
function readHeader(header: string): { channel?: string; recipient?: string } | undefined {
  let rest = header;
  if (rest.startsWith(H.start)) rest = rest.slice(H.start.length);
  const c = rest.indexOf(H.channel);
  const role = c < 0 ? rest : rest.slice(0, c);
  const chan = c < 0 ? "" : rest.slice(c + H.channel.length);
  if (c < 0 && !header.startsWith(H.start)) return undefined;
  const words = `${role} ${chan.replace(H.constrain, " ")}`.trim().split(/\s+/);
  if (words.some((w) => w.includes("<|"))) return undefined;
  const to = words.find((w) => w.startsWith("to="));
  const channel = chan.trim().split(/[\s<]/)[0] || undefined;
  return { channel, recipient: to?.slice(3) };
}
