import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { collect } from "../../../src/ir/collect.js";
import type { Event, Request, Response, Tool } from "../../../src/ir/types.js";
import type { ModelProfile, ToolMode } from "../../../src/ir/contract.js";
import { coerceToSchema, parseJsonLenient } from "../../../src/stages/tools/repair.js";
import { rescue } from "../../../src/stages/tools/rescue.js";
import { type ScanOutput, ToolCallScanner } from "../../../src/stages/tools/scanner.js";
import type { StageContext } from "../../../src/stages/types.js";
import { CORPUS, CORPUS_TOOLS, type CorpusCase, prng, words } from "../../fixtures/tool-corpus.js";
import { emptyRequest, stageContext } from "../../helpers.js";

/** Splits text into pieces of 1..max characters, at random. */
function chunk(text: string, rand: () => number, max: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const n = 1 + Math.floor(rand() * max);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

function profile(signedThinking = false): ModelProfile {
  return {
    alias: "m",
    model: "m",
    dropParams: true,
    backend: { name: "b", kind: "openai-compat", caps: { thinkingNeedsSignature: signedThinking } } as any,
  };
}

interface Harness {
  ctx: StageContext;
  counts: Map<string, number>;
  logs: Array<{ level: string; obj: any; msg: string }>;
}

function harness(
  tools: Tool[] = CORPUS_TOOLS,
  opts: { toolMode?: ToolMode; signed?: boolean } = {},
): Harness {
  const req: Request = { ...emptyRequest("m"), tools };
  const ctx = stageContext(profile(opts.signed), req);
  const counts = new Map<string, number>();
  const logs: Harness["logs"] = [];
  const logger = (level: string) => (obj: any, msg: string) => logs.push({ level, obj, msg });
  ctx.log = { debug: logger("debug"), info: logger("info"), warn: logger("warn") } as any;
  ctx.count = (what, n = 1) => counts.set(what, (counts.get(what) ?? 0) + n);
  if (opts.toolMode) ctx.toolMode = opts.toolMode;
  return { ctx, counts, logs };
}

/** The events one at a time: each its own batch, as a backend that sends one per network read. */
async function* stream(events: Event[]): AsyncGenerator<Event[]> {
  for (const e of events) yield [e];
}

/** The backend's events for a corpus case, its text and reasoning cut into random pieces. */
function backendEvents(c: CorpusCase, rand: () => number, max: number): Event[] {
  const events: Event[] = [{ type: "start", id: "x", model: "m" }];
  for (const t of chunk(c.reasoning ?? "", rand, max)) events.push({ type: "thinkingDelta", text: t });
  for (const t of chunk(c.text, rand, max)) events.push({ type: "textDelta", text: t });
  events.push({ type: "usage", usage: { outputTokens: 10 } });
  events.push({ type: "stop", reason: c.finishReason === "length" ? "max_tokens" : "end_turn" });
  return events;
}

async function runStage(events: Event[], h = harness()): Promise<Response> {
  return collect(rescue(stream(events), h.ctx.client, h.ctx));
}

function merged(outputs: ScanOutput[]): ScanOutput[] {
  const out: ScanOutput[] = [];
  for (const o of outputs) {
    const last = out.at(-1);
    if (o.type === "text" && last?.type === "text") last.text += o.text;
    else out.push(o.type === "text" ? { ...o } : o);
  }
  return out;
}

describe("lenient JSON", () => {
  const cases: Array<[string, unknown, string[]]> = [
    ['{"a": 1}', { a: 1 }, []],
    ['{"a": 1,}', { a: 1 }, ["trailing_comma"]],
    ["[1, 2,]", [1, 2], ["trailing_comma"]],
    ["{'a': 'it\\'s'}", { a: "it's" }, ["single_quotes"]],
    ['{a: 1, b_c: "x"}', { a: 1, b_c: "x" }, ["unquoted_keys"]],
    ['{"a": True, "b": None, "c": False}', { a: true, b: null, c: false }, ["python_literals"]],
    ['{"a": "x\ny"}', { a: "x\ny" }, ["control_chars"]],
    ['{"a": {"b": [1, 2', { a: { b: [1] } }, ["truncated"]],
    ['{"a": "complete", "b": "cut', { a: "complete" }, ["truncated"]],
    ['{"a": 1, "b":', { a: 1 }, ["truncated"]],
    ['{"a": 1, "b', { a: 1 }, ["truncated"]],
    ['{"a": 1 "b": 2}', { a: 1, b: 2 }, ["missing_comma"]],
    ['{"a": tru', {}, ["truncated"]],
  ];
  for (const [text, value, repairs] of cases) {
    test(JSON.stringify(text), () => {
      const r = parseJsonLenient(text);
      assert.ok(r, "parses");
      assert.deepEqual(r.value, value);
      assert.deepEqual(r.repairs.sort(), repairs.sort());
    });
  }
  test("what is not JSON stays not JSON", () => {
    for (const text of ["hello", "{a b}", '{"a": 1} trailing', "{{x}}", "", "[1 2 x]", "{'a': hello}"])
      assert.equal(parseJsonLenient(text), undefined, text);
  });
});

describe("schema coercion", () => {
  const schema = CORPUS_TOOLS.find((t) => t.name === "search_web")!.inputSchema;
  test("strings to numbers, booleans and objects; numbers to strings", () => {
    const r = coerceToSchema(
      { query: 42, max_results: "5", filters: '{"site": "a.com"}', extra: "kept" },
      schema,
    );
    assert.deepEqual(r.input, { query: "42", max_results: 5, filters: { site: "a.com" }, extra: "kept" });
    assert.deepEqual(r.repairs.sort(), ["number_to_string", "string_to_json", "string_to_number"]);
    assert.deepEqual(r.problems, []);
  });
  test("a boolean string, and what cannot be coerced is reported", () => {
    const cmd = CORPUS_TOOLS.find((t) => t.name === "run_command")!.inputSchema;
    const r = coerceToSchema({ background: "TRUE", timeout: "soon" }, cmd);
    assert.deepEqual(r.input, { background: true, timeout: "soon" });
    assert.deepEqual(r.problems.sort(), [
      "command: required, missing",
      "timeout: expected number, got string",
    ]);
  });
  test("an integer wants a whole number", () => {
    const read = CORPUS_TOOLS.find((t) => t.name === "read_file")!.inputSchema;
    assert.deepEqual(coerceToSchema({ path: "a", limit: "2.5" }, read).input, { path: "a", limit: "2.5" });
    assert.deepEqual(coerceToSchema({ path: "a", limit: "25" }, read).input, { path: "a", limit: 25 });
  });
});

describe("ToolCallScanner", () => {
  test("text without triggers flows through at once, piece by piece", () => {
    const s = new ToolCallScanner(CORPUS_TOOLS);
    for (const piece of ["Hello ", "there, ", "how are you?\n", "Fine."])
      assert.deepEqual(s.push(piece), [{ type: "text", text: piece }]);
    assert.deepEqual(s.end(), []);
  });

  test("a possible call is held only until decided", () => {
    const s = new ToolCallScanner(CORPUS_TOOLS);
    assert.deepEqual(s.push("a <"), [{ type: "text", text: "a " }]);
    assert.deepEqual(s.push("b> c"), [{ type: "text", text: "<b> c" }]);
    assert.deepEqual(s.push("\n{"), [{ type: "text", text: "\n" }]);
    // `{"na` could still be a call; `{"city"` cannot
    assert.deepEqual(s.push('"na'), []);
    assert.deepEqual(merged(s.push('me": "send_email"')), [{ type: "text", text: '{"name": "send_email"' }]);
    assert.deepEqual(s.push(', "arguments": {}}\n'), [{ type: "text", text: ', "arguments": {}}\n' }]);
    assert.deepEqual(s.push("<tool_call>"), []);
    assert.deepEqual(merged(s.push(" tags")), [{ type: "text", text: "<tool_call> tags" }]);
    assert.deepEqual(s.end(), []);
  });

  test("a call is given out as soon as it closes, with the text around it in place", () => {
    const s = new ToolCallScanner(CORPUS_TOOLS);
    assert.deepEqual(s.push("Let me check.\n<tool_call>"), [{ type: "text", text: "Let me check.\n" }]);
    assert.deepEqual(s.push('{"name": "get_weather", "arguments": {"city": "Paris"}}'), []);
    const out = s.push("</tool_call>\nDone.");
    assert.equal(out[0]?.type, "call");
    assert.deepEqual(out[1], { type: "text", text: "\nDone." });
    assert.deepEqual(s.end(), []);
  });

  test("only offered tools make calls", () => {
    const s = new ToolCallScanner([CORPUS_TOOLS[0]!]);
    const text = '<tool_call>{"name": "read_file", "arguments": {"path": "a"}}</tool_call>';
    assert.deepEqual(merged([...s.push(text), ...s.end()]), [{ type: "text", text }]);
  });

  test("a cut-off call missing a required argument is text", () => {
    const s = new ToolCallScanner(CORPUS_TOOLS);
    const text = '<tool_call>{"name": "write_file", "arguments": {"path": "a.txt", "content": "half a fi';
    assert.deepEqual(merged([...s.push(text), ...s.end()]), [{ type: "text", text }]);
  });

  test("repairs are named", () => {
    const s = new ToolCallScanner(CORPUS_TOOLS);
    const out = [
      ...s.push("<tool_call>{name: 'read_file', 'parameters': {'path': 'a', 'limit': '3',}}</tool_call>"),
      ...s.end(),
    ];
    const call = out.find((o) => o.type === "call");
    assert.ok(call && call.type === "call");
    assert.deepEqual(call.input, { path: "a", limit: 3 });
    assert.deepEqual(call.repairs.sort(), [
      "parameters_for_arguments",
      "single_quotes",
      "string_to_number",
      "trailing_comma",
      "unquoted_keys",
    ]);
  });

  test("every corpus case gives the same outputs in any chunking as whole", () => {
    const rand = prng(1234);
    for (const c of CORPUS) {
      for (const text of [c.text, c.reasoning ?? ""]) {
        const whole = new ToolCallScanner(CORPUS_TOOLS);
        const expected = merged([...whole.push(text), ...whole.end()]);
        for (let round = 0; round < 25; round++) {
          const s = new ToolCallScanner(CORPUS_TOOLS);
          const out: ScanOutput[] = [];
          for (const piece of chunk(text, rand, round < 5 ? 1 + round : 16)) out.push(...s.push(piece));
          out.push(...s.end());
          assert.deepEqual(merged(out), expected, `${c.id}, round ${round}`);
        }
      }
    }
  });

  test("plain text is scanned in linear time", () => {
    const piece = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(20);
    const s = new ToolCallScanner(CORPUS_TOOLS);
    const started = performance.now();
    let n = 0;
    for (let i = 0; i < 2000; i++) n += s.push(piece).length;
    assert.equal(n, 2000);
    // about 2 MB; a scan that re-read its buffer would take seconds
    assert.ok(performance.now() - started < 2000);
  });

  test("a long call is followed incrementally, not re-read at every piece", () => {
    const content = "x = a < b and {c} or [d]\\n".repeat(12_000); // ~300 KB of code, escaped in JSON
    const hermes = `<tool_call>{"name": "write_file", "arguments": {"path": "big.py", "content": "${content}"}}</tool_call>`;
    const qwen = `<function=write_file>\n<parameter=path>\nbig.py\n</parameter>\n<parameter=content>\n${content}\n</parameter>\n</function>`;
    for (const input of [hermes, qwen]) {
      const s = new ToolCallScanner(CORPUS_TOOLS);
      const started = performance.now();
      const out: ScanOutput[] = [];
      for (let i = 0; i < input.length; i += 8) out.push(...s.push(input.slice(i, i + 8)));
      out.push(...s.end());
      assert.deepEqual(
        out.map((o) => (o.type === "call" ? o.name : o.text)),
        ["write_file"],
      );
      // ~40 000 pieces: re-reading the held text at each would copy ~6 GB
      assert.ok(performance.now() - started < 3000, `${performance.now() - started} ms`);
    }
  });
});

describe("rescue stage", () => {
  test("does nothing, at no cost, where it does not apply", () => {
    const events = stream([]);
    const none = harness([]);
    assert.equal(rescue(events, none.ctx.client, none.ctx), events);
    for (const toolMode of ["native", "strip"] as const) {
      const h = harness(CORPUS_TOOLS, { toolMode });
      assert.equal(rescue(events, h.ctx.client, h.ctx), events);
    }
    const h = harness();
    h.ctx.client = { ...h.ctx.client, toolChoice: { type: "none" } };
    assert.equal(rescue(events, h.ctx.client, h.ctx), events);
    const emulate = harness(CORPUS_TOOLS, { toolMode: "emulate" });
    assert.notEqual(rescue(events, emulate.ctx.client, emulate.ctx), events);
  });

  test("native tool calls pass through unchanged", async () => {
    const events: Event[] = [
      { type: "start" },
      { type: "textDelta", text: "Sure." },
      { type: "toolCallStart", id: "call_native", name: "get_weather" },
      { type: "toolCallDelta", json: '{"city":' },
      { type: "toolCallDelta", json: '"Paris"}' },
      { type: "toolCallEnd" },
      { type: "stop", reason: "tool_use" },
    ];
    const out: Event[] = [];
    const h = harness();
    for await (const batch of rescue(stream(events), h.ctx.client, h.ctx)) out.push(...batch);
    assert.deepEqual(out, events);
    assert.equal(h.counts.size, 0);
  });

  test("a rescued call gets an id, its events, stop reason tool_use, a log line and counts", async () => {
    const h = harness();
    const res = await runStage(
      [
        { type: "start" },
        {
          type: "textDelta",
          text: 'On it.\n<tool_call>{"name": "read_file", "arguments": {"path": "a", "limit": "5",}}',
        },
        { type: "textDelta", text: "</tool_call>" },
        { type: "stop", reason: "end_turn" },
      ],
      h,
    );
    assert.equal(res.stopReason, "tool_use");
    assert.equal(res.content.length, 2);
    // the newline that separated the text from the call goes with the call
    assert.deepEqual(res.content[0], { type: "text", text: "On it." });
    const call = res.content[1];
    assert.ok(call?.type === "toolCall");
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.equal(call.name, "read_file");
    assert.deepEqual(call.input, { path: "a", limit: 5 });
    assert.equal(h.counts.get("rescued_hermes"), 1);
    assert.equal(h.counts.get("repaired_trailing_comma"), 1);
    assert.equal(h.counts.get("repaired_string_to_number"), 1);
    const line = h.logs.find((l) => l.msg.startsWith("rescued"));
    assert.equal(line?.obj.tool, "read_file");
    assert.equal(line?.obj.format, "hermes");
  });

  test("Harmony: the analysis channel becomes thinking, the commentary to= a tool a call", async () => {
    const h = harness();
    const res = await runStage(
      [
        { type: "textDelta", text: "<|channel|>analysis<|message|>Need the weather in Paris." },
        {
          type: "textDelta",
          text: "<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather",
        },
        { type: "textDelta", text: ' <|constrain|>json<|message|>{"city":"Paris","days":"2"}<|call|>' },
        { type: "stop", reason: "end_turn" },
      ],
      h,
    );
    assert.equal(res.stopReason, "tool_use");
    assert.deepEqual(
      res.content.map((p) => (p.type === "toolCall" ? { name: p.name, input: p.input } : p)),
      [
        { type: "thinking", text: "Need the weather in Paris." },
        { name: "get_weather", input: { city: "Paris", days: 2 } },
      ],
    );
    assert.equal(h.counts.get("rescued_harmony"), 1);
    assert.equal(h.counts.get("repaired_name_prefix"), 1);
  });

  test("the new formats are counted under their own names", async () => {
    const texts: Array<[string, string]> = [
      ["tool_calls", '<tool_calls>[{"name": "list_dir", "arguments": {}}]</tool_calls>'],
      ["pythonic", '[list_dir(path="src")]'],
      ["tool_code", '```tool_code\nlist_dir(path="src")\n```'],
    ];
    for (const [format, text] of texts) {
      const h = harness();
      const res = await runStage(
        [
          { type: "textDelta", text },
          { type: "stop", reason: "end_turn" },
        ],
        h,
      );
      assert.deepEqual(
        res.content.map((p) => p.type),
        ["toolCall"],
        format,
      );
      assert.equal(h.counts.get(`rescued_${format}`), 1, format);
    }
  });

  test("a call that does not fit its schema is made, and the misfit logged", async () => {
    const h = harness();
    const res = await runStage(
      [
        {
          type: "textDelta",
          text: '<tool_call>{"name": "get_weather", "arguments": {"town": "Paris"}}</tool_call>',
        },
        { type: "stop", reason: "end_turn" },
      ],
      h,
    );
    assert.deepEqual(
      res.content.map((p) => p.type),
      ["toolCall"],
    );
    assert.ok(h.logs.some((l) => l.level === "warn" && l.obj.problems?.[0] === "city: required, missing"));
  });

  test("text before a call stays before it, text after it after it", async () => {
    const res = await runStage([
      { type: "textDelta", text: "First.\n[TOOL_CALLS]get_weather[ARGS]" },
      {
        type: "textDelta",
        text: '{"city": "Oslo"} Then more.\n{"name": "list_dir", "arguments": {}}\nLast.',
      },
      { type: "stop", reason: "stop_sequence", stopSequence: "</s>" },
    ]);
    assert.deepEqual(
      res.content.map((p) =>
        p.type === "toolCall" ? `toolCall:${p.name}` : p.type === "text" ? p.text : p.type,
      ),
      ["First.", "toolCall:get_weather", " Then more.", "toolCall:list_dir", "\nLast."],
    );
    assert.equal(res.stopReason, "tool_use");
    assert.equal(res.stopSequence, undefined);
  });

  test("a call in the reasoning is made after the answer's text; the reasoning stays thinking", async () => {
    const h = harness();
    const res = await runStage(
      [
        { type: "thinkingDelta", text: "Listing first.\n<function=list_dir>\n<parameter=path>\n/srv\n" },
        { type: "thinkingDelta", text: "</parameter>\n</function>\nDone thinking." },
        { type: "textDelta", text: "Let me list the directory." },
        { type: "stop", reason: "end_turn" },
      ],
      h,
    );
    assert.deepEqual(
      res.content.map((p) => (p.type === "toolCall" ? { call: p.name, input: p.input } : p)),
      [
        { type: "thinking", text: "Listing first.\n\nDone thinking." },
        { type: "text", text: "Let me list the directory." },
        { call: "list_dir", input: { path: "/srv" } },
      ],
    );
    assert.equal(res.stopReason, "tool_use");
    assert.equal(h.counts.get("rescued_qwen3_coder"), 1);
  });

  test("text is held across a native call's start: order is kept", async () => {
    const res = await runStage([
      { type: "textDelta", text: "Look:\n{" },
      { type: "toolCallStart", id: "call_1", name: "list_dir" },
      { type: "toolCallDelta", json: "{}" },
      { type: "toolCallEnd" },
      { type: "stop", reason: "tool_use" },
    ]);
    assert.deepEqual(
      res.content.map((p) => (p.type === "text" ? p.text : p.type)),
      ["Look:\n{", "toolCall"],
    );
  });

  test("signed reasoning is never rewritten", async () => {
    const h = harness(CORPUS_TOOLS, { signed: true });
    const thinking = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>';
    const res = await runStage(
      [
        { type: "thinkingDelta", text: thinking },
        { type: "thinkingDelta", text: "", signature: "sig" },
        { type: "textDelta", text: "Hi" },
        { type: "stop", reason: "end_turn" },
      ],
      h,
    );
    assert.equal(res.content[0]?.type === "thinking" && res.content[0].text, thinking);
    assert.equal(res.stopReason, "end_turn");
  });

  test("a call drafted in the reasoning and made natively is made once", async () => {
    const res = await runStage([
      {
        type: "thinkingDelta",
        text: '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
      },
      { type: "toolCallStart", id: "call_n", name: "get_weather" },
      { type: "toolCallDelta", json: '{"city":"Paris"}' },
      { type: "toolCallEnd" },
      { type: "stop", reason: "tool_use" },
    ]);
    const calls = res.content.filter((p) => p.type === "toolCall");
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.type === "toolCall" && calls[0].id, "call_n");
  });

  test("a call made natively and then also written as text is made once", async () => {
    const res = await runStage([
      { type: "toolCallStart", id: "call_n", name: "get_weather" },
      { type: "toolCallDelta", json: '{"city":"Paris"}' },
      { type: "toolCallEnd" },
      {
        type: "textDelta",
        text: '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
      },
      {
        type: "textDelta",
        text: '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>',
      },
      { type: "stop", reason: "tool_use" },
    ]);
    assert.deepEqual(
      res.content.map((p) => (p.type === "toolCall" ? p.input.city : p.type)),
      ["Paris", "Rome"],
    );
  });

  test("the corpus, in random chunkings", async () => {
    const rand = prng(42);
    let positives = 0;
    let rescued = 0;
    let falsePositives = 0;
    for (const c of CORPUS) {
      for (let round = 0; round < 8; round++) {
        const res = await runStage(backendEvents(c, rand, 1 + (round % 4) * 5));
        const calls = res.content.flatMap((p) =>
          p.type === "toolCall" ? [{ name: p.name, input: p.input }] : [],
        );
        // blocks apart are words apart (a newline next to a call may go with it)
        const text = res.content.flatMap((p) => (p.type === "text" ? [p.text] : [])).join(" ");
        const thinking = res.content.flatMap((p) => (p.type === "thinking" ? [p.text] : [])).join("");
        const label = `${c.id} round ${round}`;
        if (c.format === "none") {
          falsePositives += calls.length;
          assert.deepEqual(calls, [], label);
          assert.equal(text, c.text, label);
          assert.equal(thinking, c.reasoning ?? "", label);
          assert.equal(res.stopReason, "end_turn", label);
          continue;
        }
        positives++;
        assert.deepEqual(calls, c.calls, label);
        assert.equal(words(`${thinking} ${text}`), words(c.visible ?? ""), label);
        assert.equal(res.stopReason, c.finishReason === "length" ? "max_tokens" : "tool_use", label);
        // text blocks of blanks never reach the client
        for (const p of res.content)
          if (p.type === "text") assert.ok(p.text.trim(), `${label}: blank text block`);
        rescued++;
      }
    }
    assert.equal(falsePositives, 0);
    assert.equal(rescued, positives);
  });
});
