// Deploy against the test bed: real kube-apiserver, controllers and kwok (no HTTP mocks).
// Needs KUBECONFIG (and K8SDEPLOY_TESTBED_LIMITED_KUBECONFIG): `npm run testbed -- up`, then
// eval "$(npm run --silent testbed -- env)".

import type { DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState, FailureReason, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { CommandTiming, Progress, Result } from "../executor.js";
import {
  ANNOTATION_CHANGE_CAUSE,
  ANNOTATION_DEPLOYMENT_CREATED_AT,
  ANNOTATION_DEPLOYMENT_ID,
  ANNOTATION_ORIGIN,
  ANNOTATION_PREVIOUS_IMAGES,
  ANNOTATION_ROLLED_BACK,
} from "./annotations.js";
import { createDeployExecutor } from "./deploy.js";
import {
  Cluster,
  clusterTest,
  DAEMON_SET,
  DEPLOYMENT,
  deploymentId,
  eventually,
  imagesOf,
  limitedKubeConfig,
  STATEFUL_SET,
} from "./testing/testbed-fixtures.js";

const test = clusterTest();

const S = DeploymentState;
const R = FailureReason;

function command(
  over: Partial<DeployCommand> & Pick<DeployCommand, "namespace" | "workload" | "image">,
): DeployCommand {
  return {
    deploymentId: deploymentId(),
    kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    containers: [],
    timeoutSeconds: 60,
    rollbackOnFailure: false,
    pinDigest: false,
    origin: {
      repository: "acme/web",
      sha: "abc1234def5678",
      ref: "refs/heads/main",
      actor: "octocat",
      runUrl: "https://github.com/acme/web/actions/runs/1",
      workflow: "deploy",
    },
    ...over,
  };
}

async function run(
  cluster: Cluster,
  cmd: DeployCommand,
  opts: Parameters<typeof createDeployExecutor>[1] = {},
  timing: CommandTiming = {},
): Promise<{ result: Result; progress: Progress[]; ms: number }> {
  const progress: Progress[] = [];
  const started = Date.now();
  const result = await createDeployExecutor(cluster.kc, opts)(cmd, (p) => progress.push(p), timing);
  return { result, progress, ms: Date.now() - started };
}

test("deployment image change succeeds, is read back, records annotations and reports progress", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("ok");
  await cluster.deployment(ns, "web", { containers: [{ name: "web", image: "ghcr.io/acme/web:1.0.0" }] });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const cmd = command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:1.1.0" });

  const { result, progress, ms } = await run(cluster, cmd);
  t.log(`took ${ms} ms; ${progress.length} progress events: ${progress.map((p) => p.message).join(" | ")}`);

  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  t.is(result.failure, undefined);
  t.deepEqual(result.replicas, { desired: 2, updated: 2, ready: 2, available: 2 });
  t.deepEqual(result.previousImages, [{ container: "web", image: "ghcr.io/acme/web:1.0.0", init: false }]);
  t.deepEqual(result.appliedImages, [{ container: "web", image: "ghcr.io/acme/web:1.1.0", init: false }]);
  t.regex(result.message, /runs ghcr\.io\/acme\/web:1\.1\.0: 2 of 2 replicas updated and available/);

  const obj = await cluster.get(DEPLOYMENT, ns, "web");
  t.deepEqual(imagesOf(obj), { web: "ghcr.io/acme/web:1.1.0" });
  const ann = obj.metadata?.annotations ?? {};
  t.is(ann[ANNOTATION_DEPLOYMENT_ID], cmd.deploymentId);
  t.is(ann[ANNOTATION_CHANGE_CAUSE], `k8sdeploy ${cmd.deploymentId}: acme/web@abc1234 by octocat`);
  t.deepEqual(JSON.parse(ann[ANNOTATION_ORIGIN] ?? "{}"), {
    repository: "acme/web",
    sha: "abc1234def5678",
    ref: "refs/heads/main",
    actor: "octocat",
    runUrl: "https://github.com/acme/web/actions/runs/1",
    workflow: "deploy",
  });
  t.deepEqual(JSON.parse(ann[ANNOTATION_PREVIOUS_IMAGES] ?? "[]"), result.previousImages);
  t.is(obj.spec?.template?.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID], cmd.deploymentId);

  // The new pods carry the deployment id.
  const pods = await cluster.core.listNamespacedPod({ namespace: ns, labelSelector: "app=web" });
  const current = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
  t.true(current.some((p) => p.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID] === cmd.deploymentId));

  // The image pre-flight reports first, before the patch (ghcr.io does not resolve here: a warning).
  t.is(progress[0]?.state, S.DEPLOYMENT_STATE_DELIVERED);
  t.regex(progress.shift()?.message ?? "", /^warning: image pre-flight: ghcr\.io\/acme\/web:1\.1\.0: cannot reach/);
  // Progress: all IN_PROGRESS; the first carries the images; counts reach the final state.
  t.true(progress.length >= 2);
  t.true(progress.every((p) => p.state === S.DEPLOYMENT_STATE_IN_PROGRESS));
  t.deepEqual(progress[0]?.previousImages, result.previousImages);
  t.deepEqual(progress[0]?.appliedImages, result.appliedImages);
  t.regex(
    progress[0]?.message ?? "",
    /^patched deployment "web" in namespace "k8sd-ok-\w+": web: ghcr\.io\/acme\/web:1\.0\.0 → ghcr\.io\/acme\/web:1\.1\.0; waiting for the rollout$/,
  );
  t.true(progress.slice(1).every((p) => p.previousImages.length === 0 && p.appliedImages.length === 0));
  t.deepEqual(progress.at(-1)?.replicas, { desired: 2, updated: 2, ready: 2, available: 2 });
});

test("explicit container name changes only that container", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("named");
  await cluster.deployment(ns, "web", {
    replicas: 1,
    containers: [
      { name: "web", image: "ghcr.io/acme/web:1" },
      { name: "proxy", image: "envoyproxy/envoy:v1.30" },
    ],
  });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const { result } = await run(
    cluster,
    command({ namespace: ns, workload: "web", containers: ["proxy"], image: "ghcr.io/acme/envoy-custom:2" }),
  );
  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  t.deepEqual(result.previousImages, [{ container: "proxy", image: "envoyproxy/envoy:v1.30", init: false }]);
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "web")), {
    web: "ghcr.io/acme/web:1",
    proxy: "ghcr.io/acme/envoy-custom:2",
  });
});

test("without names, only containers of the same repository change", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("repo");
  await cluster.deployment(ns, "web", {
    replicas: 1,
    containers: [
      { name: "web", image: "ghcr.io/acme/web:1" },
      { name: "proxy", image: "envoyproxy/envoy:v1.30" },
    ],
  });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const { result } = await run(cluster, command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:2" }));
  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  t.deepEqual(result.appliedImages, [{ container: "web", image: "ghcr.io/acme/web:2", init: false }]);
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "web")), {
    web: "ghcr.io/acme/web:2",
    proxy: "envoyproxy/envoy:v1.30",
  });
});

test("no container of the repository: CONTAINER_NOT_FOUND listing containers, nothing patched", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("nomatch");
  await cluster.deployment(ns, "web", {
    replicas: 1,
    containers: [
      { name: "web", image: "ghcr.io/acme/web:1" },
      { name: "proxy", image: "envoyproxy/envoy:v1.30" },
    ],
  });
  const before = await cluster.get(DEPLOYMENT, ns, "web");
  const { result } = await run(cluster, command({ namespace: ns, workload: "web", image: "redis:7" }));
  t.is(result.state, S.DEPLOYMENT_STATE_FAILED);
  t.is(result.failure?.reason, R.FAILURE_REASON_CONTAINER_NOT_FOUND);
  t.is(
    result.failure?.message,
    `no container of deployment "web" in namespace "${ns}" runs an image of repository docker.io/library/redis; it has: web (ghcr.io/acme/web:1), proxy (envoyproxy/envoy:v1.30); name the container(s) to change explicitly`,
  );
  const after = await cluster.get(DEPLOYMENT, ns, "web");
  t.is(after.metadata?.generation, before.metadata?.generation);
});

test("a named container that does not exist: CONTAINER_NOT_FOUND naming it", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("nocont");
  await cluster.deployment(ns, "web", { replicas: 1, containers: [{ name: "web", image: "ghcr.io/acme/web:1" }] });
  const { result } = await run(
    cluster,
    command({ namespace: ns, workload: "web", containers: ["api"], image: "ghcr.io/acme/web:2" }),
  );
  t.is(result.failure?.reason, R.FAILURE_REASON_CONTAINER_NOT_FOUND);
  t.is(
    result.failure?.message,
    `container "api" not found in deployment "web" in namespace "${ns}"; it has: web (ghcr.io/acme/web:1)`,
  );
});

test("missing workload: WORKLOAD_NOT_FOUND", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("missing");
  const { result } = await run(cluster, command({ namespace: ns, workload: "nope", image: "ghcr.io/acme/web:2" }));
  t.is(result.state, S.DEPLOYMENT_STATE_FAILED);
  t.deepEqual(result.failure, {
    reason: R.FAILURE_REASON_WORKLOAD_NOT_FOUND,
    message: `deployment "nope" not found in namespace "${ns}"`,
  });
  const sts = await run(
    cluster,
    command({ namespace: ns, workload: "db", kind: WorkloadKind.WORKLOAD_KIND_STATEFUL_SET, image: "postgres:17" }),
  );
  t.is(sts.result.failure?.message, `statefulset "db" not found in namespace "${ns}"`);
});

test("invalid command: INVALID_COMMAND before touching the cluster", async (t) => {
  const { cluster } = t.context;
  const { result } = await run(cluster, command({ namespace: "Bad_NS", workload: "web", image: "Nginx" }));
  t.is(result.failure?.reason, R.FAILURE_REASON_INVALID_COMMAND);
  t.regex(result.message, /namespace "Bad_NS": must be a lowercase RFC 1123 label/);
  t.regex(result.message, /invalid image reference "Nginx"/);
});

test("image that cannot be pulled: FAILED IMAGE_PULL naming pod, container and kubelet message", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("pull");
  await cluster.deployment(ns, "web", { replicas: 2, containers: [{ name: "web", image: "ghcr.io/acme/web:1" }] });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const { result, ms } = await run(
    cluster,
    command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:fail-pull" }),
  );
  t.log(`took ${ms} ms: ${result.message}`);
  t.is(result.state, S.DEPLOYMENT_STATE_FAILED);
  t.is(result.failure?.reason, R.FAILURE_REASON_IMAGE_PULL);
  t.regex(
    result.failure?.message ?? "",
    /^pod "web-[a-z0-9]+-[a-z0-9]+" container "web": (ErrImagePull|ImagePullBackOff): .*ghcr\.io\/acme\/web:fail-pull/,
  );
  // Left as it is: the new image stays in the spec, the old pods keep running.
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "web")), { web: "ghcr.io/acme/web:fail-pull" });
  t.true(ms < 30_000);
});

test("image that cannot be pulled, with rollback: ROLLED_BACK and the old image is back", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("pullrb");
  await cluster.deployment(ns, "web", { replicas: 2, containers: [{ name: "web", image: "ghcr.io/acme/web:1" }] });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const before = await cluster.apps.listNamespacedReplicaSet({ namespace: ns });
  const cmd = command({
    namespace: ns,
    workload: "web",
    image: "ghcr.io/acme/web:fail-pull",
    rollbackOnFailure: true,
  });
  const { result, progress, ms } = await run(cluster, cmd);
  t.log(`took ${ms} ms: ${result.message}`);
  t.is(result.state, S.DEPLOYMENT_STATE_ROLLED_BACK, result.message);
  t.is(result.failure?.reason, R.FAILURE_REASON_IMAGE_PULL);
  t.regex(
    result.message,
    /^rollout of deployment "web" failed \(IMAGE_PULL: pod .*\); restored the previous images \(web ghcr\.io\/acme\/web:1\): 2 of 2 replicas updated and available$/,
  );
  t.deepEqual(result.replicas, { desired: 2, updated: 2, ready: 2, available: 2 });
  t.true(progress.some((p) => /restoring the previous images/.test(p.message)));

  const obj = await cluster.get(DEPLOYMENT, ns, "web");
  t.deepEqual(imagesOf(obj), { web: "ghcr.io/acme/web:1" });
  t.is(obj.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID], cmd.deploymentId);
  t.is(JSON.parse(obj.metadata?.annotations?.[ANNOTATION_ROLLED_BACK] ?? "{}").deploymentId, cmd.deploymentId);
  // The exact old template is restored, so the Deployment scaled its old ReplicaSet back up.
  t.is(obj.spec?.template?.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID], undefined);
  const after = await cluster.apps.listNamespacedReplicaSet({ namespace: ns });
  const oldRs = before.items[0]?.metadata?.name;
  t.is(after.items.find((rs) => rs.metadata?.name === oldRs)?.spec?.replicas, 2);

  // Redelivery of the same command: no second patch (the image would be fail-pull again and the
  // generation would move), same outcome.
  const again = await run(cluster, cmd);
  t.is(again.result.state, S.DEPLOYMENT_STATE_ROLLED_BACK);
  t.deepEqual(again.result.failure, result.failure);
  t.deepEqual(again.result.previousImages, result.previousImages);
  const afterAgain = await cluster.get(DEPLOYMENT, ns, "web");
  t.is(afterAgain.metadata?.generation, obj.metadata?.generation);
  t.deepEqual(imagesOf(afterAgain), { web: "ghcr.io/acme/web:1" });
});

test("crash looping image: FAILED CRASH_LOOP; with rollback: ROLLED_BACK", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("crash");
  await cluster.deployment(ns, "web", { replicas: 1, containers: [{ name: "web", image: "ghcr.io/acme/web:1" }] });
  await cluster.deployment(ns, "api", { replicas: 1, containers: [{ name: "api", image: "ghcr.io/acme/api:1" }] });
  await Promise.all([cluster.ready(DEPLOYMENT, ns, "web"), cluster.ready(DEPLOYMENT, ns, "api")]);
  const [plain, rolled] = await Promise.all([
    run(cluster, command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:crash" })),
    run(cluster, command({ namespace: ns, workload: "api", image: "ghcr.io/acme/api:crash", rollbackOnFailure: true })),
  ]);
  t.log(`plain ${plain.ms} ms: ${plain.result.message}`);
  t.log(`rollback ${rolled.ms} ms: ${rolled.result.message}`);
  t.is(plain.result.state, S.DEPLOYMENT_STATE_FAILED);
  t.is(plain.result.failure?.reason, R.FAILURE_REASON_CRASH_LOOP);
  t.regex(
    plain.result.failure?.message ?? "",
    /^pod "web-\S+" container "web": CrashLoopBackOff: back-off 10s restarting failed container=web .*\(restarted \d+ times; last exit code 1, Error: kwok test bed: images containing crash exit with status 1\)$/,
  );
  t.is(rolled.result.state, S.DEPLOYMENT_STATE_ROLLED_BACK, rolled.result.message);
  t.is(rolled.result.failure?.reason, R.FAILURE_REASON_CRASH_LOOP);
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "api")), { api: "ghcr.io/acme/api:1" });
});

// Serial (ava runs serial tests first, alone): the assertions depend on the scheduler having
// reported the pod as Unschedulable within a few seconds, which a loaded test bed may not do.
test.serial("pods that cannot be scheduled: TIMED_OUT with reason TIMEOUT explaining why", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("timeout");
  await cluster.deployment(ns, "web", {
    replicas: 1,
    containers: [{ name: "web", image: "ghcr.io/acme/web:1" }],
    nodeSelector: { "k8sdeploy.dev/no-such-node": "true" },
  });
  // Set-up: the first pod exists and the scheduler has given up on it.
  await eventually("the first pod to be Unschedulable", 30, async () => {
    const pods = await cluster.core.listNamespacedPod({ namespace: ns });
    return pods.items.some((p) =>
      p.status?.conditions?.some((c) => c.type === "PodScheduled" && c.reason === "Unschedulable"),
    )
      ? true
      : undefined;
  });
  const { result, ms } = await run(
    cluster,
    command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:2", timeoutSeconds: 5 }),
  );
  t.log(`took ${ms} ms: ${result.message}`);
  t.is(result.state, S.DEPLOYMENT_STATE_TIMED_OUT);
  t.is(result.failure?.reason, R.FAILURE_REASON_TIMEOUT);
  t.regex(result.failure?.message ?? "", /^deployment "web" did not finish rolling out within 5s: /);
  t.regex(result.failure?.message ?? "", /pod "web-\S+" is Pending: Unschedulable: 0\/1 nodes are available/);
  t.true(ms >= 5000 && ms < 7000, `${ms} ms`);
});

test("progress deadline exceeded: FAILED PROGRESS_DEADLINE_EXCEEDED", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("pde");
  await cluster.deployment(ns, "web", {
    replicas: 1,
    progressDeadlineSeconds: 1,
    containers: [{ name: "web", image: "ghcr.io/acme/web:1" }],
    nodeSelector: { "k8sdeploy.dev/no-such-node": "true" },
  });
  const { result, ms } = await run(
    cluster,
    command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:2", timeoutSeconds: 60 }),
  );
  t.log(`took ${ms} ms: ${result.message}`);
  t.is(result.state, S.DEPLOYMENT_STATE_FAILED);
  t.is(result.failure?.reason, R.FAILURE_REASON_PROGRESS_DEADLINE_EXCEEDED);
  t.regex(
    result.failure?.message ?? "",
    /^deployment "web" exceeded its progress deadline: ReplicaSet "web-\S+" has timed out progressing/,
  );
});

test("statefulset and daemonset image changes succeed", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("kinds");
  await cluster.statefulSet(ns, "db", { replicas: 2, containers: [{ name: "db", image: "postgres:16" }] });
  await cluster.daemonSet(ns, "node-agent", { containers: [{ name: "agent", image: "ghcr.io/acme/node-agent:1" }] });
  await Promise.all([cluster.ready(STATEFUL_SET, ns, "db"), cluster.ready(DAEMON_SET, ns, "node-agent")]);
  const [sts, ds] = await Promise.all([
    run(cluster, command({ namespace: ns, workload: "db", kind: STATEFUL_SET, image: "postgres:17" })),
    run(
      cluster,
      command({ namespace: ns, workload: "node-agent", kind: DAEMON_SET, image: "ghcr.io/acme/node-agent:2" }),
    ),
  ]);
  t.log(`statefulset ${sts.ms} ms: ${sts.result.message}`);
  t.log(`daemonset ${ds.ms} ms: ${ds.result.message}`);
  t.is(sts.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, sts.result.message);
  t.deepEqual(sts.result.replicas, { desired: 2, updated: 2, ready: 2, available: 2 });
  t.deepEqual(imagesOf(await cluster.get(STATEFUL_SET, ns, "db")), { db: "postgres:17" });
  t.is(ds.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, ds.result.message);
  t.is(ds.result.replicas?.desired, 1);
  t.deepEqual(imagesOf(await cluster.get(DAEMON_SET, ns, "node-agent")), { agent: "ghcr.io/acme/node-agent:2" });
});

test("statefulset (OrderedReady) with a failing image rolls back, replacing the never-ready pod", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("stsrb");
  await cluster.statefulSet(ns, "db", {
    replicas: 2,
    podManagementPolicy: "OrderedReady",
    containers: [{ name: "db", image: "postgres:16" }],
  });
  await cluster.ready(STATEFUL_SET, ns, "db");
  const { result, ms } = await run(
    cluster,
    command({
      namespace: ns,
      workload: "db",
      kind: STATEFUL_SET,
      image: "postgres:fail-pull",
      rollbackOnFailure: true,
    }),
  );
  t.log(`took ${ms} ms: ${result.message}`);
  t.is(result.state, S.DEPLOYMENT_STATE_ROLLED_BACK, result.message);
  t.deepEqual(imagesOf(await cluster.get(STATEFUL_SET, ns, "db")), { db: "postgres:16" });
  t.deepEqual(result.replicas, { desired: 2, updated: 2, ready: 2, available: 2 });
  const pods = await cluster.core.listNamespacedPod({ namespace: ns });
  t.deepEqual(
    pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.spec?.containers[0]?.image),
    ["postgres:16", "postgres:16"],
  );
});

test("a named init container is changed", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("init");
  await cluster.deployment(ns, "web", {
    replicas: 1,
    initContainers: [{ name: "migrate", image: "ghcr.io/acme/web:1" }],
    containers: [{ name: "web", image: "ghcr.io/acme/web:1" }],
  });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const { result } = await run(
    cluster,
    command({ namespace: ns, workload: "web", containers: ["migrate"], image: "ghcr.io/acme/web:2" }),
  );
  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  t.deepEqual(result.appliedImages, [{ container: "migrate", image: "ghcr.io/acme/web:2", init: true }]);
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "web")), {
    web: "ghcr.io/acme/web:1",
    migrate: "ghcr.io/acme/web:2",
  });

  // Unnamed, the repository matches both the container and the init container.
  const both = await run(cluster, command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:3" }));
  t.deepEqual(
    both.result.appliedImages.map((c) => `${c.container}:${c.init}`),
    ["web:false", "migrate:true"],
  );
});

test("the same deployment id twice: the second call does not patch and reports the same outcome", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("idem");
  await cluster.deployment(ns, "web", { replicas: 2, containers: [{ name: "web", image: "ghcr.io/acme/web:1" }] });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const cmd = command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:2" });
  const first = await run(cluster, cmd);
  t.is(first.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, first.result.message);
  // A marker a second patch would overwrite (an annotation change does not move the generation).
  await cluster.apps.patchNamespacedDeployment(
    { namespace: ns, name: "web", body: { metadata: { annotations: { [ANNOTATION_CHANGE_CAUSE]: "marker" } } } },
    setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
  );
  const obj = await cluster.get(DEPLOYMENT, ns, "web");

  const second = await run(cluster, cmd);
  t.is(second.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, second.result.message);
  t.deepEqual(second.result.previousImages, first.result.previousImages);
  t.deepEqual(second.result.appliedImages, first.result.appliedImages);
  t.deepEqual(second.result.replicas, first.result.replicas);
  t.regex(
    second.progress[0]?.message ?? "",
    /^deployment dep_\w+ was already applied to deployment "web" in namespace "k8sd-idem-\w+"; following its rollout$/,
  );
  t.deepEqual(second.progress[0]?.previousImages, first.result.previousImages);
  const again = await cluster.get(DEPLOYMENT, ns, "web");
  t.is(again.metadata?.annotations?.[ANNOTATION_CHANGE_CAUSE], "marker");
  t.is(again.metadata?.generation, obj.metadata?.generation);
});

test("RBAC denial: PERMISSION_DENIED naming the verb patch and the resource deployments", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("rbac");
  await cluster.allowLimitedRead(ns);
  await cluster.deployment(ns, "web", { replicas: 1, containers: [{ name: "web", image: "ghcr.io/acme/web:1" }] });
  const limited = new Cluster(limitedKubeConfig());
  const { result } = await run(limited, command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:2" }));
  t.is(result.state, S.DEPLOYMENT_STATE_FAILED);
  t.is(result.failure?.reason, R.FAILURE_REASON_PERMISSION_DENIED);
  t.is(
    result.failure?.message,
    `patching deployment "web" in namespace "${ns}": deployments.apps "web" is forbidden: User "k8sdeploy-limited" cannot patch resource "deployments" in API group "apps" in the namespace "${ns}"`,
  );
  // Without even read access the denial names "get".
  const ns2 = await cluster.namespace("rbac2");
  const denied = await run(limited, command({ namespace: ns2, workload: "web", image: "ghcr.io/acme/web:2" }));
  t.is(denied.result.failure?.reason, R.FAILURE_REASON_PERMISSION_DENIED);
  t.regex(
    denied.result.failure?.message ?? "",
    /^getting deployment "web" in namespace "k8sd-rbac2-\w+": .*cannot get resource "deployments"/,
  );
});

test("the rollout is followed across re-established watches", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("rewatch");
  await cluster.deployment(ns, "web", {
    replicas: 1,
    minReadySeconds: 4,
    containers: [{ name: "web", image: "ghcr.io/acme/web:1" }],
  });
  await cluster.ready(DEPLOYMENT, ns, "web");
  // Each watch request ends after 1 s on the server; availability comes after 4 s.
  const { result, ms } = await run(
    cluster,
    command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:2", timeoutSeconds: 30 }),
    { watchTimeoutSeconds: 1 },
  );
  t.log(`took ${ms} ms: ${result.message}`);
  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  // Not reported before availability: minReadySeconds (4 s) counts from the pod's Ready transition,
  // whose timestamp has whole-second precision, so availability can come up to 1 s sooner.
  t.true(ms >= 3000, `${ms} ms`);
});

test("an older deploy never overwrites a newer one: it ends SUPERSEDED and the workload keeps the newer image", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("order");
  await cluster.deployment(ns, "web", { containers: [{ name: "web", image: "ghcr.io/acme/web:1" }] });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const older = command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:2" });
  const newer = command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:3" });
  const t1 = new Date(Date.now() - 60_000);
  const t2 = new Date(Date.now() - 30_000);
  const applied = await run(cluster, newer, {}, { createdAt: t2 });
  t.is(applied.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, applied.result.message);
  const before = await cluster.get(DEPLOYMENT, ns, "web");
  t.is(before.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_CREATED_AT], t2.toISOString());
  // The older command arrives afterwards (redelivered after an agent restart).
  const late = await run(cluster, older, {}, { createdAt: t1 });
  t.is(late.result.state, S.DEPLOYMENT_STATE_SUPERSEDED, late.result.message);
  t.is(late.result.failure?.reason, R.FAILURE_REASON_SUPERSEDED);
  t.regex(late.result.message, new RegExp(`newer deployment ${newer.deploymentId}`));
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "web")), { web: "ghcr.io/acme/web:3" });
  const after = await cluster.get(DEPLOYMENT, ns, "web");
  t.is(after.metadata?.generation, before.metadata?.generation);
  // A newer one still goes through.
  const next = await run(
    cluster,
    command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:4" }),
    {},
    { createdAt: new Date() },
  );
  t.is(next.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, next.result.message);
});

test("a deploy that reaches the agent past its queue deadline ends EXPIRED without patching, unless already applied", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("late");
  await cluster.deployment(ns, "web", { containers: [{ name: "web", image: "ghcr.io/acme/web:1" }] });
  await cluster.ready(DEPLOYMENT, ns, "web");
  const before = await cluster.get(DEPLOYMENT, ns, "web");
  const overdue = { createdAt: new Date(Date.now() - 600_000), expiresAt: new Date(Date.now() - 120_000) };
  const expired = await run(
    cluster,
    command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:2" }),
    {},
    overdue,
  );
  t.is(expired.result.state, S.DEPLOYMENT_STATE_EXPIRED, expired.result.message);
  t.is(expired.result.failure?.reason, R.FAILURE_REASON_QUEUE_DEADLINE_EXCEEDED);
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "web")), { web: "ghcr.io/acme/web:1" });
  t.is((await cluster.get(DEPLOYMENT, ns, "web")).metadata?.generation, before.metadata?.generation);
  // Within the clock-skew allowance it is still applied.
  const skewed = { createdAt: new Date(), expiresAt: new Date(Date.now() - 5_000) };
  const cmd = command({ namespace: ns, workload: "web", image: "ghcr.io/acme/web:3" });
  const ok = await run(cluster, cmd, {}, skewed);
  t.is(ok.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, ok.result.message);
  // Applied already, then redelivered late: its outcome is reported, not EXPIRED.
  const again = await run(cluster, cmd, {}, overdue);
  t.is(again.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, again.result.message);
});
