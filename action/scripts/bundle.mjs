// Bundles the action into action/dist/, which is committed: runners do not npm install. dist/index.js (from
// src/launcher.ts, what the runner starts) turns on Node's compile cache and loads dist/action.js (one ESM file
// with everything, from src/index.ts).
//
//   node scripts/bundle.mjs                      writes dist/index.js and dist/action.js
//   node scripts/bundle.mjs --outdir <dir>       writes elsewhere (dist-fresh.test.ts compares the two)
//
// The output must be deterministic (same sources and lockfile → same bytes) and readable in diffs: no minifying,
// paths relative to the repository root, legal comments collected at the end of the file.
import { readFile, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const actionDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(actionDir, "..");

const { values } = parseArgs({ options: { outdir: { type: "string" } } });
const outdir = resolve(values.outdir ?? resolve(actionDir, "dist"));
const outfile = resolve(outdir, "action.js");

// @actions/core and grpc-js are CommonJS inside; in an ESM bundle their `require("net")` etc. need a real
// `require`, or they throw "Dynamic require of "net" is not supported" at run time.
const banner = [
  "// K8sDeploy GitHub Action, bundled by action/scripts/bundle.mjs. Do not edit: run `npm run --workspace action bundle`.",
  'import { createRequire as __k8sdeployCreateRequire } from "node:module";',
  "const require = __k8sdeployCreateRequire(import.meta.url);",
].join("\n");

/** What both files are built with. */
const common = {
  absWorkingDir: repoRoot,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: false,
  sourcemap: false,
  charset: "utf8",
  logLevel: "warning",
};

const result = await build({
  ...common,
  entryPoints: [resolve(actionDir, "src/index.ts")],
  outfile,
  legalComments: "eof",
  banner: { js: banner },
  metafile: true,
});

const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0;
console.log(`${outfile}: ${(bytes / 1024).toFixed(0)} KiB`);

await build({
  ...common,
  entryPoints: [resolve(actionDir, "src/launcher.ts")],
  outfile: resolve(outdir, "index.js"),
  banner: { js: banner.split("\n")[0] },
});

// The root action.yml (`uses: k8sdeploy/k8sdeploy@v1`) is action/action.yml with `main` pointing into
// action/: written here from the one source, so the two cannot drift (test/root-action.test.ts checks it).
if (values.outdir === undefined) {
  const inner = await readFile(resolve(actionDir, "action.yml"), "utf8");
  if (!/^ {2}main: dist\/index\.js$/m.test(inner))
    throw new Error("action/action.yml: runs.main must be dist/index.js");
  const header = [
    "# The K8sDeploy GitHub Action, at the repository root so that workflows say `uses: k8sdeploy/k8sdeploy@v1`",
    "# (and the Marketplace can list it). Generated from action/action.yml by action/scripts/bundle.mjs: edit that",
    "# file and run `npm run --workspace action bundle`.",
    "",
  ].join("\n");
  await writeFile(
    resolve(repoRoot, "action.yml"),
    header + inner.replace(/^ {2}main: dist\/index\.js$/m, "  main: action/dist/index.js"),
  );
}
