/**
 * The fakes' stand-in for a model's chat template and tokenizer, shared by the Ollama and the
 * OpenAI-compatible fakes so they count a prompt the same way: the chat rendered Llama-3 style,
 * then split into words (with their leading space), single punctuation marks, runs of
 * whitespace and `<|special|>` markers. Deterministic; ids from a hash.
 */

type Obj = Record<string, unknown>;

/** The pieces: a special marker, a word (with the space before it), a mark (likewise), white space. */
const PIECES = /<\|[a-z_]+\|>| ?[\p{L}\p{N}]+| ?[^\s\p{L}\p{N}]|\s+/gu;
/** The same from one place on (`lastIndex`), with markers (AT) or without: the scanner's way for what is not ASCII. */
const AT = /<\|[a-z_]+\|>| ?[\p{L}\p{N}]+| ?[^\s\p{L}\p{N}]|\s+/uy;
const AT_PLAIN = / ?[\p{L}\p{N}]+| ?[^\s\p{L}\p{N}]|\s+/uy;

export const BOS = { id: 128000, piece: "<|begin_of_text|>" };

/** Tokens of a text; `special` reads `<|...|>` markers as one token each (llama.cpp parse_special). */
export function fakeTokenize(text: string, special = false): Array<{ id: number; piece: string }> {
  const out: Array<{ id: number; piece: string }> = [];
  scan(text, special, (from, to) => out.push({ id: pieceId(text, from, to), piece: text.slice(from, to) }));
  return out;
}

/** The ids alone of `fakeTokenize`'s tokens (what /tokenize answers without pieces). */
export function fakeTokenIds(text: string, special = false): number[] {
  const out: number[] = [];
  scan(text, special, (from, to) => out.push(pieceId(text, from, to)));
  return out;
}

/** A piece's id: FNV-1a over its code points. */
function pieceId(text: string, from: number, to: number): number {
  let h = 2166136261;
  for (let i = from; i < to; i++) {
    const c = text.codePointAt(i)!;
    if (c > 0xffff) i++;
    h = Math.imul(h ^ c, 16777619) >>> 0;
  }
  return 100 + (h % 127900);
}

/** ASCII classes: 1 a letter or digit (\p{L}\p{N}), 2 white space (\s), 0 anything else. */
const ASCII = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  ASCII[c] = /[\p{L}\p{N}]/u.test(ch) ? 1 : /\s/.test(ch) ? 2 : 0;
}
const WORD = 1;
const SPACE = 2;

/**
 * Calls `each(from, to)` for every piece of `text` in order: exactly what matching PIECES (less
 * its first alternative unless `special`) finds, ASCII read by hand and the rest by the pattern from that place on (the
 * pattern alone costs 2 ms on a 50 KB prompt, and the fakes count every prompt). A piece read
 * by hand must end at an ASCII character or the end; where it would not, the pattern reads it.
 */
function scan(text: string, special: boolean, each: (from: number, to: number) => void): void {
  const at = special ? AT : AT_PLAIN;
  const n = text.length;
  const cls = (i: number) => {
    const c = text.charCodeAt(i);
    return c < 128 ? ASCII[c]! : -1;
  };
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    let end = -1;
    if (c < 128 && !(special && c === 0x3c)) {
      const k = ASCII[c]!;
      // ` ?[\p{L}\p{N}]+`: a space goes with the word after it
      const word = k === WORD ? i : c === 0x20 && i + 1 < n && cls(i + 1) === WORD ? i + 1 : -1;
      if (word >= 0) {
        let j = word + 1;
        while (j < n && cls(j) === WORD) j++;
        if (j === n || cls(j) !== -1) end = j;
      } else if (c === 0x20 && i + 1 < n && cls(i + 1) === 0) {
        // ` ?[^\s\p{L}\p{N}]`: a space and one mark
        end = i + 2;
      } else if (k === 0) {
        end = i + 1;
      } else if (k === SPACE && (i + 1 === n || cls(i + 1) !== -1)) {
        // `\s+`
        let j = i + 1;
        while (j < n && cls(j) === SPACE) j++;
        if (j === n || cls(j) !== -1) end = j;
      }
    }
    if (end < 0) {
      at.lastIndex = i;
      const m = at.exec(text);
      // every character is a word's, a space's or a mark's: the pattern always matches
      end = m ? i + m[0].length : i + 1;
    }
    each(i, end);
    i = end;
  }
}

/** How many tokens a text is, special markers read as one. */
export function countTokens(text: string): number {
  let n = 0;
  scan(text, true, () => n++);
  return n;
}

/**
 * A chat request (OpenAI or Ollama messages, OpenAI-style tools) as the prompt text the model
 * reads, without the BOS token: tools in a system block as JSON, then each message between
 * header markers, then the assistant's header for the answer.
 */
export function renderChat(messages: unknown, tools?: unknown): string {
  let out = "";
  if (Array.isArray(tools) && tools.length) {
    out += `<|start_header_id|>system<|end_header_id|>\n\nYou may call these tools:\n${JSON.stringify(tools)}<|eot_id|>`;
  }
  for (const raw of Array.isArray(messages) ? messages : []) {
    const m = (raw ?? {}) as Obj;
    out += `<|start_header_id|>${String(m.role ?? "user")}<|end_header_id|>\n\n${contentText(m.content)}`;
    if (Array.isArray(m.images)) out += " [image]".repeat(m.images.length);
    if (Array.isArray(m.tool_calls)) {
      for (const c of m.tool_calls as Obj[]) {
        const fn = (c?.function ?? {}) as Obj;
        const args = typeof fn.arguments === "string" ? fn.arguments : JSON.stringify(fn.arguments ?? {});
        out += `\n<tool_call>{"name": ${JSON.stringify(fn.name ?? "")}, "arguments": ${args}}</tool_call>`;
      }
    }
    out += "<|eot_id|>";
  }
  return `${out}<|start_header_id|>assistant<|end_header_id|>\n\n`;
}

/** Prompt tokens of a chat request: the rendered chat plus BOS. */
export function chatTokens(messages: unknown, tools?: unknown): number {
  return 1 + countTokens(renderChat(messages, tools));
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) => {
      const part = (p ?? {}) as Obj;
      if (typeof part.text === "string") return part.text;
      return part.type === "image_url" || part.type === "image" ? "[image]" : "";
    })
    .join("\n");
}

/** The last `n` tokens of a text: what a server that cuts a prompt from the front keeps. */
export function lastTokens(text: string, n: number): string {
  const pieces = text.match(PIECES) ?? [];
  return pieces.slice(Math.max(0, pieces.length - n)).join("");
}
