/**
 * Loaded before every test run (`--import ./test/env.mjs` in package.json): clawbridge's user state — the
 * request journal that a spawned `clawbridge serve` opens by default — goes to a folder of the run's own,
 * removed at the end, never the user's ~/.clawbridge. The test files' processes and the CLIs they spawn
 * inherit it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

if (!process.env.CLAWBRIDGE_HOME) {
  const home = mkdtempSync(join(tmpdir(), "clawbridge-home-"));
  process.env.CLAWBRIDGE_HOME = home;
  process.on("exit", () => rmSync(home, { recursive: true, force: true }));
}
