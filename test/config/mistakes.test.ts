import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, parseConfig } from "../../src/config/load.js";

/**
 * The usual config mistakes, each as the user reads it: the file, the line, the field, what is
 * wrong and (for a choice) the allowed values, (for a slip) the key meant, (for a unit) the number.
 */
const A = "backends:\n  a: { kind: ollama, url: 'http://127.0.0.1:11434' }\n";
const model = (lines: string) => `${A}models:\n  m:\n    backend: a\n    model: x\n${lines}`;
const backend = (fields: string) => `backends:\n  a:\n${fields}`;

// [what, the file's text, line, field, the rest of the message]
const MISTAKES: Array<[string, string, number, string, RegExp]> = [
  // unknown values of a choice: the allowed ones, the nearest
  [
    "tool_mode",
    model("    tool_mode: emulated\n"),
    7,
    "models.m.tool_mode",
    /'emulated' is not allowed: one of auto, native, rescue, emulate, strip \(did you mean emulate\?\)/,
  ],
  [
    "tool_format",
    model("    tool_format: qwen\n"),
    7,
    "models.m.tool_format",
    /one of hermes, llama3, mistral, json$/,
  ],
  [
    "fit_policy",
    model("    fit_policy: drop_oldest\n"),
    7,
    "models.m.fit_policy",
    /one of error, drop-oldest \(did you mean drop-oldest\?\)/,
  ],
  [
    "backend kind",
    backend("    kind: olama\n    url: http://x:1\n"),
    3,
    "backends.a.kind",
    /one of ollama, openai-compat, anthropic, embedded \(did you mean ollama\?\)/,
  ],
  [
    "a kind's own choice",
    backend("    kind: openai-compat\n    url: http://x:1\n    flavor: vlm\n"),
    5,
    "backends.a.flavor",
    /'vlm' is not allowed: one of generic, llamacpp, vllm, lmstudio, tinygrad \(did you mean vllm\?\)/,
  ],
  [
    "log level",
    "log:\n  level: verbose\n",
    2,
    "log.level",
    /one of trace, debug, info, warn, error, fatal, silent/,
  ],
  ["embedded gpu", backend("    kind: embedded\n    gpu: cuda\n"), 4, "backends.a.gpu", /one of /],
  // wrong types
  [
    "temperature",
    model("    temperature: hot\n"),
    7,
    "models.m.temperature",
    /expected a number, got 'hot'$/,
  ],
  [
    "temperature range",
    model("    temperature: 3\n"),
    7,
    "models.m.temperature",
    /3 is out of range: must be at most 2/,
  ],
  ["top_p range", model("    top_p: -0.5\n"), 7, "models.m.top_p", /must be at least 0/],
  [
    "supports_tools",
    model("    supports_tools: yes\n"),
    7,
    "models.m.supports_tools",
    /expected true or false, got 'yes': write true or false/,
  ],
  [
    "model as a number",
    `${A}models:\n  m: { backend: a, model: 8 }\n`,
    4,
    "models.m.model",
    /expected text, got 8: quote it \("8"\)/,
  ],
  [
    "model block as text",
    `${A}models:\n  m: qwen\n`,
    4,
    "models.m",
    /expected a mapping of settings or a list, got 'qwen'/,
  ],
  ["empty list of targets", `${A}models:\n  m: []\n`, 4, "models.m", /must list at least 1 item/],
  [
    "second target",
    `${A}models:\n  m:\n    - { backend: a, model: x }\n    - { backend: a, model: y, top_k: 2.5 }\n`,
    6,
    "models.m.1.top_k",
    /expected a whole number, got 2.5$/,
  ],
  ["port as text", "server:\n  port: four\n", 2, "server.port", /expected a number, got 'four'/],
  ["port out of range", "server:\n  port: 70000\n", 2, "server.port", /must be at most 65535/],
  ["quoted number", "server:\n  port: '4000'\n", 2, "server.port", /write 4000$/],
  [
    "discover",
    backend("    kind: ollama\n    url: http://x:1\n    discover: 'no'\n"),
    5,
    "backends.a.discover",
    /write true or false/,
  ],
  [
    "concurrency",
    backend("    kind: ollama\n    url: http://x:1\n    concurrency: -1\n"),
    5,
    "backends.a.concurrency",
    /must be at least 0/,
  ],
  ["lanes", "lanes:\n  background: { tools: false }\n", 2, "lanes.background", /expected a list/],
  // units in numbers
  [
    "context_window 8k",
    model("    context_window: 8k\n"),
    7,
    "models.m.context_window",
    /got '8k': write 8192$/,
  ],
  [
    "max_output_tokens 4K",
    model("    max_output_tokens: 4K\n"),
    7,
    "models.m.max_output_tokens",
    /write 4096$/,
  ],
  [
    "a time in seconds",
    model("    timeouts: { first_token_ms: 30s }\n"),
    7,
    "models.m.timeouts.first_token_ms",
    /got '30s': write 30000$/,
  ],
  [
    "minutes in a _ms field",
    backend("    kind: ollama\n    url: http://x:1\n    timeouts:\n      load_ms: 15min\n"),
    6,
    "backends.a.timeouts.load_ms",
    /write 900000$/,
  ],
  ["body_limit_mb 8MB", "server:\n  body_limit_mb: 8MB\n", 2, "server.body_limit_mb", /got '8MB': write 8$/],
  [
    "vram_gb 24GB",
    backend("    kind: ollama\n    url: http://x:1\n    vram_gb: 24GB\n"),
    5,
    "backends.a.vram_gb",
    /write 24$/,
  ],
  [
    "ready_timeout_s 10m",
    backend(
      "    kind: ollama\n    url: http://x:1\n    start:\n      command: ollama serve\n      ready_timeout_s: 10m\n",
    ),
    7,
    "backends.a.start.ready_timeout_s",
    /write 600$/,
  ],
  // misspelled keys at every level
  ["top level", "sever:\n  port: 4000\n", 1, "sever", /unknown setting \(did you mean server\?\)/],
  ["in server", "server:\n  prot: 4000\n", 2, "server.prot", /unknown setting \(did you mean port\?\)/],
  [
    "in a model",
    model("    contxt_window: 8192\n"),
    7,
    "models.m.contxt_window",
    /unknown setting \(did you mean context_window\?\)/,
  ],
  [
    "in a target of a list",
    `${A}models:\n  m:\n    - { backend: a, model: x, temprature: 0.2 }\n`,
    5,
    "models.m.0.temprature",
    /did you mean temperature\?/,
  ],
  [
    "in a model's timeouts",
    model("    timeouts: { idle: 1000 }\n"),
    7,
    "models.m.timeouts.idle",
    /unknown setting \(did you mean idle_ms\?\)/,
  ],
  [
    "nothing near",
    model("    timeouts: { wait: 1000 }\n"),
    7,
    "models.m.timeouts.wait",
    /unknown setting; known here: connect_ms, load_ms, first_token_ms, idle_ms, total_ms$/,
  ],
  [
    "in a backend",
    backend("    kind: ollama\n    url: http://x:1\n    concurency: 2\n"),
    5,
    "backends.a.concurency",
    /did you mean concurrency\?/,
  ],
  [
    "a kind's own, misspelled",
    backend("    kind: openai-compat\n    url: http://x:1\n    flavour: vllm\n"),
    5,
    "backends.a.flavour",
    /did you mean flavor\?/,
  ],
  [
    "another kind's setting",
    backend("    kind: ollama\n    url: http://x:1\n    flavor: vllm\n"),
    5,
    "backends.a.flavor",
    /a setting of kind openai-compat, not of kind ollama/,
  ],
  [
    "in a backend's start",
    backend("    kind: ollama\n    url: http://x:1\n    start:\n      comand: ollama serve\n"),
    6,
    "backends.a.start.comand",
    /did you mean command\?/,
  ],
  [
    "in a backend's breaker",
    backend("    kind: ollama\n    url: http://x:1\n    breaker: { failures: 3, cooldown: 100 }\n"),
    5,
    "backends.a.breaker.cooldown",
    /did you mean cooldown_ms\?/,
  ],
  ["in log", "log:\n  levle: info\n", 2, "log.levle", /did you mean level\?/],
  [
    "in a LiteLLM entry",
    "model_list:\n  - model_name: x\n    litelm_params: { model: ollama/x }\n",
    2,
    "model_list.0.litellm_params",
    /required \(a mapping of settings\): is 'litelm_params' meant to be litellm_params\?/,
  ],
  // bad URLs
  [
    "no scheme",
    backend("    kind: ollama\n    url: localhost:11434\n"),
    4,
    "backends.a.url",
    /'localhost:11434' has no scheme: write http:\/\/localhost:11434/,
  ],
  [
    "another scheme",
    backend("    kind: ollama\n    url: ftp://box:11434\n"),
    4,
    "backends.a.url",
    /expected an http:\/\/ or https:\/\/ URL/,
  ],
  ["not a URL", backend("    kind: ollama\n    url: 'http://'\n"), 4, "backends.a.url", /is not a URL/],
  ["no url", backend("    kind: ollama\n"), 3, "backends.a.url", /required: where the server answers/],
  ["cors origin", "server:\n  cors_origins: ['localhost:3000/app']\n", 2, "server.cors_origins.0", /./],
];

// YAML that does not parse: the line and column, and the parser's own words
const SYNTAX: Array<[string, string, string, RegExp]> = [
  ["unclosed list", "backends: [unclosed\n", "2", /not valid YAML/],
  ["bad indent", `${A}models:\n  m:\n    backend: a\n     model: x\n`, "5", /not valid YAML/],
  ["duplicate key", "server:\n  port: 1\n  port: 2\n", "3", /not valid YAML: Map keys must be unique/],
  ["tab indent", "server:\n\tport: 1\n", "2", /not valid YAML/],
];

describe("config mistakes: each named by file, line and field", () => {
  assert.ok(MISTAKES.length + SYNTAX.length >= 30);
  for (const [what, text, line, field, rest] of MISTAKES) {
    test(`${field}: ${what}`, () => {
      const e = error(text);
      const first = e.message.split("\n")[0]!;
      const prefix = `typo.yaml:${line}: ${field}: `;
      assert.ok(first.startsWith(prefix), `expected '${prefix}…', got '${first}'`);
      assert.match(first.slice(prefix.length), rest);
      assert.doesNotMatch(e.message, /Invalid input|Invalid option|Unrecognized key/);
    });
  }
  for (const [what, text, line, rest] of SYNTAX) {
    test(`YAML syntax: ${what}`, () => {
      const e = error(text);
      assert.match(e.message, new RegExp(`^typo\\.yaml:${line}:\\d+: `));
      assert.match(e.message, rest);
    });
  }

  test("every mistake in the file is listed, one a line", () => {
    const e = error(model("    tool_mode: emulated\n    temperature: hot\n"));
    assert.deepEqual(
      e.message.split("\n").map((l) => l.split(": ").slice(0, 2).join(": ")),
      ["typo.yaml:7: models.m.tool_mode", "typo.yaml:8: models.m.temperature"],
    );
  });
});

function error(text: string): ConfigError {
  try {
    parseConfig(text, "typo.yaml", {});
  } catch (e) {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${e}`);
    return e;
  }
  assert.fail("the config was accepted");
}
