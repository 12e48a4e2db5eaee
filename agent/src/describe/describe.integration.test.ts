// Describe against the test bed (real kube-apiserver, controllers, kwok). Needs KUBECONFIG:
// `npm run testbed -- up`, then eval "$(npm run --silent testbed -- env)".

import { FailureReason, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { createDeployExecutor } from "../deploy/deploy.js";
import {
  clusterTest,
  DAEMON_SET,
  DEPLOYMENT,
  deploymentId,
  limitedKubeConfig,
  STATEFUL_SET,
} from "../deploy/testing/testbed-fixtures.js";
import { ExecutorError } from "../executor.js";
import { createExecutors } from "../executors.js";

const test = clusterTest();

const selfUpdate = { enabled: false, namespace: "default", deploymentName: "k8sdeploy-agent" };

test("namespaces: the created ones, Active, with creation time, sorted by name", async (t) => {
  const { cluster } = t.context;
  const a = await cluster.namespace("nsa");
  const b = await cluster.namespace("nsb");
  const list = await createExecutors(cluster.kc, { selfUpdate }).describeNamespaces();
  const names = list.map((n) => n.name);
  t.deepEqual(names, [...names].sort());
  for (const name of [a, b, "default", "kube-system"]) {
    const ns = list.find((n) => n.name === name);
    t.truthy(ns, name);
    t.is(ns?.phase, "Active");
    t.true(ns?.createdAt instanceof Date && Date.now() - ns.createdAt.getTime() < 24 * 3600_000);
  }
});

test("workloads: deployments, statefulsets and daemonsets with images, replicas and last deployment", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("wl");
  await cluster.deployment(ns, "web", {
    replicas: 2,
    initContainers: [{ name: "migrate", image: "ghcr.io/acme/migrate:1" }],
    containers: [
      { name: "web", image: "ghcr.io/acme/web:1" },
      { name: "proxy", image: "envoyproxy/envoy:v1.30" },
    ],
  });
  await cluster.deployment(ns, "api", { replicas: 1, containers: [{ name: "api", image: "ghcr.io/acme/api:1" }] });
  await cluster.statefulSet(ns, "db", { replicas: 1, containers: [{ name: "db", image: "postgres:16" }] });
  await cluster.daemonSet(ns, "node-agent", { containers: [{ name: "agent", image: "ghcr.io/acme/node-agent:1" }] });
  await Promise.all([
    cluster.ready(DEPLOYMENT, ns, "web"),
    cluster.ready(DEPLOYMENT, ns, "api"),
    cluster.ready(STATEFUL_SET, ns, "db"),
    cluster.ready(DAEMON_SET, ns, "node-agent"),
  ]);
  const id = deploymentId();
  const deployed = await createDeployExecutor(cluster.kc)(
    {
      deploymentId: id,
      namespace: ns,
      kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
      workload: "api",
      containers: [],
      image: "ghcr.io/acme/api:2",
      timeoutSeconds: 60,
      rollbackOnFailure: false,
      pinDigest: false,
      origin: undefined,
    },
    () => {},
  );
  t.is(deployed.failure, undefined, deployed.message);

  const list = await createExecutors(cluster.kc, { selfUpdate }).describeWorkloads(ns);
  t.deepEqual(
    list.map((w) => [w.kind, w.name]),
    [
      [WorkloadKind.WORKLOAD_KIND_DEPLOYMENT, "api"],
      [WorkloadKind.WORKLOAD_KIND_DEPLOYMENT, "web"],
      [WorkloadKind.WORKLOAD_KIND_STATEFUL_SET, "db"],
      [WorkloadKind.WORKLOAD_KIND_DAEMON_SET, "node-agent"],
    ],
  );
  const [api, web, db, agent] = list;
  t.is(api?.namespace, ns);
  t.is(api?.lastDeploymentId, id);
  t.deepEqual(api?.containers, [{ container: "api", image: "ghcr.io/acme/api:2", init: false }]);
  t.deepEqual(api?.replicas, { desired: 1, updated: 1, ready: 1, available: 1 });
  t.is(web?.lastDeploymentId, "");
  t.deepEqual(web?.containers, [
    { container: "web", image: "ghcr.io/acme/web:1", init: false },
    { container: "proxy", image: "envoyproxy/envoy:v1.30", init: false },
    { container: "migrate", image: "ghcr.io/acme/migrate:1", init: true },
  ]);
  t.deepEqual(web?.replicas, { desired: 2, updated: 2, ready: 2, available: 2 });
  t.deepEqual(db?.containers, [{ container: "db", image: "postgres:16", init: false }]);
  t.deepEqual(db?.replicas, { desired: 1, updated: 1, ready: 1, available: 1 });
  t.deepEqual(agent?.replicas, { desired: 1, updated: 1, ready: 1, available: 1 });
  for (const w of list) t.true(w.createdAt instanceof Date, w.name);
});

test("workloads of an empty or missing namespace: an empty list", async (t) => {
  const { cluster } = t.context;
  const ns = await cluster.namespace("empty");
  const ex = createExecutors(cluster.kc, { selfUpdate });
  t.deepEqual(await ex.describeWorkloads(ns), []);
  t.deepEqual(await ex.describeWorkloads("k8sd-does-not-exist"), []);
});

test("invalid namespace name: INVALID_COMMAND", async (t) => {
  const { cluster } = t.context;
  const err = await t.throwsAsync(createExecutors(cluster.kc, { selfUpdate }).describeWorkloads("Not_Valid"), {
    instanceOf: ExecutorError,
  });
  t.is(err?.reason, FailureReason.FAILURE_REASON_INVALID_COMMAND);
  t.regex(err?.message ?? "", /^namespace "Not_Valid": must be a lowercase RFC 1123 label/);
});

test("permission errors: PERMISSION_DENIED naming verb and resource", async (t) => {
  const limited = createExecutors(limitedKubeConfig(), { selfUpdate });
  const nsErr = await t.throwsAsync(limited.describeNamespaces(), { instanceOf: ExecutorError });
  t.is(nsErr?.reason, FailureReason.FAILURE_REASON_PERMISSION_DENIED);
  t.is(
    nsErr?.message,
    'listing namespaces: namespaces is forbidden: User "k8sdeploy-limited" cannot list resource "namespaces" in API group "" at the cluster scope',
  );
  // The limited user may list deployments in "default", but not statefulsets.
  const wlErr = await t.throwsAsync(limited.describeWorkloads("default"), { instanceOf: ExecutorError });
  t.is(wlErr?.reason, FailureReason.FAILURE_REASON_PERMISSION_DENIED);
  t.regex(
    wlErr?.message ?? "",
    /^listing (statefulsets|daemonsets)\.apps in namespace "default": \w+\.apps is forbidden: User "k8sdeploy-limited" cannot list resource "(statefulsets|daemonsets)" in API group "apps" in the namespace "default"$/,
  );
});
