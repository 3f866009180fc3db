// Deterministic request bodies for the benchmark, in both dialects (OpenAI Chat Completions and Anthropic
// Messages). The upstream reads the number of stream chunks to send from `chunks:<N>` in the last message.
//
//   node --import tsx bench/fixtures.ts   # prints the size of each body

import { pathToFileURL } from "node:url";

export const BENCH_MODEL = "bench-model";

type Json = Record<string, unknown>;

// --- small and stream -------------------------------------------------------------------------------

export function smallOpenAI(): Json {
  return {
    model: BENCH_MODEL,
    max_tokens: 64,
    messages: [{ role: "user", content: "Say hello in five words. chunks:1" }],
  };
}

export function smallAnthropic(): Json {
  return {
    model: BENCH_MODEL,
    max_tokens: 64,
    messages: [{ role: "user", content: "Say hello in five words. chunks:1" }],
  };
}

export function streamOpenAI(chunks: number): Json {
  return {
    model: BENCH_MODEL,
    max_tokens: 1024,
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: `Tell me a story. chunks:${chunks}` }],
  };
}

export function streamAnthropic(chunks: number): Json {
  return {
    model: BENCH_MODEL,
    max_tokens: 1024,
    stream: true,
    messages: [{ role: "user", content: `Tell me a story. chunks:${chunks}` }],
  };
}

// --- OpenClaw-sized ---------------------------------------------------------------------------------
// About 150 KB: a 60 KB system prompt, 20 tools with JSON schemas, 30 user/assistant turns in which every
// other assistant turn calls one or two tools and gets their results back.

/** mulberry32: a tiny seeded PRNG, so the fixture is the same on every run and machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "agent tool file path read write edit search the a of to and in is for when you must never always use " +
  "before after result output command shell process session workspace user assistant message context " +
  "memory browser page screenshot network request response error retry limit budget token stream event " +
  "config channel gateway node plugin skill cron reminder calendar email summary note project task plan " +
  "step check verify test build deploy commit branch diff patch line function class module import export " +
  "type value string number boolean array object schema field required optional default example policy"
).split(" ");

function words(rand: () => number, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  return out.join(" ");
}

function sentences(rand: () => number, targetBytes: number): string {
  let out = "";
  while (out.length < targetBytes) {
    const s = words(rand, 8 + Math.floor(rand() * 14));
    out += `${s.charAt(0).toUpperCase()}${s.slice(1)}. `;
  }
  return out.slice(0, targetBytes);
}

function systemPrompt(rand: () => number, targetBytes: number): string {
  const parts: string[] = ["You are a personal assistant running inside OpenClaw.\n"];
  let size = parts[0]!.length;
  for (let section = 1; size < targetBytes; section++) {
    const block =
      `\n## Section ${section}: ${words(rand, 3)}\n\n` +
      `${sentences(rand, 600)}\n\n` +
      `- ${words(rand, 12)}\n- ${words(rand, 10)}\n- \`${words(rand, 2).replace(" ", "_")}\`: ${words(rand, 9)}\n`;
    parts.push(block);
    size += block.length;
  }
  return parts.join("").slice(0, targetBytes);
}

const TOOL_NAMES = [
  "read",
  "write",
  "edit",
  "apply_patch",
  "exec",
  "process",
  "web_search",
  "web_fetch",
  "browser",
  "canvas",
  "nodes",
  "cron",
  "message",
  "gateway",
  "sessions_list",
  "sessions_history",
  "sessions_send",
  "image",
  "memory_search",
  "memory_get",
];

interface Tool {
  name: string;
  description: string;
  schema: Json;
}

function tools(rand: () => number): Tool[] {
  return TOOL_NAMES.map((name, t) => {
    const properties: Record<string, Json> = {};
    const required: string[] = [];
    const nProps = 4 + (t % 5);
    for (let p = 0; p < nProps; p++) {
      const key = `${words(rand, 1)}_${p}`;
      switch (p % 4) {
        case 0:
          properties[key] = { type: "string", description: sentences(rand, 90) };
          required.push(key);
          break;
        case 1:
          properties[key] = { type: "integer", minimum: 0, maximum: 1000, description: sentences(rand, 60) };
          break;
        case 2:
          properties[key] = {
            type: "string",
            enum: [words(rand, 1), words(rand, 1), words(rand, 1)],
            description: sentences(rand, 50),
          };
          break;
        default:
          properties[key] = {
            type: "array",
            items: {
              type: "object",
              properties: { name: { type: "string" }, value: { type: "string" }, weight: { type: "number" } },
              required: ["name"],
            },
            description: sentences(rand, 70),
          };
      }
    }
    return {
      name,
      description: sentences(rand, 260 + ((t * 37) % 200)),
      schema: { type: "object", properties, required, additionalProperties: false },
    };
  });
}

interface ToolCall {
  id: string;
  name: string;
  input: Json;
  result: string;
}

interface Turn {
  user: string;
  /** assistant text before tool calls (may be empty) */
  pre: string;
  calls: ToolCall[];
  /** assistant text after the tool results (or the only reply when there are no calls) */
  reply: string;
}

function turns(rand: () => number, toolList: Tool[], count: number): Turn[] {
  const out: Turn[] = [];
  for (let i = 0; i < count; i++) {
    const calls: ToolCall[] = [];
    if (i % 2 === 0) {
      const nCalls = 1 + (i % 4 === 0 ? 1 : 0);
      for (let c = 0; c < nCalls; c++) {
        const tool = toolList[(i * 3 + c * 7) % toolList.length]!;
        calls.push({
          id: `call_${String(i).padStart(2, "0")}_${c}_${Math.floor(rand() * 1e9).toString(36)}`,
          name: tool.name,
          input: {
            path: `/home/user/project/src/${words(rand, 1)}_${i}.ts`,
            query: words(rand, 6),
            limit: 200,
          },
          result: sentences(rand, 1300 + Math.floor(rand() * 400)),
        });
      }
    }
    out.push({
      user: sentences(rand, 120 + Math.floor(rand() * 200)),
      pre: calls.length > 0 ? sentences(rand, 80) : "",
      calls,
      reply: sentences(rand, 250 + Math.floor(rand() * 300)),
    });
  }
  return out;
}

interface Conversation {
  system: string;
  tools: Tool[];
  turns: Turn[];
}

let cached: Conversation | undefined;

function conversation(): Conversation {
  if (!cached) {
    const rand = prng(0x0c1a3b);
    const system = systemPrompt(rand, 60 * 1024);
    const toolList = tools(rand);
    cached = { system, tools: toolList, turns: turns(rand, toolList, 30) };
  }
  return cached;
}

const FINAL_USER = (chunks: number): string =>
  `Now summarise what we changed today and list the open follow-ups. chunks:${chunks}`;

export function openclawOpenAI(chunks: number): Json {
  const conv = conversation();
  const messages: Json[] = [{ role: "system", content: conv.system }];
  for (const t of conv.turns) {
    messages.push({ role: "user", content: t.user });
    if (t.calls.length > 0) {
      messages.push({
        role: "assistant",
        content: t.pre,
        tool_calls: t.calls.map((c) => ({
          id: c.id,
          type: "function",
          function: { name: c.name, arguments: JSON.stringify(c.input) },
        })),
      });
      for (const c of t.calls) messages.push({ role: "tool", tool_call_id: c.id, content: c.result });
    }
    messages.push({ role: "assistant", content: t.reply });
  }
  messages.push({ role: "user", content: FINAL_USER(chunks) });
  return {
    model: BENCH_MODEL,
    max_tokens: 4096,
    temperature: 0.7,
    stream: true,
    stream_options: { include_usage: true },
    tools: conv.tools.map((t) => ({
      type: "function",
      function: { name: t.name, description: t.description, parameters: t.schema },
    })),
    tool_choice: "auto",
    messages,
  };
}

export function openclawAnthropic(chunks: number): Json {
  const conv = conversation();
  const messages: Json[] = [];
  for (const t of conv.turns) {
    messages.push({ role: "user", content: t.user });
    if (t.calls.length > 0) {
      messages.push({
        role: "assistant",
        content: [
          { type: "text", text: t.pre },
          ...t.calls.map((c) => ({ type: "tool_use", id: c.id, name: c.name, input: c.input })),
        ],
      });
      messages.push({
        role: "user",
        content: t.calls.map((c) => ({ type: "tool_result", tool_use_id: c.id, content: c.result })),
      });
    }
    messages.push({ role: "assistant", content: t.reply });
  }
  messages.push({ role: "user", content: FINAL_USER(chunks) });
  return {
    model: BENCH_MODEL,
    max_tokens: 4096,
    temperature: 0.7,
    stream: true,
    system: [{ type: "text", text: conv.system, cache_control: { type: "ephemeral" } }],
    tools: conv.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.schema })),
    tool_choice: { type: "auto" },
    messages,
  };
}

// --- agent sessions, request by request (bench/cache.ts) ------------------------------------------
// A session grows as an agent's does: each request resends the whole history, and each turn appends
// an assistant tool call and its result, with a line from the user now and then. Conversations of one
// client share its system prompt and tools; what the user and the tools say is the conversation's own.

/** The requests of one OpenClaw conversation (OpenAI dialect, streaming): request n holds turns 0..n-1. */
export function openclawSession(seed: number, count: number): Json[] {
  const conv = conversation();
  const rand = prng(0x5e55 + seed * 7919);
  const messages: Json[] = [
    { role: "system", content: conv.system },
    { role: "user", content: `Session ${seed}: ${sentences(rand, 300)}` },
  ];
  const tools = conv.tools.map((t) => ({
    type: "function",
    function: { name: t.name, description: t.description, parameters: t.schema },
  }));
  const out: Json[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      model: BENCH_MODEL,
      max_tokens: 4096,
      stream: true,
      stream_options: { include_usage: true },
      tools,
      messages: [...messages],
    });
    const tool = conv.tools[(i * 3 + seed) % conv.tools.length]!;
    const id = `call_${seed}_${i}_${Math.floor(rand() * 1e9).toString(36)}`;
    messages.push({
      role: "assistant",
      content: sentences(rand, 60),
      tool_calls: [
        {
          id,
          type: "function",
          function: {
            name: tool.name,
            arguments: JSON.stringify({ path: `/src/${words(rand, 1)}_${i}.ts` }),
          },
        },
      ],
    });
    messages.push({
      role: "tool",
      tool_call_id: id,
      content: sentences(rand, 900 + Math.floor(rand() * 900)),
    });
    if (i % 4 === 3)
      messages.push({ role: "user", content: sentences(rand, 100 + Math.floor(rand() * 150)) });
  }
  return out;
}

/** OpenClaw's background work for a conversation: a title request (no tools, a short output limit). */
export function openclawBackground(seed: number, n: number): Json {
  const rand = prng(0xb6 + seed * 31 + n);
  return {
    model: BENCH_MODEL,
    max_tokens: 64,
    stream: false,
    messages: [
      { role: "system", content: "Generate a concise title (at most six words) for this conversation." },
      { role: "user", content: sentences(rand, 400) },
    ],
  };
}

let ccSystem: string | undefined;

/** Claude Code's billing block: a new `cch` on every request (reference/claude-code-client.md). */
function billingBlock(seed: number, n: number): string {
  return `x-anthropic-billing-header: cc_version=2.1.332.a1b; cc_entrypoint=cli; cch=${((seed * 131 + n) * 7919).toString(16)};`;
}

/**
 * The requests of one Claude Code conversation (Anthropic dialect, streaming): three system blocks,
 * the first the volatile billing block; 12 tools; a late `system` message (a reminder) every turn.
 */
export function claudeCodeSession(seed: number, count: number): Json[] {
  const conv = conversation();
  ccSystem ??= systemPrompt(prng(0xcc), 40 * 1024).replace("OpenClaw", "Claude Code");
  const rand = prng(0xc0de + seed * 104729);
  const tools = conv.tools
    .slice(0, 12)
    .map((t) => ({ name: t.name, description: t.description, input_schema: t.schema }));
  const messages: Json[] = [{ role: "user", content: `Session ${seed}: ${sentences(rand, 300)}` }];
  const out: Json[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      model: BENCH_MODEL,
      max_tokens: 8192,
      stream: true,
      system: [
        { type: "text", text: billingBlock(seed, i) },
        { type: "text", text: "You are Claude Code, Anthropic's official CLI for Claude." },
        { type: "text", text: ccSystem, cache_control: { type: "ephemeral" } },
      ],
      tools,
      messages: [...messages],
    });
    const tool = tools[(i * 5 + seed) % tools.length]!;
    const id = `toolu_${seed}_${i}_${Math.floor(rand() * 1e9).toString(36)}`;
    messages.push({
      role: "system",
      content: `<system-reminder>Turn ${i}: the todo list has ${1 + (i % 5)} open items.</system-reminder>`,
    });
    messages.push({
      role: "assistant",
      content: [
        { type: "text", text: sentences(rand, 60) },
        { type: "tool_use", id, name: tool.name, input: { path: `/src/${words(rand, 1)}_${i}.ts` } },
      ],
    });
    const result: Json[] = [
      { type: "tool_result", tool_use_id: id, content: sentences(rand, 900 + Math.floor(rand() * 900)) },
    ];
    if (i % 4 === 3) result.push({ type: "text", text: sentences(rand, 100 + Math.floor(rand() * 150)) });
    messages.push({ role: "user", content: result });
  }
  return out;
}

/** Claude Code's background work: its topic/title check (no tools, a short system prompt). */
export function claudeCodeBackground(seed: number, n: number): Json {
  const rand = prng(0xcb + seed * 31 + n);
  return {
    model: BENCH_MODEL,
    max_tokens: 512,
    stream: false,
    system: [
      {
        type: "text",
        text: "Analyze if this message indicates a new conversation topic. If it does, extract a 2-3 word title.",
      },
    ],
    messages: [{ role: "user", content: sentences(rand, 400) }],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const show = (name: string, body: Json): void => {
    const bytes = Buffer.byteLength(JSON.stringify(body));
    process.stdout.write(`${name.padEnd(20)} ${(bytes / 1024).toFixed(1).padStart(8)} KB\n`);
  };
  show("small (openai)", smallOpenAI());
  show("small (anthropic)", smallAnthropic());
  show("stream (openai)", streamOpenAI(200));
  show("stream (anthropic)", streamAnthropic(200));
  show("openclaw (openai)", openclawOpenAI(100));
  show("openclaw (anthropic)", openclawAnthropic(100));
  const conv = conversation();
  process.stdout.write(
    `openclaw: system ${(conv.system.length / 1024).toFixed(1)} KB, ${conv.tools.length} tools ` +
      `(${(JSON.stringify(conv.tools).length / 1024).toFixed(1)} KB), ${conv.turns.length} turns, ` +
      `${conv.turns.reduce((n, t) => n + t.calls.length, 0)} tool calls\n`,
  );
}
