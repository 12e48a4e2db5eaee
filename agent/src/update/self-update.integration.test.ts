// The agent's self-update against the test bed: its "own Deployment" is a Deployment in a fresh
// namespace whose pods kwok runs (an image containing `crash` stays in CrashLoopBackOff, so its
// pod never becomes Ready).
import { DeploymentState, FailureReason, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1Deployment } from "@kubernetes/client-node";
import { clusterTest, deploymentId, imagesOf } from "../deploy/testing/testbed-fixtures.js";
import { patchWorkload } from "../deploy/workload.js";
import type { Progress } from "../executor.js";
import { ANNOTATION_AGENT_UPDATE, ANNOTATION_AGENT_VERSION, createUpdateExecutor } from "./self-update.js";

const test = clusterTest();
const S = DeploymentState;
const R = FailureReason;
const DEPLOYMENT = WorkloadKind.WORKLOAD_KIND_DEPLOYMENT;
const OLD = "ghcr.io/k8sdeploy/agent:0.1.0";

async function agentDeployment(
  t: { context: { cluster: import("../deploy/testing/testbed-fixtures.js").Cluster } },
  recreate = false,
) {
  const { cluster } = t.context;
  const ns = await cluster.namespace("selfupd");
  await cluster.deployment(ns, "k8sdeploy-agent", { replicas: 1, containers: [{ name: "agent", image: OLD }] });
  if (recreate) {
    await patchWorkload(cluster.apps, DEPLOYMENT, ns, "k8sdeploy-agent", {
      spec: { strategy: { $retainKeys: ["type"], type: "Recreate" } },
    });
  }
  await cluster.ready(DEPLOYMENT, ns, "k8sdeploy-agent");
  return ns;
}

test("refused unless enabled; a missing Deployment is WORKLOAD_NOT_FOUND", async (t) => {
  const ns = await agentDeployment(t);
  const disabled = await createUpdateExecutor(t.context.cluster.kc, {
    enabled: false,
    namespace: ns,
    deploymentName: "k8sdeploy-agent",
  })({ image: "ghcr.io/k8sdeploy/agent:0.2.0", version: "0.2.0", readyTimeoutSeconds: 0 }, () => {}, deploymentId());
  t.is(disabled.failure?.reason, R.FAILURE_REASON_INVALID_COMMAND);
  t.deepEqual(imagesOf(await t.context.cluster.get(DEPLOYMENT, ns, "k8sdeploy-agent")), { agent: OLD });
  const missing = await createUpdateExecutor(t.context.cluster.kc, {
    enabled: true,
    namespace: ns,
    deploymentName: "nope",
  })({ image: "ghcr.io/k8sdeploy/agent:0.2.0", version: "0.2.0", readyTimeoutSeconds: 0 }, () => {}, deploymentId());
  t.is(missing.failure?.reason, R.FAILURE_REASON_WORKLOAD_NOT_FOUND);
});

test("an image whose pod becomes Ready: SUCCEEDED after the new pod is Ready, with progress", async (t) => {
  const ns = await agentDeployment(t);
  const progress: Progress[] = [];
  const id = deploymentId();
  const update = createUpdateExecutor(t.context.cluster.kc, {
    enabled: true,
    namespace: ns,
    deploymentName: "k8sdeploy-agent",
    pollMs: 200,
  });
  const result = await update(
    { image: "ghcr.io/k8sdeploy/agent:0.2.0", version: "0.2.0", readyTimeoutSeconds: 30 },
    (p) => progress.push(p),
    id,
  );
  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  t.regex(result.message, /runs ghcr\.io\/k8sdeploy\/agent:0\.2\.0 \(version 0\.2\.0\): the new agent pod is Ready/);
  t.deepEqual(result.previousImages, [{ container: "agent", image: OLD, init: false }]);
  t.regex(
    progress[0]?.message ?? "",
    /agent ghcr\.io\/k8sdeploy\/agent:0\.1\.0 → ghcr\.io\/k8sdeploy\/agent:0\.2\.0 \(version 0\.2\.0\); waiting up to 30 s/,
  );
  const obj = await t.context.cluster.get(DEPLOYMENT, ns, "k8sdeploy-agent");
  t.deepEqual(imagesOf(obj), { agent: "ghcr.io/k8sdeploy/agent:0.2.0" });
  t.is(obj.metadata?.annotations?.[ANNOTATION_AGENT_VERSION], "0.2.0");
  t.like(JSON.parse(obj.metadata?.annotations?.[ANNOTATION_AGENT_UPDATE] ?? "{}"), {
    id,
    outcome: "succeeded",
    previousImage: OLD,
  });
  // The redelivered command (e.g. to the new agent after the hand-over) reports the same outcome.
  const again = await update(
    { image: "ghcr.io/k8sdeploy/agent:0.2.0", version: "0.2.0", readyTimeoutSeconds: 30 },
    () => {},
    id,
  );
  t.is(again.state, S.DEPLOYMENT_STATE_SUCCEEDED, again.message);
});

test("an image that never becomes Ready (crash) is rolled back in time; a redelivery does not patch again", async (t) => {
  const ns = await agentDeployment(t);
  const progress: Progress[] = [];
  const id = deploymentId();
  const update = createUpdateExecutor(t.context.cluster.kc, {
    enabled: true,
    namespace: ns,
    deploymentName: "k8sdeploy-agent",
    pollMs: 200,
  });
  const started = Date.now();
  const bad = "ghcr.io/k8sdeploy/agent:0.2.0-crash";
  const result = await update({ image: bad, version: "0.2.0", readyTimeoutSeconds: 6 }, (p) => progress.push(p), id);
  const ms = Date.now() - started;
  t.log(`${ms} ms: ${progress.map((p) => p.message).join(" | ")}`);
  t.is(result.state, S.DEPLOYMENT_STATE_ROLLED_BACK, result.message);
  t.is(result.failure?.reason, R.FAILURE_REASON_AGENT_NOT_READY);
  t.regex(
    result.message,
    /the new agent pod did not become Ready within 6 s .*; rolled back to ghcr\.io\/k8sdeploy\/agent:0\.1\.0$/,
  );
  t.true(ms >= 6000 && ms < 60_000, `${ms} ms`);
  t.true(progress.some((p) => p.message.includes(`restoring ${OLD}`)));
  const obj = await t.context.cluster.get(DEPLOYMENT, ns, "k8sdeploy-agent");
  t.deepEqual(imagesOf(obj), { agent: OLD });
  t.is(obj.metadata?.annotations?.[ANNOTATION_AGENT_VERSION], undefined);
  // The old pod was never taken away (surge, maxUnavailable 0): the rollback's rollout completes.
  t.is((obj as V1Deployment).status?.availableReplicas, 1);
  const generation = obj.metadata?.generation;
  const again = await update({ image: bad, version: "0.2.0", readyTimeoutSeconds: 6 }, () => {}, id);
  t.is(again.state, S.DEPLOYMENT_STATE_ROLLED_BACK, again.message);
  t.is(
    (await t.context.cluster.get(DEPLOYMENT, ns, "k8sdeploy-agent")).metadata?.generation,
    generation,
    "not patched again",
  );
});

test("a Recreate strategy is switched to surge before the image changes", async (t) => {
  const ns = await agentDeployment(t, true);
  const progress: Progress[] = [];
  const result = await createUpdateExecutor(t.context.cluster.kc, {
    enabled: true,
    namespace: ns,
    deploymentName: "k8sdeploy-agent",
    pollMs: 200,
  })(
    { image: "ghcr.io/k8sdeploy/agent:0.2.0", version: "", readyTimeoutSeconds: 30 },
    (p) => progress.push(p),
    deploymentId(),
  );
  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  const obj = (await t.context.cluster.get(DEPLOYMENT, ns, "k8sdeploy-agent")) as V1Deployment;
  t.deepEqual(JSON.parse(JSON.stringify(obj.spec?.strategy)), {
    type: "RollingUpdate",
    rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
  });
  t.regex(progress[0]?.message ?? "", /strategy set to RollingUpdate maxSurge 1, maxUnavailable 0/);
});
