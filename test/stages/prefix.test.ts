import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { BACKENDS } from "../backends/cases.js";
import { startOllamaFake } from "../fakes/ollama.js";
import type { FakeServer, RecordedRequest } from "../fakes/script.js";
import { oneBackend, startGateway } from "../helpers.js";

// A server's prompt cache holds what the prompt of the last turn shares with this one, from the
// first token. These tests render what each backend was sent as a chat template would (ChatML)
// and check that turn N+1 starts with everything of turn N it shares with it.

type Wire = Record<string, any>;

function content(c: unknown): string {
  if (typeof c === "string") return c;
  if (Array.isArray(c)) return c.map((p) => (p.type === "text" ? p.text : JSON.stringify(p))).join("\n");
  return c == null ? "" : JSON.stringify(c);
}

/** The prompt as a ChatML template renders it, without the generation prompt. */
function rendered(body: Wire): string {
  let out = "";
  const turn = (role: string, text: string) => {
    out += `<|im_start|>${role}\n${text}<|im_end|>\n`;
  };
  // Anthropic's wire: system at the top level, as a string or blocks
  if (body.system !== undefined) turn("system", content(body.system));
  for (const m of body.messages as Wire[]) {
    const calls = m.tool_calls ? `\n${JSON.stringify(m.tool_calls)}` : "";
    turn(m.role, content(m.content) + calls);
  }
  return out;
}

function shared(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

const billing = (n: number) =>
  `x-anthropic-billing-header: cc_version=2.1.332.a1b; cc_entrypoint=cli; cch=${(n * 7919).toString(16)}f3;`;
const SYSTEM = "You are Claude Code, Anthropic's official CLI for Claude.";
const RULES = "Follow the repository's conventions. Keep answers short.";

/** Claude Code's request on turn `n`: 3 system blocks (the billing one new each time), a late system message each turn. */
function claudeCodeTurn(n: number): Anthropic.MessageCreateParamsNonStreaming {
  const messages: any[] = [{ role: "user", content: "Fix the failing test in src/sum.ts" }];
  for (let i = 0; i < n; i++) {
    messages.push({
      role: "system",
      content: `<system-reminder>Turn ${i}: today is 2026-12-0${i + 1}</system-reminder>`,
    });
    messages.push({ role: "assistant", content: `Looking at step ${i}.` });
    messages.push({ role: "user", content: `Go on with step ${i + 1}.` });
  }
  return {
    model: "m",
    max_tokens: 50,
    system: [
      { type: "text", text: billing(n) },
      { type: "text", text: SYSTEM, cache_control: { type: "ephemeral" } },
      { type: "text", text: RULES, cache_control: { type: "ephemeral" } },
    ],
    messages,
  };
}

describe("prefix-safe rewriting: turn N+1 starts with turn N", () => {
  for (const b of BACKENDS) {
    test(`${b.kind}: Claude Code's billing block and its late system messages keep the prefix`, async () => {
      const fake = await b.start();
      const gw = await startGateway(oneBackend(b.kind, fake.url, b.model, b.extra ?? "", "m"));
      try {
        const client = new Anthropic({ baseURL: gw.url, apiKey: "sk-upstream", maxRetries: 0 });
        for (let n = 0; n < 4; n++) await client.messages.create(claudeCodeTurn(n));
        // Anthropic itself gets the billing block (its cache is its own affair): compared without it
        const sent = b
          .chats(fake)
          .map((r: RecordedRequest) => rendered(r.body).replace(/x-anthropic-billing-header:[^\n]*/, ""));
        assert.equal(sent.length, 4);
        for (let n = 1; n < sent.length; n++)
          assert.ok(
            sent[n]!.startsWith(sent[n - 1]!),
            `turn ${n} shares ${shared(sent[n - 1]!, sent[n]!)} of turn ${n - 1}'s ${sent[n - 1]!.length} characters`,
          );
        const last = b.chats(fake).at(-1)!.body;
        const text = JSON.stringify(last);
        if (b.kind === "anthropic")
          assert.match(text, /x-anthropic-billing-header/, "Anthropic itself gets it");
        else assert.doesNotMatch(text, /x-anthropic-billing-header/, "never reaches a local model");
        assert.match(text, /You are Claude Code/);
        // each late system message is where the client put it: after the first user turn
        const where = last.messages.findIndex((m: Wire) => content(m.content).includes("Turn 0: today"));
        const first = last.messages.findIndex((m: Wire) =>
          content(m.content).includes("Fix the failing test"),
        );
        assert.ok(where > first && first >= 0, `late system message at ${where}, task at ${first}`);
      } finally {
        await gw.close();
        await fake.close();
      }
    });
  }

  test("emulated tools: a forced call's instruction sits at the end, so the next (auto) turn shares all before it", async () => {
    const fake: FakeServer = await startOllamaFake({
      models: [{ name: "gemma3", capabilities: ["completion"] }],
    });
    const gw = await startGateway(oneBackend("ollama", fake.url, "gemma3", "", "m"));
    try {
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      const tool = {
        name: "read",
        description: "Read a file",
        input_schema: {
          type: "object" as const,
          properties: { path: { type: "string" } },
          required: ["path"],
        },
      };
      const task: Anthropic.MessageParam = { role: "user", content: "What does README.md say?" };
      fake.setReply({ text: '{"name": "read", "arguments": {"path": "README.md"}}' });
      const forced = await client.messages.create({
        model: "m",
        max_tokens: 100,
        system: SYSTEM,
        tools: [tool],
        tool_choice: { type: "tool", name: "read" },
        messages: [task],
      });
      const call = forced.content.find((c) => c.type === "tool_use")!;
      assert.ok(call, "the forced call came back as a call");
      fake.setReply({ text: "It says hello." });
      await client.messages.create({
        model: "m",
        max_tokens: 100,
        system: SYSTEM,
        tools: [tool],
        messages: [
          task,
          { role: "assistant", content: forced.content },
          { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "hello" }] },
        ],
      });
      const [a, b] = fake.requests.filter((r) => r.path === "/api/chat").map((r) => rendered(r.body));
      const taskEnd = a!.indexOf("What does README.md say?") + "What does README.md say?".length;
      assert.ok(
        a!.indexOf("You must call the function read") > taskEnd,
        "the instruction comes after the task",
      );
      assert.ok(
        shared(a!, b!) >= taskEnd,
        `shared ${shared(a!, b!)} characters; the task ends at ${taskEnd}`,
      );
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});

describe("fit_policy: drop-oldest in an agent loop", () => {
  test("llama.cpp, 24 tool rounds past the window: the task stays, whole rounds go, the cut moves rarely", async () => {
    const b = BACKENDS.find((x) => x.kind === "openai-compat")!;
    const fake = await (await import("../fakes/openai-compat.js")).startOpenAICompatFake({
      flavor: "llamacpp",
      contextLength: 4096,
    });
    const gw = await startGateway(
      `
backends:
  b: { kind: openai-compat, url: "${fake.url}", flavor: llamacpp }
models:
  m: { backend: b, model: fake-model, fit_policy: drop-oldest }
`,
    );
    try {
      fake.setReply({ text: "Next." });
      const client = new Anthropic({ baseURL: gw.url, apiKey: "k", maxRetries: 0 });
      const tool = { name: "read", input_schema: { type: "object" as const, properties: {} } };
      const TASK = "TASK: rename every helper in src/ to camelCase and keep the tests green.";
      const messages: Anthropic.MessageParam[] = [{ role: "user", content: TASK }];
      const firstKept: string[] = [];
      const prompts: string[] = [];
      for (let i = 0; i < 24; i++) {
        messages.push({
          role: "assistant",
          content: [{ type: "tool_use", id: `toolu_${i}`, name: "read", input: { path: `src/f${i}.ts` } }],
        });
        const body = Array.from(
          { length: 12 },
          (_, k) => `export const helper_${i}_${k} = (a: number) => a * ${k};`,
        );
        messages.push({
          role: "user",
          content: [{ type: "tool_result", tool_use_id: `toolu_${i}`, content: body.join("\n") }],
        });
        await client.messages.create({ model: "m", max_tokens: 64, system: SYSTEM, tools: [tool], messages });
        const sent = b.chats(fake).at(-1)!.body;
        const wire = sent.messages as Wire[];
        assert.equal(wire[0]!.role, "system");
        assert.match(content(wire[1]!.content), /^TASK: rename/, `turn ${i}: the task is kept`);
        // every tool result still has its call
        const calls = new Set(wire.flatMap((m) => (m.tool_calls ?? []).map((c: Wire) => c.id)));
        for (const m of wire)
          if (m.role === "tool") assert.ok(calls.has(m.tool_call_id), `turn ${i}: no orphan`);
        firstKept.push(JSON.stringify(wire[2] ?? null));
        prompts.push(rendered(sent));
      }
      const cutTurns = prompts.filter((p) => p.includes("were removed here")).length;
      const moves = firstKept.filter((k, i) => i > 0 && k !== firstKept[i - 1]).length;
      assert.ok(cutTurns >= 10, `the window was exceeded on ${cutTurns} turns`);
      // a cut fitted afresh each turn moves on every one of them; a quarter of the window per step: ~1 in 4
      assert.ok(moves <= cutTurns / 2, `the cut moved on ${moves} of ${cutTurns} turns`);
      // where the cut stayed, the whole previous prompt is the start of the next one
      let kept = 0;
      for (let i = 1; i < prompts.length; i++) if (prompts[i]!.startsWith(prompts[i - 1]!)) kept++;
      assert.ok(kept >= prompts.length - 1 - moves, `${kept} of ${prompts.length - 1} turns kept the prefix`);
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
