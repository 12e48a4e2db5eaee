// followDeployment through the real client (grpc-js) against the stand-in DeployService, with short deadlines.
import { status } from "@grpc/grpc-js";
import { DeploymentState, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test, { type ExecutionContext } from "ava";
import { connect, type DeployApi, describeGrpcError } from "./client.js";
import { describeUnfinished, FollowError, followDeployment, isFinal, stateName } from "./follow.js";
import { parseServer } from "./inputs.js";
import { type StandInOptions, startStandInDeployService, succeedingSteps } from "./testing/stand-in-deploy-service.js";

const KEY = "kdk_follow_test";

async function setUp(t: ExecutionContext, options: Omit<StandInOptions, "key">, key = KEY) {
  const standIn = await startStandInDeployService({ key: KEY, ...options });
  const api: DeployApi = connect(parseServer(standIn.url), key);
  t.teardown(async () => {
    api.close();
    await standIn.close();
  });
  return { standIn, api };
}

async function deploy(api: DeployApi) {
  const response = await api.deploy({
    namespace: "shop",
    kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    workload: "web",
    containers: [],
    image: "nginx:1.27",
    timeoutSeconds: 60,
    rollbackOnFailure: false,
    pinDigest: false,
    idempotencyKey: "",
    queueTimeoutSeconds: 0,
    origin: undefined,
  });
  return response.deployment!;
}

test("watch until the final state; events arrive once, in order", async (t) => {
  const { api } = await setUp(t, { steps: succeedingSteps() });
  const initial = await deploy(api);
  const seen: number[] = [];
  const result = await followDeployment({
    api,
    initial,
    deadline: Date.now() + 10_000,
    onEvent: (event) => seen.push(event.seq),
  });
  t.is(result.deployment.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  t.deepEqual(seen, [1, 2, 3, 4, 5]);
  t.false(result.deadlineExceeded);
  t.is(result.reconnects, 0);
  t.false(result.polled);
});

test("a dropped stream is reopened with after_seq = last seq", async (t) => {
  const { api, standIn } = await setUp(t, { steps: succeedingSteps(), dropWatchAfter: 2, stepIntervalMs: 40 });
  const initial = await deploy(api);
  const notices: string[] = [];
  const result = await followDeployment({
    api,
    initial,
    deadline: Date.now() + 10_000,
    onNotice: (m) => notices.push(m),
  });
  t.is(result.deployment.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  t.deepEqual(
    result.events.map((e) => e.seq),
    [1, 2, 3, 4, 5],
  );
  t.is(result.reconnects, 1);
  t.deepEqual(
    standIn.calls.watchDeployment.map((c) => c.request.afterSeq),
    [0, 2],
  );
  t.regex(notices[0]!, /UNAVAILABLE: stand-in dropped the stream.*resuming after event 2/);
});

test("without Watch (UNIMPLEMENTED) it polls GetDeployment", async (t) => {
  const { api, standIn } = await setUp(t, { steps: succeedingSteps(), watchUnimplemented: true, stepIntervalMs: 20 });
  const initial = await deploy(api);
  const notices: string[] = [];
  const result = await followDeployment({
    api,
    initial,
    deadline: Date.now() + 10_000,
    pollIntervalMs: 50,
    onNotice: (m) => notices.push(m),
  });
  t.true(result.polled);
  t.is(result.deployment.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  t.deepEqual(
    result.events.map((e) => e.seq),
    [1, 2, 3, 4, 5],
  );
  t.true(standIn.calls.getDeployment.length >= 1);
  t.regex(notices.join("\n"), /polling GetDeployment/);
});

test("the deadline ends the follow of a deployment that stays queued (agent offline)", async (t) => {
  const { api } = await setUp(t, { steps: [] });
  const initial = await deploy(api);
  const started = Date.now();
  const result = await followDeployment({ api, initial, deadline: started + 400 });
  t.true(result.deadlineExceeded);
  t.is(result.deployment.state, DeploymentState.DEPLOYMENT_STATE_QUEUED);
  t.is(stateName(result.deployment.state), "queued");
  t.true(Date.now() - started < 3000);
});

test("fatal errors end the follow with the status name", async (t) => {
  const { api } = await setUp(t, { steps: succeedingSteps() });
  const initial = await deploy(api);
  const error = await t.throwsAsync(
    followDeployment({ api, initial: { ...initial, id: "dep_missing" }, deadline: Date.now() + 5000 }),
    { instanceOf: FollowError },
  );
  t.is(error?.message, 'NOT_FOUND: deployment "dep_missing" not found');
  t.is((error?.error as { code?: number } | undefined)?.code, status.NOT_FOUND);
});

test("describeGrpcError and stateName", (t) => {
  t.is(
    describeGrpcError(Object.assign(new Error("x"), { code: status.PERMISSION_DENIED, details: "no" })),
    "PERMISSION_DENIED: no",
  );
  t.is(describeGrpcError(new Error("plain")), "plain");
  t.is(stateName(DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK), "rolled_back");
  t.is(stateName(DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS), "in_progress");
  t.true(isFinal(DeploymentState.DEPLOYMENT_STATE_TIMED_OUT));
  t.false(isFinal(DeploymentState.DEPLOYMENT_STATE_DELIVERED));
  for (const s of [
    DeploymentState.DEPLOYMENT_STATE_CANCELLED,
    DeploymentState.DEPLOYMENT_STATE_SUPERSEDED,
    DeploymentState.DEPLOYMENT_STATE_EXPIRED,
  ]) {
    t.true(isFinal(s));
  }
  t.is(stateName(DeploymentState.DEPLOYMENT_STATE_SUPERSEDED), "superseded");
});

test("describeUnfinished: queued means the agent seems offline", (t) => {
  const base = { id: "dep_1", message: "" } as Parameters<typeof describeUnfinished>[0];
  t.is(
    describeUnfinished({ ...base, state: DeploymentState.DEPLOYMENT_STATE_QUEUED }, 300, 120),
    "Deployment dep_1 is still queued after 125 s: the agent seems offline. " +
      "Check that the K8sDeploy agent of this cluster is running and connected to the orchestrator.",
  );
  t.is(
    describeUnfinished(
      { ...base, state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS, message: "1 of 3 replicas updated" },
      60,
      30,
    ),
    "Deployment dep_1 did not reach a final state within 210 s (queue 30 s + timeout 60 s + 120 s); " +
      "last state: in_progress: 1 of 3 replicas updated.",
  );
});
