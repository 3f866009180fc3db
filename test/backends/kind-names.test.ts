/**
 * No code outside src/backends/ names a backend kind or a flavor: it asks the registry. The check
 * reads every source file with TypeScript's own parser and looks at its string literals (template
 * pieces and literal types included; comments and identifiers are not code that decides), taking
 * the names from the registry, so a new kind is checked as soon as it is registered.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { kindNames } from "../../src/backends/registry.js";
import { anthropicSurface } from "../../src/surfaces/anthropic/index.js";
import { openaiSurface } from "../../src/surfaces/openai/index.js";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/** A client dialect has a name of its own, which may be a kind's too ("anthropic"): its folder may say it. */
const SURFACE_NAMES = new Set<string>([anthropicSurface.name, openaiSurface.name]);

interface Finding {
  file: string;
  line: number;
  text: string;
}

/** The string literals in `source` that name one of `names` (whole, or as `kind: NAME` / `flavor: NAME`). */
function namedIn(file: string, source: string, names: readonly string[], allowed = new Set<string>()) {
  const found: Finding[] = [];
  const set = new Set(names);
  const advice = new RegExp(
    `\\b(kind|flavor):\\s*(${names.map((n) => n.replace(/[-]/g, "\\-")).join("|")})\\b`,
  );
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) {
      const text = node.text;
      const whole = set.has(text.trim()) && !allowed.has(text.trim());
      if (whole || advice.test(text))
        found.push({ file, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1, text });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith(".ts") ? [full] : [];
  });
}

describe("backend kinds are named only in src/backends/", () => {
  const names = kindNames();

  test("the names come from the registry: every kind and every flavor", () => {
    for (const n of ["ollama", "openai-compat", "anthropic", "embedded", "llamacpp", "vllm", "tinygrad"])
      assert.ok(names.includes(n), n);
  });

  test("no source file outside src/backends/ has one in a string", () => {
    const found: Finding[] = [];
    for (const file of sources(SRC)) {
      const rel = relative(SRC, file).split("\\").join("/");
      if (rel.startsWith("backends/")) continue;
      const allowed = rel.startsWith("surfaces/") ? SURFACE_NAMES : new Set<string>();
      found.push(...namedIn(rel, readFileSync(file, "utf8"), names, allowed));
    }
    assert.deepEqual(
      found.map((f) => `src/${f.file}:${f.line}: ${JSON.stringify(f.text)}`),
      [],
      "ask the registry (src/backends/registry.ts) instead",
    );
  });

  test("the check finds what it looks for", () => {
    const planted = [
      'if (b.kind === "ollama") return 1;',
      "const k = { kind: 'openai-compat', flavor: `llamacpp` };",
      "type K = 'embedded' | 'x';",
      "say(`set kind: anthropic and url: ` + u);",
      'say("flavor: tinygrad needs context_window");',
    ];
    for (const line of planted) assert.equal(namedIn("x.ts", line, names).length > 0, true, line);
    // prose, identifiers and comments are not a kind named in code; a surface may say its own name
    for (const line of [
      'say("start Ollama (`ollama serve`) first");',
      "const ollama = 1; // kind: ollama",
      'const p = "ollama_models";',
    ])
      assert.deepEqual(namedIn("x.ts", line, names), [], line);
    assert.deepEqual(namedIn("x.ts", 'name: "anthropic",', names, SURFACE_NAMES), []);
  });
});
