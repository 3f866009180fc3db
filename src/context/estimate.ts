import type { Message, Request } from "../ir/types.js";

/**
 * A fast estimate of prompt tokens, from what the text is made of. Tokenizers spend very
 * differently on letters (a word is a token or two), punctuation (code and JSON: nearly a token
 * a mark), non-Latin scripts (about a token a character) and line breaks, so the request is
 * measured in those classes — `Features` — and each class has its own cost: a prior that fits
 * BPE vocabularies, which `calibrate.ts` corrects per model from the counts the backend reports.
 * Cheap on purpose, since it runs on every request: the text is sampled (about one character in
 * 48), not scanned, and nothing is serialized.
 */

/** What a prompt is made of: character classes, the chat template's own tokens, and the request itself. */
export type Features = Float64Array;

/** Indexes into Features. */
export const ALNUM = 0;
const PUNCT = 1;
const OTHER = 2;
const BREAK = 3;
const FIXED = 4;
/**
 * One per request: the template's fixed text (the generation prompt, and whatever the template
 * adds to every prompt, such as a default system prompt). Its own class so that calibration can
 * tell a fixed cost per request from a cost per character: learned from small requests alone,
 * the two look alike, and a fixed cost taken for a dear tokenizer would double the estimate of
 * the large requests that follow.
 */
export const REQUEST = 5;
export const FEATURES = 6;

/** Tokens per unit of each class before calibration: BPE vocabularies on English, code and JSON. */
export const PRIOR: readonly number[] = [
  0.25, // letters and digits: ~4 to a token
  0.7, // punctuation and symbols: most a token each, some merged
  0.8, // non-ASCII characters: CJK about a token each, accents less
  0.5, // line breaks and tabs: often merged with what follows
  1, // template tokens (role markers, separators): counted as tokens already
  3, // the request: the generation prompt and the template's fixed text
];

/** Role markers and separators the chat template adds around each message. */
const PER_MESSAGE = 4;
/** What a vision model's encoder typically spends on one image. */
const PER_IMAGE = 1500;
/** Template tokens around one tool call or result. */
const PER_TOOL_PART = 8;
/** Template tokens around one tool definition. */
const PER_TOOL = 10;
/** Characters between two looked at: 1 in ~48 is plenty to tell prose from code in a long prompt. */
const STRIDE_MIN = 16;
const STRIDE_SPREAD = 64;

/** ASCII character → class (spaces: none, they ride on the word after them). */
const CLASS = new Int8Array(128).fill(PUNCT);
for (let c = 48; c <= 57; c++) CLASS[c] = ALNUM;
for (let c = 65; c <= 90; c++) CLASS[c] = ALNUM;
for (let c = 97; c <= 122; c++) CLASS[c] = ALNUM;
CLASS[32] = -1;
CLASS[10] = BREAK;
CLASS[13] = -1;
CLASS[9] = BREAK;

/**
 * Features are measured on a sample: the request's text is read as one stream, and about one
 * character in 48 is classified (one in 2.5 of the first 4K) — at irregular steps, so periodic
 * text such as code does not alias — each standing for the characters up to the next.
 * Deterministic for a given request.
 */
interface Meter {
  f: Features;
  /** Characters until the next one looked at. */
  skip: number;
  /** Where in the step table the next step is. */
  seed: number;
  /** Characters gone by. */
  read: number;
}

function meter(): Meter {
  return { f: new Float64Array(FEATURES), skip: 0, seed: 0, read: 0 };
}

/** Irregular steps between the characters looked at: 16 to 79, 47.5 on average. */
const STEPS = steps(STRIDE_MIN, STRIDE_SPREAD);
/** The first DENSE characters of a request are looked at closer (1 to 4 apart): small requests are cheap anyway. */
const DENSE_STEPS = steps(1, 4);
const DENSE = 4096;

function steps(min: number, spread: number): Uint8Array {
  const out = new Uint8Array(64);
  for (let i = 0, seed = 0x2545f491; i < out.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out[i] = min + ((seed >>> 16) % spread);
  }
  return out;
}

/** Adds a text's character classes, sampled. */
function text(m: Meter, s: string): void {
  const n = s.length;
  let i = m.skip;
  if (i >= n) {
    m.skip = i - n;
    m.read += n;
    return;
  }
  let at = m.seed;
  let alnum = 0;
  let punct = 0;
  let other = 0;
  let breaks = 0;
  // where in this text the closer look at the request's start ends
  const dense = DENSE - m.read;
  m.read += n;
  while (i < n) {
    const step = (i < dense ? DENSE_STEPS : STEPS)[at++ & 63]!;
    const c = s.charCodeAt(i);
    if (c >= 128) other += step;
    else {
      const k = CLASS[c]!;
      if (k === ALNUM) alnum += step;
      else if (k === PUNCT) punct += step;
      else if (k === BREAK) breaks += step;
    }
    i += step;
  }
  const f = m.f;
  f[ALNUM] = f[ALNUM]! + alnum;
  f[PUNCT] = f[PUNCT]! + punct;
  f[OTHER] = f[OTHER]! + other;
  f[BREAK] = f[BREAK]! + breaks;
  m.seed = at;
  m.skip = i - n;
}

/** Adds a JSON value as its serialization would read (quotes, braces, commas), without serializing it. */
function json(m: Meter, v: unknown): void {
  const f = m.f;
  if (typeof v === "string") {
    text(m, v);
    f[PUNCT] = f[PUNCT]! + 2;
  } else if (typeof v === "number" || typeof v === "boolean") f[ALNUM] = f[ALNUM]! + 3;
  else if (v === null || v === undefined) f[ALNUM] = f[ALNUM]! + 4;
  else if (Array.isArray(v)) {
    f[PUNCT] = f[PUNCT]! + 1 + v.length;
    for (const x of v) json(m, x);
  } else if (typeof v === "object") {
    f[PUNCT] = f[PUNCT]! + 2;
    for (const k in v) {
      text(m, k);
      f[PUNCT] = f[PUNCT]! + 4;
      json(m, (v as Record<string, unknown>)[k]);
    }
  }
}

/** Adds one message, template included. */
function message(m: Meter, msg: Message): void {
  const f = m.f;
  let fixed = PER_MESSAGE;
  for (const p of msg.parts) {
    switch (p.type) {
      case "text":
      case "thinking":
        text(m, p.text);
        break;
      case "image":
        fixed += PER_IMAGE;
        break;
      case "toolCall":
        text(m, p.name);
        text(m, p.id);
        json(m, p.input);
        fixed += PER_TOOL_PART;
        break;
      case "toolResult":
        for (const c of p.content) {
          if (c.type === "text") text(m, c.text);
          else fixed += PER_IMAGE;
        }
        text(m, p.toolCallId);
        fixed += PER_TOOL_PART;
        break;
    }
  }
  f[FIXED] = f[FIXED]! + fixed;
}

/** Adds what comes before the conversation: the system prompt and the tool definitions. */
function preamble(m: Meter, req: Pick<Request, "system" | "tools">): void {
  const f = m.f;
  f[REQUEST] = 1;
  if (req.system) {
    text(m, req.system);
    f[FIXED] = f[FIXED]! + PER_MESSAGE;
  }
  for (const t of req.tools) {
    text(m, t.name);
    if (t.description) text(m, t.description);
    json(m, t.inputSchema);
    f[FIXED] = f[FIXED]! + PER_TOOL;
  }
}

/** The features of a whole request, system prompt and tool definitions included. */
export function requestFeatures(req: Pick<Request, "system" | "messages" | "tools">): Features {
  const m = meter();
  preamble(m, req);
  for (const msg of req.messages) message(m, msg);
  return m.f;
}

/** The features of one message (for choosing which turns to drop). */
export function messageFeatures(msg: Message): Features {
  const m = meter();
  message(m, msg);
  return m.f;
}

/** Tokens by the given cost per class (the prior when none is given). */
export function tokensOf(f: Features, costs: ArrayLike<number> = PRIOR): number {
  let t = 0;
  for (let i = 0; i < FEATURES; i++) t += f[i]! * costs[i]!;
  return Math.ceil(t);
}

/** The uncalibrated estimate of a whole request. */
export function rawTokens(req: Pick<Request, "system" | "messages" | "tools">): number {
  return tokensOf(requestFeatures(req));
}

/** The uncalibrated estimate of one message. */
export function messageTokens(m: Message): number {
  return tokensOf(messageFeatures(m));
}
