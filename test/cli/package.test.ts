import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

const pkg = JSON.parse(readFileSync("package.json", "utf8")) as {
  main?: string;
  bin: Record<string, string>;
  files: string[];
};

test("package.json names no main that does not exist, and its bin is what the build writes", () => {
  // the package is a command, not a library: no `main` (one named must exist)
  if (pkg.main !== undefined) assert.ok(existsSync(pkg.main), `main ${pkg.main} does not exist`);
  const build = readFileSync("scripts/build.mjs", "utf8");
  assert.equal(pkg.bin.clawbridge, "dist/cli/main.js");
  assert.match(build, /main: "src\/cli\/main\.ts"/);
  assert.match(build, /outdir: "dist\/cli"/);
  assert.match(build, /chmodSync\("dist\/cli\/main\.js", 0o755\)/);
});

test("the README says how clawbridge gets on the PATH, and npx clawbridge --help works in the clone", () => {
  const readme = readFileSync("README.md", "utf8");
  assert.match(readme, /`npm link` in the\s+clone \(or `npm install -g \.`\)/);
  assert.match(readme, /npm ci && npm start/);
  if (!existsSync(pkg.bin.clawbridge ?? "")) return; // built by `npm run build` (the unit suite runs after it)
  const out = execFileSync("npx", ["--no-install", "clawbridge", "--help"], { encoding: "utf8" });
  assert.match(out, /^Usage: clawbridge \[options\] \[command\]/);
});
