import type { Message, Part } from "../ir/types.js";

export interface Fitted {
  messages: Message[];
  /** Messages removed whole. */
  dropped: number;
  /** Estimated tokens freed. */
  freed: number;
}

/** Said where turns were removed: fixed text, so the prompt up to and after it stays the same from turn to turn. */
export const DROPPED_NOTE =
  "[Earlier turns of this conversation were removed here to fit the model's context window.]";

/**
 * Fits a conversation by dropping whole rounds from the oldest, in a way that keeps the server's
 * prompt cache useful:
 * - the head stays pinned: the first user message (in an agent loop, the task); the system prompt
 *   and tools are not messages and are never touched;
 * - a round is an assistant turn and what follows it up to the next assistant turn (its tool
 *   results, the user's next words): calls and their results go together;
 * - the cut frees a multiple of `step` tokens (at least `need`), counted from the oldest round. The
 *   history before the cut does not change between turns, so the cut stays where it was until the
 *   conversation has grown by another `step` (a low-water mark), instead of moving every turn;
 * - the fixed DROPPED_NOTE is added to the head, where the turns were removed.
 * The last message always stays. Undefined when dropping every round but the last cannot free `need`.
 */
export function dropRounds(
  messages: Message[],
  tokensOf: (m: Message) => number,
  need: number,
  step: number,
): Fitted | undefined {
  const n = messages.length;
  const head = messages[0]?.role === "user" ? 1 : 0;
  // cut candidates: the start of every round after the head, the last message kept
  const cuts: number[] = [];
  for (let i = head + 1; i < n; i++) if (messages[i]!.role === "assistant") cuts.push(i);
  if (!cuts.length) return undefined;
  const target = Math.max(need, Math.ceil(need / Math.max(1, step)) * Math.max(1, step));
  let freed = 0;
  let at = head;
  let chosen: number | undefined;
  for (const cut of cuts) {
    for (; at < cut; at++) freed += tokensOf(messages[at]!);
    chosen = cut;
    if (freed >= target) break;
  }
  if (chosen === undefined || freed < need) return undefined;

  // a result whose call was dropped goes too (a client's history need not keep results in their round)
  const dropped = new Set<string>();
  for (let i = head; i < chosen; i++)
    for (const p of messages[i]!.parts) if (p.type === "toolCall") dropped.add(p.id);
  const orphan = (p: Part) => p.type === "toolResult" && dropped.has(p.toolCallId);
  const tail: Message[] = [];
  for (let j = chosen; j < n; j++) {
    const m = messages[j]!;
    if (!m.parts.some(orphan)) tail.push(m);
    else {
      const kept = m.parts.filter((p) => !orphan(p));
      if (kept.length) tail.push({ role: m.role, parts: kept });
      else if (j === n - 1) tail.push(m);
    }
  }
  const note: Part = { type: "text", text: DROPPED_NOTE };
  const first: Message[] = head
    ? [{ role: "user", parts: [...messages[0]!.parts, note] }]
    : [{ role: "user", parts: [note] }];
  const out = [...first, ...tail];
  return { messages: out, dropped: n - head - tail.length, freed };
}
