// Runs the committed bundle (action/dist/index.js) as the runner does, against a real grpc-js server that stands
// in for the orchestrator's DeployService (see testing/stand-in-deploy-service.ts).
import { rm } from "node:fs/promises";
import { status } from "@grpc/grpc-js";
import { DeploymentState, FailureReason, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test, { type ExecutionContext } from "ava";
import { type RunActionResult, runBundledAction } from "../../test/support/action.js";
import {
  type StandInDeployService,
  type StandInOptions,
  startStandInDeployService,
  succeedingSteps,
} from "./testing/stand-in-deploy-service.js";
import { makeTestCertificates } from "./testing/test-certificates.js";

const KEY = "kdk_test_0123456789abcdefSECRET";

const ORIGIN_ENV = {
  GITHUB_REPOSITORY: "acme/shop",
  GITHUB_SHA: "0123456789abcdef0123456789abcdef01234567",
  GITHUB_REF: "refs/heads/main",
  GITHUB_ACTOR: "octocat",
  GITHUB_SERVER_URL: "https://github.example.com",
  GITHUB_RUN_ID: "4242",
  GITHUB_RUN_ATTEMPT: "2",
  GITHUB_WORKFLOW: "Deploy",
  GITHUB_JOB: "deploy",
  GITHUB_ACTION: "deploy-web",
};

async function withStandIn(t: ExecutionContext, options: Omit<StandInOptions, "key">): Promise<StandInDeployService> {
  const standIn = await startStandInDeployService({ key: KEY, ...options });
  t.teardown(() => standIn.close());
  return standIn;
}

function inputs(server: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    server,
    key: KEY,
    namespace: "shop",
    deployment: "web",
    image: "registry.example.com/acme/web:1.2.3",
    timeout: "60",
    ...extra,
  };
}

/** The key may appear only in the `::add-mask::` command that tells the runner to mask it. */
function assertKeyNotLeaked(t: ExecutionContext, result: RunActionResult) {
  const lines = result.stdout.split("\n");
  t.is(lines[0], `::add-mask::${KEY}`, "setSecret must be the first thing the action does");
  const rest = lines.slice(1).join("\n");
  t.false(rest.includes(KEY), "the deploy key leaked into stdout");
  t.false(result.stderr.includes(KEY), "the deploy key leaked into stderr");
  t.false(result.summary.includes(KEY), "the deploy key leaked into the job summary");
  t.false(Object.values(result.outputs).join("\n").includes(KEY), "the deploy key leaked into the outputs");
}

function errorLines(stdout: string): string[] {
  return stdout.split("\n").filter((line) => line.startsWith("::error::"));
}

test("succeeded: outputs, progress log, summary, origin and key reach the server, exit 0", async (t) => {
  const standIn = await withStandIn(t, { steps: succeedingSteps() });
  const result = await runBundledAction({
    inputs: inputs(standIn.url, { kind: "statefulset", container: "web, sidecar", "rollback-on-failure": "true" }),
    env: ORIGIN_ENV,
  });
  t.is(result.code, 0, result.stdout + result.stderr);
  assertKeyNotLeaked(t, result);

  const id = [...standIn.deployments.keys()][0]!;
  t.deepEqual(result.outputs, {
    "deployment-id": id,
    status: "succeeded",
    message: "3 of 3 replicas updated and available",
  });
  t.deepEqual(errorLines(result.stdout), []);
  t.regex(result.stdout, /^\[\d\d:\d\d:\d\d\] queued: Queued for the agent$/m);
  t.regex(result.stdout, /^\[\d\d:\d\d:\d\d\] in_progress: 2 of 3 replicas updated$/m);
  t.regex(result.stdout, /^\[\d\d:\d\d:\d\d\] succeeded: 3 of 3 replicas updated and available$/m);

  t.is(standIn.calls.deploy.length, 1);
  const deploy = standIn.calls.deploy[0]!;
  t.is(deploy.authorization, `Bearer ${KEY}`);
  t.like(deploy.request, {
    namespace: "shop",
    workload: "web",
    kind: WorkloadKind.WORKLOAD_KIND_STATEFUL_SET,
    containers: ["web", "sidecar"],
    image: "registry.example.com/acme/web:1.2.3",
    timeoutSeconds: 60,
    rollbackOnFailure: true,
  });
  t.regex(deploy.request.idempotencyKey, /^gha-4242-2-[0-9a-f]{32}$/);
  t.deepEqual(deploy.request.origin, {
    repository: "acme/shop",
    sha: ORIGIN_ENV.GITHUB_SHA,
    ref: "refs/heads/main",
    actor: "octocat",
    runUrl: "https://github.example.com/acme/shop/actions/runs/4242/attempts/2",
    workflow: "Deploy",
  });
  t.true(standIn.calls.watchDeployment.every((c) => c.authorization === `Bearer ${KEY}`));

  // The job summary: the table and the timeline.
  t.regex(result.summary, /<table>/);
  t.true(result.summary.includes(`<code>${id}</code>`));
  t.true(result.summary.includes("StatefulSet <code>shop/web</code>"));
  t.true(result.summary.includes("<code>registry.example.com/acme/web:1.2.3</code>"));
  t.true(result.summary.includes("<b>succeeded</b>"));
  t.regex(result.summary, /<td>Duration<\/td><td>\d+s<\/td>/);
  t.true(result.summary.includes("<code>acme/shop@0123456789ab</code>"));
  t.true(result.summary.includes('href="https://github.example.com/acme/shop/actions/runs/4242/attempts/2"'));
  t.true(result.summary.includes("Timeline"));
  t.true(result.summary.includes("2 of 3 replicas updated"));
});

const failures: [string, DeploymentState, FailureReason, string][] = [
  [
    "failed",
    DeploymentState.DEPLOYMENT_STATE_FAILED,
    FailureReason.FAILURE_REASON_IMAGE_PULL,
    'container "web": ImagePullBackOff: Back-off pulling image "registry.example.com/acme/web:1.2.3"',
  ],
  [
    "rolled_back",
    DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
    FailureReason.FAILURE_REASON_CRASH_LOOP,
    'container "web": CrashLoopBackOff; previous images restored',
  ],
  [
    "timed_out",
    DeploymentState.DEPLOYMENT_STATE_TIMED_OUT,
    FailureReason.FAILURE_REASON_TIMEOUT,
    "1 of 3 replicas available after 60 s",
  ],
];

for (const [name, state, reason, message] of failures) {
  test(`${name}: exit 1 with the reason in ::error::, outputs and summary`, async (t) => {
    const failure = { reason, message };
    const standIn = await withStandIn(t, {
      steps: [
        { state: DeploymentState.DEPLOYMENT_STATE_DELIVERED, message: "Delivered to agent" },
        { state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS, message: "0 of 3 replicas updated" },
        { state, message: `Rollout ${name.replace("_", " ")}`, failure },
      ],
    });
    const result = await runBundledAction({ inputs: inputs(standIn.url), env: ORIGIN_ENV });
    t.is(result.code, 1, result.stdout + result.stderr);
    assertKeyNotLeaked(t, result);
    const reasonName = FailureReason[reason].replace("FAILURE_REASON_", "");
    const id = [...standIn.deployments.keys()][0]!;
    t.deepEqual(errorLines(result.stdout), [`::error::Deployment ${id} ${name}: ${reasonName}: ${message}`]);
    t.deepEqual(result.outputs, { "deployment-id": id, status: name, message: `${reasonName}: ${message}` });
    t.true(result.summary.includes(`<b>${name}</b>`));
    t.true(result.summary.includes(`<code>${reasonName}</code>`));
  });
}

test("a dropped Watch stream is resumed with after_seq and no event is lost or repeated", async (t) => {
  const standIn = await withStandIn(t, { steps: succeedingSteps(), dropWatchAfter: 1, stepIntervalMs: 50 });
  const result = await runBundledAction({ inputs: inputs(standIn.url), env: ORIGIN_ENV });
  t.is(result.code, 0, result.stdout + result.stderr);
  assertKeyNotLeaked(t, result);
  t.is(result.outputs.status, "succeeded");
  const watches = standIn.calls.watchDeployment.map((c) => c.request.afterSeq);
  t.true(watches.length >= 2, `watch calls: ${watches}`);
  t.is(watches[0], 0);
  t.is(watches[1], 1, "the second watch resumes after the one event received");
  t.regex(result.stdout, /Watch interrupted \(UNAVAILABLE: stand-in dropped the stream\); resuming after event 1/);
  const progress = result.stdout.split("\n").filter((line) => /^\[\d\d:\d\d:\d\d\] /.test(line));
  t.deepEqual(
    progress.map((line) => line.slice(11)),
    [
      "queued: Queued for the agent",
      "delivered: Delivered to agent",
      "in_progress: 1 of 3 replicas updated",
      "in_progress: 2 of 3 replicas updated",
      "succeeded: 3 of 3 replicas updated and available",
    ],
  );
});

test("wait=false returns right after Deploy with status queued", async (t) => {
  // The stand-in agent would only move after a minute: a run that waited could not end before.
  const standIn = await withStandIn(t, { steps: succeedingSteps(), stepIntervalMs: 60_000 });
  const started = Date.now();
  const result = await runBundledAction({ inputs: inputs(standIn.url, { wait: "false" }), env: ORIGIN_ENV });
  t.is(result.code, 0, result.stdout + result.stderr);
  t.true(Date.now() - started < 30_000);
  assertKeyNotLeaked(t, result);
  t.is(result.outputs["deployment-id"], [...standIn.deployments.keys()][0]);
  t.is(result.outputs.status, "queued");
  t.is(standIn.calls.deploy.length, 1);
  t.is(standIn.calls.watchDeployment.length, 0);
  t.is(standIn.calls.getDeployment.length, 0);
  t.true(result.summary.includes("<b>queued</b> (not waited for)"));
});

const badInputs: [string, Record<string, string | undefined>, RegExp][] = [
  ["missing image", { image: undefined }, /^::error::Input "image" is required and was not supplied\.$/m],
  [
    "bad kind",
    { kind: "CronJob" },
    /^::error::Input "kind" must be one of Deployment, StatefulSet, DaemonSet \(case-insensitive\); got "CronJob"\.$/m,
  ],
  [
    "non-numeric timeout",
    { timeout: "5m" },
    /^::error::Input "timeout" must be a whole number of seconds from 1 to 3600; got "5m"\.$/m,
  ],
  [
    "missing key",
    { key: undefined },
    /^::error::Input "key" is required and was not supplied\. .*`permissions: id-token: write`.*$/m,
  ],
  ["bad server", { server: "grpc://x:1" }, /^::error::Input "server" must be .*; got scheme "grpc"\.$/m],
];

for (const [name, change, expected] of badInputs) {
  test(`bad input (${name}) fails with a clear message without calling the server`, async (t) => {
    const standIn = await withStandIn(t, { steps: succeedingSteps() });
    const given: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...inputs(standIn.url), ...change })) if (v !== undefined) given[k] = v;
    const result = await runBundledAction({ inputs: given, env: ORIGIN_ENV });
    t.is(result.code, 1, result.stdout + result.stderr);
    t.regex(result.stdout, expected);
    t.is(errorLines(result.stdout).length, 1);
    t.is(standIn.callCount(), 0);
    if (given.key) assertKeyNotLeaked(t, result);
  });
}

test("UNAUTHENTICATED from the server fails clearly", async (t) => {
  const standIn = await withStandIn(t, { steps: succeedingSteps() });
  const wrongKey = "kdk_wrong_key_zzzzzzzz";
  const result = await runBundledAction({ inputs: { ...inputs(standIn.url), key: wrongKey }, env: ORIGIN_ENV });
  t.is(result.code, 1);
  t.deepEqual(errorLines(result.stdout), [
    '::error::UNAUTHENTICATED: missing, unknown or revoked deploy key (check the "key" input: the deploy key may be wrong, revoked, or for another orchestrator)',
  ]);
  t.is(standIn.calls.deploy[0]?.authorization, `Bearer ${wrongKey}`);
  t.is(standIn.calls.deploy.length, 1, "no retry on UNAUTHENTICATED");
  t.false(result.stdout.split("\n").slice(1).join("\n").includes(wrongKey));
  t.false("deployment-id" in result.outputs);
  t.true(result.summary.includes("UNAUTHENTICATED"));
});

test("PERMISSION_DENIED is reported with its status name and details", async (t) => {
  const details = 'namespace "prod" is not allowed for this deploy key';
  const standIn = await withStandIn(t, { deployError: { code: status.PERMISSION_DENIED, details } });
  const result = await runBundledAction({ inputs: inputs(standIn.url), env: ORIGIN_ENV });
  t.is(result.code, 1);
  assertKeyNotLeaked(t, result);
  t.deepEqual(errorLines(result.stdout), [`::error::PERMISSION_DENIED: ${details}`]);
  t.is(result.outputs.message, `PERMISSION_DENIED: ${details}`);
});

// The stand-in answers DEADLINE_EXCEEDED itself, as a call whose answer came too late ends on the
// runner; the second kind is the orchestrator's refusal, which says nothing was done.
test("a Deploy that ends DEADLINE_EXCEEDED says the deploy may have been accepted, unless the server says nothing was done", async (t) => {
  const late = await withStandIn(t, { deployError: { code: status.DEADLINE_EXCEEDED, details: "Deadline exceeded" } });
  const unknown = await runBundledAction({ inputs: inputs(late.url, { "queue-timeout": "1" }), env: ORIGIN_ENV });
  t.is(unknown.code, 1);
  t.deepEqual(errorLines(unknown.stdout), [
    "::error::DEADLINE_EXCEEDED: Deadline exceeded (no answer arrived in time, so the deploy may have been accepted all the same: look for registry.example.com/acme/web:1.2.3 in shop with `k8sdeploy deployments list --namespace shop` or on the dashboard before deploying again)",
  ]);

  const details = "too little time was left before the call's deadline to answer it; nothing was done";
  const refused = await withStandIn(t, { deployError: { code: status.DEADLINE_EXCEEDED, details } });
  const nothing = await runBundledAction({ inputs: inputs(refused.url, { "queue-timeout": "1" }), env: ORIGIN_ENV });
  t.is(nothing.code, 1);
  t.deepEqual(errorLines(nothing.stdout), [`::error::DEADLINE_EXCEEDED: ${details}`]);
});

test("Deploy is retried on UNAVAILABLE with the same idempotency key", async (t) => {
  const standIn = await withStandIn(t, { steps: succeedingSteps(), deployUnavailableTimes: 1 });
  const result = await runBundledAction({ inputs: inputs(standIn.url), env: ORIGIN_ENV });
  t.is(result.code, 0, result.stdout + result.stderr);
  t.is(standIn.calls.deploy.length, 2);
  const [first, second] = standIn.calls.deploy.map((c) => c.request.idempotencyKey);
  t.truthy(first);
  t.is(first, second);
});

test("Deploy keeps retrying UNAVAILABLE with backoff for a store outage of several seconds", async (t) => {
  // 4 refusals take 1 + 2 + 4 + 8 = 15 s of backoff: longer than the 5 s after which a Redis outage
  // used to fail the step.
  const standIn = await withStandIn(t, { steps: succeedingSteps(), deployUnavailableTimes: 4 });
  const result = await runBundledAction({ inputs: inputs(standIn.url), env: ORIGIN_ENV });
  t.is(result.code, 0, result.stdout + result.stderr);
  t.is(standIn.calls.deploy.length, 5);
  t.is(new Set(standIn.calls.deploy.map((c) => c.request.idempotencyKey)).size, 1);
  t.regex(result.stdout, /trying again in 8 s \(attempt 5\)/);
});

test("a deployment still queued when the step stops waiting is cancelled, so it is never applied later", async (t) => {
  // The stand-in agent never picks it up.
  const standIn = await withStandIn(t, { steps: [] });
  const started = Date.now();
  const result = await runBundledAction({ inputs: inputs(standIn.url, { "queue-timeout": "1" }), env: ORIGIN_ENV });
  t.is(result.code, 1, result.stdout + result.stderr);
  t.true(Date.now() - started < 30_000);
  t.is(standIn.calls.deploy[0]?.request.queueTimeoutSeconds, 1);
  t.is(standIn.calls.cancelDeployment.length, 1);
  t.is(standIn.calls.cancelDeployment[0]?.request.id, result.outputs["deployment-id"]);
  t.is(result.outputs.status, "cancelled");
  t.regex(result.stdout, /still queued after 6 s: the agent seems offline/);
  t.regex(result.stdout, /Cancelled deployment dep_\w+: it will not be applied\./);
});

test("queue-timeout is sent with wait=false only when given", async (t) => {
  const standIn = await withStandIn(t, { steps: [] });
  await runBundledAction({ inputs: inputs(standIn.url, { wait: "false" }), env: ORIGIN_ENV });
  await runBundledAction({
    inputs: inputs(standIn.url, { wait: "false", "queue-timeout": "900" }),
    env: { ...ORIGIN_ENV, GITHUB_RUN_ID: "4343" },
  });
  t.deepEqual(
    standIn.calls.deploy.map((c) => c.request.queueTimeoutSeconds),
    [0, 900],
  );
});

test("a second run of the same attempt finds the first deployment; a new attempt deploys again", async (t) => {
  const standIn = await withStandIn(t, { steps: succeedingSteps() });
  const first = await runBundledAction({ inputs: inputs(standIn.url), env: ORIGIN_ENV });
  const again = await runBundledAction({ inputs: inputs(standIn.url), env: ORIGIN_ENV });
  const next = await runBundledAction({ inputs: inputs(standIn.url), env: { ...ORIGIN_ENV, GITHUB_RUN_ATTEMPT: "3" } });
  t.is(first.code, 0);
  t.is(again.code, 0);
  t.is(next.code, 0);
  t.is(again.outputs["deployment-id"], first.outputs["deployment-id"]);
  t.regex(again.stdout, /already created by an earlier try of this step/);
  t.not(next.outputs["deployment-id"], first.outputs["deployment-id"]);
  t.is(standIn.deployments.size, 2);
});

test("an unreachable server fails with UNAVAILABLE and a hint", async (t) => {
  const standIn = await startStandInDeployService({ key: KEY });
  const url = standIn.url;
  await standIn.close();
  // Retried while the queue timeout lasts (the orchestrator may be restarting), then it fails.
  const result = await runBundledAction({
    // 4 s: a loaded machine can spend over a second on the first attempt, and a retry must still fit.
    inputs: inputs(url, { "idempotency-key": "", "queue-timeout": "4" }),
    env: {},
  });
  t.is(result.code, 1);
  t.regex(result.stdout, /trying again in 1 s/);
  t.regex(result.stdout, /^::error::UNAVAILABLE: .*\(check that "server" is right/m);
});

test("https with a private CA from ca-file; without it the certificate is refused", async (t) => {
  const certs = makeTestCertificates();
  t.teardown(() => rm(certs.dir, { recursive: true, force: true }));
  const standIn = await withStandIn(t, { steps: succeedingSteps(), tls: { key: certs.key, cert: certs.cert } });
  t.regex(standIn.url, /^https:\/\/localhost:\d+$/);

  const trusted = await runBundledAction({ inputs: inputs(standIn.url, { "ca-file": certs.caFile }), env: ORIGIN_ENV });
  t.is(trusted.code, 0, trusted.stdout + trusted.stderr);
  t.is(trusted.outputs.status, "succeeded");
  assertKeyNotLeaked(t, trusted);

  const untrusted = await runBundledAction({ inputs: inputs(standIn.url), env: {} });
  t.is(untrusted.code, 1);
  t.regex(untrusted.stdout, /^::error::UNAVAILABLE: .*certificate.*if a private CA signed it, set "ca-file"\)$/m);
  t.is(standIn.calls.deploy.length, 1, "only the trusted run reached Deploy");
});
