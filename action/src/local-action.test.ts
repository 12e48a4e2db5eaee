// Runs the action through @github/local-action, as its README says:
//   npx local-action run <action dir> <logic entrypoint> <dotenv file>
// The entrypoint is the TypeScript logic module (src/main.ts, which exports `run`): local-action imports it with
// tsx and swaps @actions/core for its own stubs, which only works on untranspiled code, not on dist/index.js.
// It finds the @actions/core to stub with `npm ls` at the repository root, hence the root devDependency on it.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeploymentState, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { repoRoot } from "../../test/support/action.js";
import { startStandInDeployService, succeedingSteps } from "./testing/stand-in-deploy-service.js";

const KEY = "kdk_local_action_0123456789SECRET";

interface LocalActionRun {
  code: number | null;
  output: string;
  summary: string;
}

async function runLocalAction(env: Record<string, string>): Promise<LocalActionRun> {
  const dir = await mkdtemp(join(tmpdir(), "k8sdeploy-local-action-"));
  try {
    const envFile = join(dir, ".env");
    const summaryFile = join(dir, "summary.md");
    const lines = Object.entries({ ...env, GITHUB_STEP_SUMMARY: summaryFile }).map(([k, v]) => `${k}=${v}`);
    await writeFile(envFile, `${lines.join("\n")}\n`);

    const childEnv: NodeJS.ProcessEnv = { FORCE_COLOR: "0", NO_COLOR: "1" };
    for (const [name, value] of Object.entries(process.env)) {
      if (!/^(GITHUB_|RUNNER_|ACTIONS_|INPUT_)/.test(name) && name !== "NODE_OPTIONS") childEnv[name] = value;
    }
    const child = spawn("npx", ["local-action", "run", "action", "src/main.ts", envFile], {
      cwd: repoRoot,
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 100_000);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", resolve);
    }).finally(() => clearTimeout(timer));
    const summary = await readFile(summaryFile, "utf8").catch(() => "");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colours
    return { code, output: output.replace(/\u001b\[[0-9;]*m/g, ""), summary };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Rows of local-action's "Action Outputs" table: `│ 0 │ 'status' │ 'succeeded' │`. */
function outputsTable(output: string): Record<string, string> {
  const section = output.split(/Action Outputs/)[1] ?? "";
  const rows: Record<string, string> = {};
  for (const match of section.matchAll(/│\s*\d+\s*│\s*'([^']+)'\s*│\s*'(.*)'\s*│/g)) rows[match[1]!] = match[2]!;
  return rows;
}

test("succeeds through local-action: outputs table, summary, key sent and not printed", async (t) => {
  const standIn = await startStandInDeployService({ key: KEY, steps: succeedingSteps() });
  t.teardown(() => standIn.close());
  const run = await runLocalAction({
    INPUT_SERVER: standIn.url,
    INPUT_KEY: KEY,
    INPUT_NAMESPACE: "shop",
    INPUT_DEPLOYMENT: "web",
    INPUT_IMAGE: "registry.example.com/acme/web:1.2.3",
    "INPUT_ROLLBACK-ON-FAILURE": "true",
    GITHUB_REPOSITORY: "acme/shop",
    GITHUB_RUN_ID: "77",
    GITHUB_RUN_ATTEMPT: "1",
  });
  t.is(run.code, 0, run.output);
  const id = [...standIn.deployments.keys()][0]!;
  t.deepEqual(outputsTable(run.output), {
    "deployment-id": id,
    status: "succeeded",
    message: "3 of 3 replicas updated and available",
  });
  t.regex(run.output, /::set-output name=status::succeeded/);
  t.regex(run.output, /\[\d\d:\d\d:\d\d\] in_progress: 2 of 3 replicas updated/);
  t.false(run.output.includes(KEY), "the deploy key was printed");
  t.is(standIn.calls.deploy[0]?.authorization, `Bearer ${KEY}`);
  t.like(standIn.calls.deploy[0]?.request, { rollbackOnFailure: true, timeoutSeconds: 300 });
  t.is(standIn.calls.deploy[0]?.request.origin?.runUrl, "https://github.com/acme/shop/actions/runs/77/attempts/1");
  t.true(run.summary.includes("<b>succeeded</b>"), run.summary);
});

test("a rolled back deployment is reported as an error through local-action", async (t) => {
  const standIn = await startStandInDeployService({
    key: KEY,
    steps: [
      { state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS, message: "0 of 3 replicas updated" },
      {
        state: DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
        message: "Rolled back",
        failure: { reason: FailureReason.FAILURE_REASON_CRASH_LOOP, message: 'container "web": CrashLoopBackOff' },
      },
    ],
  });
  t.teardown(() => standIn.close());
  const run = await runLocalAction({
    INPUT_SERVER: standIn.url,
    INPUT_KEY: KEY,
    INPUT_NAMESPACE: "shop",
    INPUT_DEPLOYMENT: "web",
    INPUT_IMAGE: "registry.example.com/acme/web:1.2.3",
    INPUT_KIND: "statefulset",
  });
  // local-action reports a failed action with ::error:: but does not change its own exit code.
  const id = [...standIn.deployments.keys()][0]!;
  t.regex(
    run.output,
    new RegExp(`::error::Deployment ${id} rolled_back: CRASH_LOOP: container "web": CrashLoopBackOff`),
  );
  t.like(outputsTable(run.output), { "deployment-id": id, status: "rolled_back" });
  t.false(run.output.includes(KEY));
});
