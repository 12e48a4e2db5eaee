#!/usr/bin/env node
// Sets K8sDeploy's one version: the root package.json's "version" is the source of truth
// (the CLI's --version, the agent's hello, image labels, the dashboard footer all read it); the
// workspaces' package.json carry the same number (and their @k8sdeploy/* dependencies on each
// other), the lockfile is refreshed, and the README's and manifests' `?ref=vX.Y.Z` pins follow.
//
//   node scripts/release/set-version.mjs 1.2.3
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const next = process.argv[2];
if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(next ?? "")) {
  console.error("usage: set-version.mjs X.Y.Z (semver)");
  process.exit(2);
}
const rootFile = join(repoRoot, "package.json");
const root = JSON.parse(readFileSync(rootFile, "utf8"));
const previous = root.version;

const setJson = (file, edit) => {
  const text = readFileSync(file, "utf8");
  const data = JSON.parse(text);
  edit(data);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
};
setJson(rootFile, (p) => {
  p.version = next;
});
for (const ws of root.workspaces) {
  setJson(join(repoRoot, ws, "package.json"), (p) => {
    p.version = next;
    for (const field of ["dependencies", "devDependencies", "peerDependencies"]) {
      for (const dep of Object.keys(p[field] ?? {})) if (dep.startsWith("@k8sdeploy/")) p[field][dep] = next;
    }
  });
}
execFileSync("npm", ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"], {
  cwd: repoRoot,
  stdio: "inherit",
});

// Pins in the docs and manifests' comments.
const files = [
  "README.md",
  "agent/deploy/kustomize/base/kustomization.yaml",
  "agent/deploy/kustomize/components/target-namespace/kustomization.yaml",
  "orchestrator/deploy/kustomize/base/kustomization.yaml",
];
for (const f of files) {
  const file = join(repoRoot, f);
  const text = readFileSync(file, "utf8");
  writeFileSync(file, text.replaceAll(`?ref=v${previous}`, `?ref=v${next}`));
}
const changelog = readFileSync(join(repoRoot, "CHANGELOG.md"), "utf8");
if (!changelog.includes(`## [${next}]`)) console.warn(`set-version: add a "## [${next}]" section to CHANGELOG.md`);
console.log(`version ${previous} → ${next}`);
