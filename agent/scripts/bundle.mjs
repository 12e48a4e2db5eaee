// Bundles the agent into ONE file, agent/dist/k8sdeploy-agent.mjs, that runs with plain `node`
// and no node_modules (it is all the container image ships). Then checks that claim: copies the
// file alone into an empty temporary directory and runs it there.
//
//   node agent/scripts/bundle.mjs            build + standalone check
//   node agent/scripts/bundle.mjs --no-check build only
//   node agent/scripts/bundle.mjs --sourcemap also write k8sdeploy-agent.mjs.map (not referenced by the
//                                              bundle, not in the image; bench/profile-agent.ts reads it)
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const agentDir = dirname(dirname(fileURLToPath(import.meta.url)));
const outfile = join(agentDir, "dist", "k8sdeploy-agent.mjs");
// One version for every part of K8sDeploy: the root package.json's.
const pkg = JSON.parse(readFileSync(join(agentDir, "..", "package.json"), "utf8"));

// The proto package resolves to its tsc output (proto/dist): build it first if it is missing.
try {
  statSync(join(agentDir, "..", "proto", "dist", "gen", "node", "k8sdeploy", "v1", "agent.js"));
} catch {
  console.error("bundle: proto/dist is missing; run `npm run build:proto && npx tsc -b` first");
  process.exit(1);
}

// Node built-ins are loaded with require(), never with an ESM `import`: importing a built-in as ESM
// builds its module facade, which reads every export, lazy getters included. For node:http that
// means http.WebSocket / EventSource, which load all of undici (745 KB of source, about +8 MiB RSS
// on Node 24, measured: bench/profiles/). The banner's `require` loads the same module object.
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const builtinsViaRequire = {
  name: "k8sdeploy-builtins-via-require",
  setup(build) {
    build.onResolve({ filter: /^[a-z_:/0-9]+$/ }, (args) =>
      args.kind === "import-statement" && builtins.has(args.path)
        ? { path: args.path, namespace: "k8sdeploy-builtin" }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "k8sdeploy-builtin" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

// Dependencies of @kubernetes/client-node that the agent's code paths never reach, replaced by
// stand-ins so that their code is neither in the file nor parsed at every start. The agent uses
// KubeConfig, AppsV1Api, CoreV1Api, VersionApi and Watch only (agent/src/kube.ts, deploy/watch.ts):
//  - whatwg-url (+ tr46, and the `punycode` deprecation warning): node-fetch 2 uses it only where
//    Node has no global URL (`Url.URL || whatwgUrl.URL`), which Node 20+ always has;
//  - isomorphic-ws (ws): client-node's WebSocketHandler, used by exec, attach and port-forward;
//  - tar-fs: client-node's Cp (`kubectl cp`).
// Anything that did reach them fails with an error that names the missing piece.
const SHIMS = {
  "whatwg-url": "export const URL = globalThis.URL; export default { URL };",
  "isomorphic-ws": `export default class WebSocket { constructor() { throw new Error("WebSockets (exec, attach, port-forward) are not part of the k8sdeploy-agent bundle"); } }`,
  "tar-fs": `const fail = () => { throw new Error("tar (kubectl cp) is not part of the k8sdeploy-agent bundle"); }; export default { pack: fail, extract: fail };`,
};
const shims = {
  name: "k8sdeploy-shims",
  setup(build) {
    const filter = new RegExp(`^(${Object.keys(SHIMS).join("|")})$`);
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: "k8sdeploy-shim" }));
    build.onLoad({ filter: /.*/, namespace: "k8sdeploy-shim" }, (args) => ({
      contents: SHIMS[args.path],
      loader: "js",
    }));
  },
};

const result = await esbuild.build({
  entryPoints: [join(agentDir, "src", "main.ts")],
  outfile,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // Some CommonJS dependencies (grpc-js, node-fetch, ws, …) call require() for Node built-ins,
  // which ESM output cannot do without this shim. esbuild keeps main.ts's shebang on line 1.
  banner: {
    js: "import { createRequire as __k8sdeployCreateRequire } from 'module'; const require = __k8sdeployCreateRequire(import.meta.url);",
  },
  define: { __K8SDEPLOY_AGENT_VERSION__: JSON.stringify(pkg.version) },
  // Optional native accelerators and optional peers, required inside try/catch by their users
  // (ws: bufferutil, utf-8-validate; node-fetch: encoding). Left out, the pure-JS paths are used.
  external: ["bufferutil", "utf-8-validate", "encoding"],
  plugins: [builtinsViaRequire, shims],
  legalComments: "none",
  sourcemap: process.argv.includes("--sourcemap") ? "external" : false,
  // Whitespace and syntax only: identifiers stay, so stack traces remain readable. Halves the
  // file (7 → 3.8 MB) and the memory used to load it.
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
  logLevel: "warning",
});

const size = statSync(outfile).size;
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`bundle: ${outfile} ${(size / 1024 / 1024).toFixed(2)} MiB from ${inputs} modules (agent ${pkg.version})`);

if (!process.argv.includes("--no-check")) {
  const dir = mkdtempSync(join(tmpdir(), "k8sdeploy-agent-bundle-"));
  try {
    const copy = join(dir, "k8sdeploy-agent.mjs");
    copyFileSync(outfile, copy);
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir };
    const version = execFileSync(process.execPath, [copy, "--version"], { cwd: dir, env, encoding: "utf8" }).trim();
    if (version !== pkg.version) throw new Error(`--version printed "${version}", expected "${pkg.version}"`);
    const run = spawnSync(process.execPath, [copy], { cwd: dir, env, encoding: "utf8" });
    if (run.status !== 1 || !run.stderr.includes("K8SDEPLOY_SERVER is required")) {
      throw new Error(
        `without configuration expected exit 1 and a K8SDEPLOY_SERVER error, got ${run.status}:\n${run.stderr}`,
      );
    }
    console.log(`bundle: standalone check passed in ${dir} (--version, config error → exit 1)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
