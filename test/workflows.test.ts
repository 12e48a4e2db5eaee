// .github/workflows cannot run here; actionlint (built from github.com/rhysd/actionlint by the
// test bed's build-tools.sh) checks them, and the jobs are checked to run what the tests run.
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadYaml } from "@kubernetes/client-node";
import test from "ava";
import { findBuiltTool } from "./support/registry.js";
import { repoRoot, run } from "./support/tools.js";

const ACTIONLINT_VERSION = "v1.7.12";
const actionlint = () => findBuiltTool("actionlint", ACTIONLINT_VERSION);

test("actionlint passes on every workflow", async (t) => {
  const r = await run(actionlint(), ["-color=false"], { cwd: repoRoot });
  t.is(r.code, 0, `${r.stdout}${r.stderr}`);
  const version = await run(actionlint(), ["-version"]);
  t.regex(version.stdout, /1\.7\.12/);
});

test("actionlint does fail on a broken workflow (the check above can fail)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "k8sd-actionlint-"));
  const file = join(dir, "broken.yml");
  await writeFile(
    file,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a broken GitHub expression on purpose
    "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope.x }\n",
  );
  const r = await run(actionlint(), ["-color=false", file]);
  t.not(r.code, 0);
});

// biome-ignore lint/suspicious/noExplicitAny: workflow YAML is checked structurally
const workflow = async (name: string): Promise<any> =>
  loadYaml(await readFile(join(repoRoot, ".github", "workflows", name), "utf8"));

test("ci.yml runs .ci/run; release.yml builds with npm run images, checks the pins, attests and moves the major tag", async (t) => {
  const ci = await workflow("ci.yml");
  const ciRuns = ci.jobs.test.steps.map((s: { run?: string }) => s.run ?? "").join("\n");
  t.regex(ciRuns, /\.ci\/run/);
  t.is(ci.jobs.test["timeout-minutes"], 90);

  const release = await workflow("release.yml");
  t.deepEqual(release.on.push.tags, ["v*.*.*"]);
  const steps = release.jobs.release.steps as { run?: string; uses?: string }[];
  const runs = steps.map((s) => s.run ?? "").join("\n");
  t.regex(runs, /npm run images\n/);
  t.regex(runs, /npm run images -- --push "\$REGISTRY"/);
  t.regex(runs, /pin-images\.mjs --check/);
  t.regex(runs, /gh release create/);
  t.regex(runs, /SHA256SUMS/);
  t.regex(runs, /git tag -f "v\$\{\{ steps\.version\.outputs\.major \}\}"/);
  const uses = steps.map((s) => s.uses ?? "");
  t.true(uses.some((u) => u.startsWith("actions/attest-build-provenance@")));
  t.true(uses.some((u) => u.startsWith("actions/attest-sbom@")));
  t.true(uses.some((u) => u.startsWith("anchore/sbom-action@")));
  t.like(release.jobs.release.permissions, { "id-token": "write", attestations: "write", packages: "write" });
});
