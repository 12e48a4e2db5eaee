// The action at the repository root (`uses: k8sdeploy/k8sdeploy@v1`): the same metadata as
// action/action.yml except that `main` points into action/, the bundle it names exists, and it
// runs through @github/local-action from the repository root the way action/src/local-action.test.ts
// runs action/ (against the hand-written stand-in DeployService, named as such there).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadYaml } from "@kubernetes/client-node";
import test from "ava";
import { startStandInDeployService, succeedingSteps } from "../action/src/testing/stand-in-deploy-service.js";
import { repoRoot } from "./support/tools.js";

const KEY = "kdk_root_action_0123456789SECRET";

// biome-ignore lint/suspicious/noExplicitAny: action metadata is checked structurally
const metadata = async (file: string): Promise<any> => loadYaml(await readFile(join(repoRoot, file), "utf8"));

test("action.yml at the root is action/action.yml with main pointing into action/", async (t) => {
  const root = await metadata("action.yml");
  const inner = await metadata("action/action.yml");
  t.is(root.runs.using, "node24");
  t.is(root.runs.main, "action/dist/index.js");
  t.true(existsSync(join(repoRoot, root.runs.main)), "the committed bundle exists");
  t.deepEqual({ ...root, runs: { ...root.runs, main: inner.runs.main } }, inner);
  t.truthy(root.branding?.icon, "Marketplace listing needs branding");
});

test("the root action runs through local-action: outputs, summary, key not printed", async (t) => {
  const standIn = await startStandInDeployService({ key: KEY, steps: succeedingSteps() });
  t.teardown(() => standIn.close());
  const dir = await mkdtemp(join(tmpdir(), "k8sdeploy-root-action-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const envFile = join(dir, ".env");
  const summaryFile = join(dir, "summary.md");
  const env = {
    INPUT_SERVER: standIn.url,
    INPUT_KEY: KEY,
    INPUT_NAMESPACE: "shop",
    INPUT_DEPLOYMENT: "web",
    INPUT_IMAGE: "registry.example.com/acme/web:1.2.3",
    GITHUB_REPOSITORY: "acme/shop",
    GITHUB_STEP_SUMMARY: summaryFile,
  };
  await writeFile(
    envFile,
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n")}\n`,
  );
  const childEnv: NodeJS.ProcessEnv = { FORCE_COLOR: "0", NO_COLOR: "1" };
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(GITHUB_|RUNNER_|ACTIONS_|INPUT_)/.test(name) && name !== "NODE_OPTIONS") childEnv[name] = value;
  }
  // `.` is the repository root, where action.yml now lives; the logic entrypoint is in action/.
  const child = spawn("npx", ["local-action", "run", ".", "action/src/main.ts", envFile], {
    cwd: repoRoot,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    output += c;
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => {
    output += c;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 100_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  }).finally(() => clearTimeout(timer));
  t.is(code, 0, output);
  t.regex(output, /::set-output name=status::succeeded/);
  t.false(output.includes(KEY), "the deploy key was printed");
  t.is(standIn.calls.deploy[0]?.authorization, `Bearer ${KEY}`);
  t.true((await readFile(summaryFile, "utf8")).includes("<b>succeeded</b>"));
});
