// Builds the CLI as one bundled ESM file: one module to load instead of hundreds, which keeps
// the gateway's start-up fast and its resident memory small (see README, "Speed and memory").
import { build } from "esbuild";

await build({
  // the CLI, and the embedded engine's worker thread (loaded beside it, only when a GGUF model runs)
  entryPoints: { main: "src/cli/main.ts", "embedded-worker": "src/backends/embedded/worker.ts" },
  outdir: "dist/cli",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minifySyntax: true,
  minifyWhitespace: true,
  sourcemap: true,
  legalComments: "none",
  // the embedded engine (native binaries) is imported at run time, only when an embedded model is used;
  // the journal's SQLite (a native addon) is loaded from node_modules
  external: ["node-llama-cpp", "better-sqlite3"],
  banner: {
    // CommonJS dependencies inside an ESM bundle need a require of their own.
    js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: "warning",
});

const { chmodSync, copyFileSync, mkdirSync } = await import("node:fs");
chmodSync("dist/cli/main.js", 0o755);

// The dashboard (src/server/routes/dashboard.ts serves dist/ui/): Preact + htm, bundled here into one
// script for the browser, so the package serves every byte of it itself (no CDN: it works offline).
await build({
  entryPoints: ["ui/app.js"],
  outfile: "dist/ui/app.js",
  bundle: true,
  platform: "browser",
  format: "iife",
  target: "es2020",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
mkdirSync("dist/ui", { recursive: true });
copyFileSync("ui/app.css", "dist/ui/app.css");
