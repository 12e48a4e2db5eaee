// The committed bundle run as the runner does, with `github-token`: it reports to a STAND-IN of the
// GitHub REST API on loopback (testing/stand-in-github-api.ts, reached through GITHUB_API_URL; the
// real GitHub cannot be reached here) while deploying through the stand-in DeployService.
import { DeploymentState, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test, { type ExecutionContext } from "ava";
import { runBundledAction } from "../../test/support/action.js";
import { InputError, readInputs } from "./inputs.js";
import { startStandInDeployService, succeedingSteps } from "./testing/stand-in-deploy-service.js";
import { startStandInGitHubApi } from "./testing/stand-in-github-api.js";

const KEY = "kdk_test_0123456789abcdefSECRET";
const TOKEN = "ghs_standInToken0123456789abcdefSECRET";
const SHA = "0123456789abcdef0123456789abcdef01234567";
const ENV = {
  GITHUB_REPOSITORY: "acme/shop",
  GITHUB_SHA: SHA,
  GITHUB_REF: "refs/heads/main",
  GITHUB_SERVER_URL: "https://github.example.com",
  GITHUB_RUN_ID: "77",
  GITHUB_RUN_ATTEMPT: "1",
  GITHUB_JOB: "deploy",
};
const RUN_URL = "https://github.example.com/acme/shop/actions/runs/77/attempts/1";

async function setUp(
  t: ExecutionContext,
  options: { failWith?: number; steps?: ReturnType<typeof succeedingSteps> } = {},
) {
  const deployService = await startStandInDeployService({ key: KEY, steps: options.steps ?? succeedingSteps() });
  const github = await startStandInGitHubApi({ token: TOKEN, failWith: options.failWith });
  t.teardown(() => deployService.close());
  t.teardown(() => github.close());
  const run = (extra: Record<string, string>) =>
    runBundledAction({
      inputs: {
        server: deployService.url,
        key: KEY,
        namespace: "shop",
        deployment: "web",
        image: "registry.example.com/acme/web:2",
        timeout: "60",
        "github-token": TOKEN,
        ...extra,
      },
      env: { ...ENV, GITHUB_API_URL: github.url },
    });
  return { deployService, github, run };
}

test("github-status commit: pending when queued, then success on the pushed commit, linked to the run", async (t) => {
  const { github, run, deployService } = await setUp(t);
  const result = await run({});
  t.is(result.code, 0, result.stdout + result.stderr);
  const id = [...deployService.deployments.keys()][0] ?? "";
  t.deepEqual(
    github.requests.map((r) => [r.method, r.path, r.body.state]),
    [
      ["POST", `/repos/acme/shop/statuses/${SHA}`, "pending"],
      ["POST", `/repos/acme/shop/statuses/${SHA}`, "success"],
    ],
  );
  for (const r of github.requests) {
    t.is(r.headers.authorization, `token ${TOKEN}`);
    t.is(r.body.context, "k8sdeploy/shop/web");
    t.is(r.body.target_url, RUN_URL);
    t.true(String(r.body.description).startsWith(id), String(r.body.description));
    t.true(String(r.body.description).length <= 140);
  }
  t.regex(String(github.requests[1]?.body.description), /succeeded: 3 of 3 replicas updated and available/);
  t.regex(result.stdout, new RegExp(`^::add-mask::${TOKEN}$`, "m"));
  const rest = result.stdout.split("\n").filter((l) => !l.startsWith("::add-mask::"));
  t.false(rest.join("\n").includes(TOKEN), "the GitHub token leaked");
});

test("github-status deployment: a GitHub deployment in the environment, queued then failure", async (t) => {
  const { github, run } = await setUp(t, {
    steps: [
      { state: DeploymentState.DEPLOYMENT_STATE_DELIVERED, message: "Delivered" },
      {
        state: DeploymentState.DEPLOYMENT_STATE_FAILED,
        message: "Rollout failed",
        failure: { reason: FailureReason.FAILURE_REASON_IMAGE_PULL, message: "ImagePullBackOff" },
      },
    ],
  });
  const result = await run({ "github-status": "deployment", "github-environment": "production" });
  t.is(result.code, 1, result.stdout);
  const [create, queued, failed] = github.requests;
  t.is(github.requests.length, 3);
  t.is(create?.path, "/repos/acme/shop/deployments");
  t.like(create?.body, { ref: SHA, environment: "production", auto_merge: false, required_contexts: [] });
  t.regex(
    String((create?.body.payload as { k8sdeploy?: { deploymentId?: string } })?.k8sdeploy?.deploymentId),
    /^dep_/,
  );
  t.is(queued?.path, "/repos/acme/shop/deployments/1001/statuses");
  t.like(queued?.body, { state: "queued", environment: "production", log_url: RUN_URL });
  t.like(failed?.body, { state: "failure", log_url: RUN_URL });
  t.regex(String(failed?.body.description), /failed: IMAGE_PULL: ImagePullBackOff/);
});

test("a GitHub refusal is a warning with the permission to add; the deploy itself succeeds", async (t) => {
  const { github, run } = await setUp(t, { failWith: 403 });
  const result = await run({});
  t.is(result.code, 0, result.stdout + result.stderr);
  t.is(github.requests.length, 2);
  t.regex(result.stdout, /^::warning::Could not report the deployment to GitHub: .*permissions: statuses: write/m);
  t.regex(result.stdout, /^::warning::Could not report the outcome to GitHub: /m);
});

test("github inputs: off without a token, validated, and a token needs the runner's repository and sha", (t) => {
  const base = { server: "http://127.0.0.1:1", key: "kdk_x", namespace: "shop", deployment: "web", image: "a/b:1" };
  const get = (values: Record<string, string>) => (name: string) => values[name] ?? "";
  t.is(readInputs(get(base), ENV).github, undefined);
  t.deepEqual(readInputs(get({ ...base, "github-token": "t0ken" }), ENV).github, {
    token: "t0ken",
    kind: "commit",
    environment: "shop",
    context: "k8sdeploy/shop/web",
    owner: "acme",
    repo: "shop",
    sha: SHA,
  });
  const error = (values: Record<string, string>, env: NodeJS.ProcessEnv = ENV) =>
    t.throws(() => readInputs(get({ ...base, ...values }), env), { instanceOf: InputError });
  t.regex(error({ "github-status": "pr" })?.message ?? "", /"github-status" must be commit or deployment/);
  t.regex(error({ "github-token": "t0ken" }, {})?.message ?? "", /needs GITHUB_REPOSITORY .* and GITHUB_SHA/);
  t.regex(error({ "github-token": "a b" })?.message ?? "", /must not contain whitespace/);
});
