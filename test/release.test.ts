// One version for every part (the root package.json's), shown where the issue says it is shown;
// the README's agent install is the dashboard's snippet; the release pin check can fail.
import { readdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import test from "ava";
import { readmeBlock } from "./support/readme.js";
import { agentBundle, cliPath } from "./support/stack.js";
import { repoRoot, run, tempDir } from "./support/tools.js";

const rootPackage = async () => JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8"));

test("one version: every workspace, the CLI, both bundles, the dashboard, the changelog", async (t) => {
  const root = await rootPackage();
  t.regex(root.version, /^\d+\.\d+\.\d+/);
  for (const ws of root.workspaces as string[]) {
    const pkg = JSON.parse(await readFile(path.join(repoRoot, ws, "package.json"), "utf8"));
    t.is(pkg.version, root.version, `${ws}/package.json`);
    for (const [dep, spec] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
      if (dep.startsWith("@k8sdeploy/")) t.is(spec, root.version, `${ws} → ${dep}`);
    }
  }
  const cli = await run(process.execPath, [cliPath, "--version"]);
  t.is(cli.stdout.trim(), root.version, "k8sdeploy --version");
  const bundled = await run(process.execPath, [
    path.join(repoRoot, "orchestrator/dist/bundle/k8sdeploy.mjs"),
    "--version",
  ]);
  t.is(bundled.stdout.trim(), root.version, "the orchestrator bundle (the image's entrypoint)");
  const agent = await run(process.execPath, [agentBundle, "--version"]);
  t.is(agent.stdout.trim(), root.version, "the agent (its hello carries the same agentVersion)");
  const assets = path.join(repoRoot, "web/dist/assets");
  const js = (await readdir(assets)).filter((f) => f.endsWith(".js"));
  const texts = await Promise.all(js.map((f) => readFile(path.join(assets, f), "utf8")));
  t.true(
    texts.some((s) => s.includes(`"${root.version}"`) || s.includes(`\`${root.version}\``)),
    "the dashboard bundle carries the version (footer)",
  );
  const changelog = await readFile(path.join(repoRoot, "CHANGELOG.md"), "utf8");
  t.regex(changelog, new RegExp(`^## \\[${root.version.replaceAll(".", "\\.")}\\]`, "m"));
  const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
  const refs = [...readme.matchAll(/\?ref=v([0-9][^\s)\]]*)/g)].map((m) => m[1]);
  t.true(refs.length > 0);
  t.deepEqual([...new Set(refs)], [root.version], "every ?ref= pin in the README is this version");
  for (const f of ["LICENSE", "SECURITY.md"]) t.truthy(await readFile(path.join(repoRoot, f), "utf8"));
  t.regex(await readFile(path.join(repoRoot, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0/);
});

test("the README's agent install is exactly the dashboard's install snippet", async (t) => {
  const root = await rootPackage();
  (globalThis as { __K8SDEPLOY_VERSION__?: string }).__K8SDEPLOY_VERSION__ = root.version;
  const { installSnippet, ACTION_REF } = await import("../web/src/lib/snippets.js");
  t.is(readmeBlock("agent"), installSnippet("kda_xxxxxxxx", "https://deploy.example.com:443", "namespace"));
  const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
  t.true(readme.includes(`uses: ${ACTION_REF}\n`), `the README's workflow uses ${ACTION_REF}`);
  t.false(readme.includes("k8sdeploy/k8sdeploy/action@"), "no old action path");
});

test("pin-images --check fails when the bases do not pin the built digests", async (t) => {
  const script = path.join(repoRoot, "scripts/release/pin-images.mjs");
  const dir = await tempDir("k8sd-pin-");
  const pinned = async (file: string, image: string) => {
    const text = await readFile(path.join(repoRoot, file), "utf8");
    return new RegExp(`- name: ${image}\\n\\s+digest: (sha256:[0-9a-f]{64})`).exec(text)?.[1];
  };
  const agent = await pinned("agent/deploy/kustomize/base/kustomization.yaml", "ghcr.io/k8sdeploy/agent");
  const orchestrator = await pinned(
    "orchestrator/deploy/kustomize/base/kustomization.yaml",
    "ghcr.io/k8sdeploy/orchestrator",
  );
  t.truthy(agent);
  t.truthy(orchestrator);
  const report = (a: string, o: string) =>
    JSON.stringify({ images: { agent: { digest: a }, orchestrator: { digest: o } } });
  await writeFile(path.join(dir, "same.json"), report(agent ?? "", orchestrator ?? ""));
  await writeFile(path.join(dir, "other.json"), report(`sha256:${"1".repeat(64)}`, orchestrator ?? ""));
  const same = await run(process.execPath, [script, "--check", "--report", path.join(dir, "same.json")]);
  t.is(same.code, 0, same.stdout + same.stderr);
  const other = await run(process.execPath, [script, "--check", "--report", path.join(dir, "other.json")]);
  t.is(other.code, 1);
  t.regex(other.stdout, /DIFF agent\/deploy\/kustomize\/base\/kustomization\.yaml/);
});
