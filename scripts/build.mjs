// Builds the CLI as one bundled ESM file: one module to load instead of hundreds, which keeps
// the gateway's start-up fast and its resident memory small (see README, "Speed and memory").
import { build } from "esbuild";

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/cli/main.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minifySyntax: true,
  minifyWhitespace: true,
  sourcemap: true,
  legalComments: "none",
  banner: {
    // CommonJS dependencies inside an ESM bundle need a require of their own.
    js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: "warning",
});

const { chmodSync } = await import("node:fs");
chmodSync("dist/cli/main.js", 0o755);
