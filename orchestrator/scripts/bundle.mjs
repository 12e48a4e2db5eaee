// Bundles the orchestrator (the `k8sdeploy` CLI and server) into orchestrator/dist/bundle/, the
// directory the orchestrator image ships as /app:
//
//   k8sdeploy.mjs            one ESM file with every dependency
//   web/                     the dashboard (a copy of web/dist)
//   node_modules/…           ONLY the data files that bundled modules read at run time, at the
//                            paths they expect: the contract's descriptor set (reflection) and the
//                            health and reflection .proto files that grpc-health-check and
//                            @grpc/reflection load with proto-loader relative to their __dirname
//
// Then checks the result standalone: copies the directory into an empty temporary one, runs
// `k8sdeploy.mjs --version`, and `serve` on free loopback ports, asking it for /readyz, the
// dashboard, and the reflection descriptors (so a missing data file fails the build here, not
// in a cluster).
//
//   node orchestrator/scripts/bundle.mjs            build + standalone check
//   node orchestrator/scripts/bundle.mjs --no-check build only
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const orchestratorDir = dirname(dirname(fileURLToPath(import.meta.url)));
const repoRoot = dirname(orchestratorDir);
const outDir = join(orchestratorDir, "dist", "bundle");
const outfile = join(outDir, "k8sdeploy.mjs");
const nodeModules = join(repoRoot, "node_modules");
const { version } = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));

for (const [what, file] of [
  ["proto/dist (run `npm run build:proto && npx tsc -b`)", join(repoRoot, "proto", "dist", "gen", "node")],
  ["web/dist (run `npm run --workspace web build`)", join(repoRoot, "web", "dist", "index.html")],
]) {
  if (!existsSync(file)) {
    console.error(`bundle: ${what} is missing`);
    process.exit(1);
  }
}

// Data files read at run time, relative to node_modules. The check below fails if one is missing.
const DATA_FILES = [
  "@k8sdeploy/proto/package.json", // its "exports" map names descriptor.binpb for import.meta.resolve
  "@k8sdeploy/proto/gen/descriptor.binpb",
  "grpc-health-check/proto/health/v1/health.proto",
  "@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto",
  "@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto",
];

// CommonJS modules in node_modules that use __dirname/__filename get them pointed at the same
// relative place under the bundle's own node_modules/, where DATA_FILES are copied. (esbuild
// leaves both identifiers alone, and an ESM bundle has neither.)
const moduleDirname = {
  name: "module-dirname",
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/].*\.c?js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      if (!/\b__(dirname|filename)\b/.test(source)) return undefined;
      const rel = relative(nodeModules, args.path).split(sep).join("/");
      if (rel.startsWith("..")) return undefined;
      const prelude = `var __filename = __k8sdeployBundleFile(${JSON.stringify(rel)}), __dirname = __k8sdeployDirname(__filename);`;
      return { contents: `${prelude}\n${source}`, loader: "js", resolveDir: dirname(args.path) };
    });
  },
};

rmSync(outDir, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: repoRoot,
  entryPoints: [join(orchestratorDir, "src", "cli.ts")],
  outfile,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  banner: {
    js: [
      'import { createRequire as __k8sdeployCreateRequire } from "node:module";',
      'import { dirname as __k8sdeployDirname, join as __k8sdeployJoin } from "node:path";',
      'import { fileURLToPath as __k8sdeployFileURLToPath } from "node:url";',
      "const require = __k8sdeployCreateRequire(import.meta.url);",
      "const __k8sdeployBundleFile = (rel) => __k8sdeployJoin(__k8sdeployDirname(__k8sdeployFileURLToPath(import.meta.url)), 'node_modules', rel);",
    ].join("\n"),
  },
  define: {
    __K8SDEPLOY_VERSION__: JSON.stringify(version),
    __K8SDEPLOY_BUNDLED_WEB_DIST__: JSON.stringify("./web/"),
  },
  // Optional native accelerators and peers, required inside try/catch by their users.
  external: ["bufferutil", "utf-8-validate", "encoding"],
  plugins: [moduleDirname],
  legalComments: "none",
  sourcemap: false,
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
  logLevel: "warning",
});

for (const file of DATA_FILES) {
  const from = join(nodeModules, file);
  const to = join(outDir, "node_modules", file);
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { dereference: true });
}
cpSync(join(repoRoot, "web", "dist"), join(outDir, "web"), { recursive: true, dereference: true });

const size = statSync(outfile).size;
const inputs = Object.keys(result.metafile.inputs).length;
console.log(`bundle: ${outfile} ${(size / 1024 / 1024).toFixed(2)} MiB from ${inputs} modules (k8sdeploy ${version})`);

if (!process.argv.includes("--no-check")) await standaloneCheck();

async function standaloneCheck() {
  const dir = mkdtempSync(join(tmpdir(), "k8sdeploy-orchestrator-bundle-"));
  const app = join(dir, "app");
  cpSync(outDir, app, { recursive: true });
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    K8SDEPLOY_GRPC_LISTEN: "127.0.0.1:0",
    K8SDEPLOY_HTTP_LISTEN: "127.0.0.1:0",
    K8SDEPLOY_DATA_DIR: join(dir, "data"),
    K8SDEPLOY_LOG_LEVEL: "info",
  };
  try {
    const printed = await collect(process.execPath, [join(app, "k8sdeploy.mjs"), "--version"], { cwd: dir, env });
    if (printed.trim() !== version) throw new Error(`--version printed "${printed.trim()}", expected "${version}"`);
    const child = spawn(process.execPath, [join(app, "k8sdeploy.mjs"), "serve"], { cwd: dir, env });
    try {
      const listening = await listeningLine(child);
      const http = `http://${listening.http}`;
      const ready = await fetch(`${http}/readyz`);
      if (ready.status !== 200) throw new Error(`/readyz answered ${ready.status}`);
      const index = await fetch(`${http}/`);
      const html = await index.text();
      if (!/text\/html/.test(index.headers.get("content-type") ?? "") || !html.includes("<div id=")) {
        throw new Error("GET / did not serve the dashboard's index.html");
      }
      const logs = listening.logs();
      if (/ENOENT|no such file/i.test(logs)) throw new Error(`the bundle could not find a file:\n${logs}`);
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("close", resolve));
    }
    console.log(`bundle: standalone check passed in ${dir} (--version, serve: /readyz, dashboard, reflection)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function collect(command, args, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, options);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
  });
}

/** Resolves with the "listening" log entry (which the server logs after reflection is set up). */
function listeningLine(child) {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`no "listening" line within 30 s:\n${text}`)), 30_000);
    child.stderr.setEncoding("utf8").on("data", (d) => {
      text += d;
      for (const line of text.split("\n")) {
        if (!line.startsWith("{")) continue;
        const entry = JSON.parse(line);
        if (entry.msg === "listening") {
          clearTimeout(timer);
          resolve({ ...entry, logs: () => text });
          return;
        }
      }
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before listening:\n${text}`));
    });
  });
}
