#!/usr/bin/env node
// Finds (or installs) the headless Chromium that the browser test (test/e2e/browser.e2e.ts) drives with
// playwright-core, and writes its path to `.e2e/chromium.json` for the test to read.
//
// Chromium comes from the system: $CLAWBRIDGE_CHROMIUM when set, else the first that runs of the usual paths.
// When there is none, on Debian/Ubuntu as root (CI), Debian's `chromium` package is installed with apt-get;
// elsewhere this says how to install one. Nothing is downloaded from anywhere else (playwright-core fetches no
// browser of its own). Idempotent and quick: a Chromium found is only asked its version. Runs on plain Node 20,
// no dependencies.
//
//   node scripts/browser-setup.mjs
//
// $CLAWBRIDGE_E2E_DIR overrides the folder (default: <repo>/.e2e), as for scripts/e2e-setup.mjs.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dir = resolve(process.env.CLAWBRIDGE_E2E_DIR || join(root, ".e2e"));
const out = join(dir, "chromium.json");

// Debian's /usr/bin/chromium is a shell wrapper: the binary itself first
const CANDIDATES = [
  "/usr/lib/chromium/chromium",
  "/usr/bin/chromium",
  "/usr/lib/chromium-browser/chromium-browser",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome-stable",
  "/usr/bin/google-chrome",
  "/Applications/Chromium.app/Contents/MacOS/Chromium",
  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
];

const log = (line) => process.stderr.write(`browser-setup: ${line}\n`);

/** The version a Chromium binary prints, or undefined when it does not run. */
function versionOf(path) {
  if (!existsSync(path)) return undefined;
  const ran = spawnSync(path, ["--version"], { encoding: "utf8", timeout: 20_000 });
  const v = ran.stdout?.trim();
  return ran.status === 0 && /\d+\.\d+/.test(v ?? "") ? v : undefined;
}

function find() {
  const explicit = process.env.CLAWBRIDGE_CHROMIUM;
  if (explicit) {
    const version = versionOf(explicit);
    if (!version)
      throw new Error(`$CLAWBRIDGE_CHROMIUM=${explicit} does not run (${explicit} --version failed)`);
    return { path: explicit, version };
  }
  for (const path of CANDIDATES) {
    const version = versionOf(path);
    if (version) return { path, version };
  }
  return undefined;
}

function run(cmd, args) {
  log(`${cmd} ${args.join(" ")}`);
  const res = spawnSync(cmd, args, {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (res.error) throw res.error;
  return res.status === 0;
}

function install() {
  const apt = spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status === 0;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (process.platform !== "linux" || !apt || !root) {
    throw new Error(
      "no Chromium found: install one (Debian/Ubuntu: `sudo apt-get install chromium`), or set CLAWBRIDGE_CHROMIUM to its executable",
    );
  }
  const started = Date.now();
  const args = ["install", "-y", "--no-install-recommends", "chromium"];
  // the package lists may be missing or old on a fresh machine: update them when the install alone fails
  if (!run("apt-get", ["-q", ...args])) {
    if (!run("apt-get", ["-q", "update"]) || !run("apt-get", ["-q", ...args])) {
      throw new Error("apt-get could not install chromium");
    }
  }
  log(`installed Debian's chromium in ${Math.round((Date.now() - started) / 1000)} s`);
}

try {
  let found = find();
  if (!found) {
    log("no Chromium found: installing one");
    install();
    found = find();
    if (!found) throw new Error(`chromium installed, but none of ${CANDIDATES.join(", ")} runs`);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(out, `${JSON.stringify(found, null, 2)}\n`);
  log(`${found.version} at ${found.path}`);
} catch (e) {
  log(`failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
