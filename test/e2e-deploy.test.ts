// End to end on real processes: the bundled action → orchestrator replica B → Redis → replica A
// → agent bundle → the test bed's kube-apiserver, and back.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { WorkloadKind } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import test from "ava";
import { runBundledAction } from "./support/action.js";
import { githubEnv, node24, waitConnected } from "./support/e2e.js";
import {
  createDaemonSet,
  createDeployment,
  createNamespace,
  createStatefulSet,
  deleteNamespace,
  deploymentImages,
  kube,
} from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Stack, startStack } from "./support/stack.js";

let stack: Stack;
let namespace: string;
let key: string;
let agentToken: string;
let agentId: string;

test.before(async () => {
  agentBundleCheck();
  stack = await startStack({ replicas: 2 });
  namespace = await createNamespace("e2e-deploy");
  const agent = await stack.createAgent("e2e-deploy");
  agentToken = agent.token;
  agentId = agent.id;
  key = (await stack.createKey(agent.id, { namespaces: [namespace] })).key;
  const [a] = stack.replicas;
  if (!a) throw new Error("no replica");
  stack.startAgent({ token: agent.token, servers: [a.grpcAddress] });
  await waitConnected(stack, agent.id, "replica-0");
});

test.after.always(async () => {
  await stack?.stop();
  if (namespace) await deleteNamespace(namespace);
});

function deployWithAction(inputs: Record<string, string>, run: string) {
  const b = stack.replicas[1];
  if (!b) throw new Error("no replica B");
  return runBundledAction({
    inputs: { server: `http://${b.grpcAddress}`, key, namespace, timeout: "60", ...inputs },
    env: githubEnv(run),
    node: node24(),
    timeoutMs: 150_000,
  });
}

test.serial("happy path: the action on replica B changes the image through the agent on replica A", async (t) => {
  await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1.0.0" }]);
  const result = await deployWithAction({ deployment: "web", image: "registry.example/acme/web:1.1.0" }, "1001");
  t.is(result.code, 0, result.stdout);
  t.is(result.outputs.status, "succeeded");
  t.regex(result.outputs["deployment-id"] ?? "", /^dep_/);
  t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:1.1.0" });
  const d = await kube().apps.readNamespacedDeployment({ name: "web", namespace });
  t.is(d.status?.updatedReplicas, 2);
  t.is(d.status?.availableReplicas, 2);
  t.is(d.metadata?.annotations?.["k8sdeploy.dev/deployment-id"], result.outputs["deployment-id"]);
  t.regex(d.metadata?.annotations?.["k8sdeploy.dev/origin"] ?? "", /acme\/web/);
  t.regex(result.summary, /succeeded/i);
  t.regex(result.summary, /registry\.example\/acme\/web:1\.1\.0/);
  t.regex(result.stdout, /::add-mask::/);
  // The runner consumes `::add-mask::<secret>` itself and never shows it; every other line counts.
  const stdout = result.stdout
    .split("\n")
    .filter((l) => !l.startsWith("::add-mask::"))
    .join("\n");
  const everything = `${stack.allOutput()}\n${stdout}\n${result.stderr}\n${result.summary}`;
  t.false(everything.includes(key), "the deploy key appears in a log");
  t.false(everything.includes(agentToken), "the agent token appears in a log");
  t.false(everything.includes(stack.adminToken), "the admin token appears in a log");
});

test.serial("an image that cannot be pulled fails with the pull error as reason", async (t) => {
  await createDeployment(namespace, "pull", [{ name: "app", image: "registry.example/acme/pull:1" }]);
  const result = await deployWithAction({ deployment: "pull", image: "registry.example/acme/pull:fail-pull" }, "1002");
  t.is(result.code, 1);
  t.is(result.outputs.status, "failed");
  t.regex(result.outputs.message ?? "", /ImagePull|ErrImagePull/);
  t.deepEqual(await deploymentImages(namespace, "pull"), { app: "registry.example/acme/pull:fail-pull" });
});

test.serial("rollback-on-failure restores the old image after a pull error", async (t) => {
  await createDeployment(namespace, "pullrb", [{ name: "app", image: "registry.example/acme/pullrb:1" }]);
  const result = await deployWithAction(
    { deployment: "pullrb", image: "registry.example/acme/pullrb:fail-pull", "rollback-on-failure": "true" },
    "1003",
  );
  t.is(result.code, 1);
  t.is(result.outputs.status, "rolled_back");
  t.regex(result.outputs.message ?? "", /ImagePull|ErrImagePull/);
  t.deepEqual(await deploymentImages(namespace, "pullrb"), { app: "registry.example/acme/pullrb:1" });
});

test.serial("a crash-looping image fails, and is rolled back when asked", async (t) => {
  await createDeployment(namespace, "loop", [{ name: "app", image: "registry.example/acme/loop:1" }]);
  const failed = await deployWithAction({ deployment: "loop", image: "registry.example/acme/loop:2-crash" }, "1004");
  t.is(failed.outputs.status, "failed");
  t.regex(failed.outputs.message ?? "", /CrashLoopBackOff/);
  await createDeployment(namespace, "looprb", [{ name: "app", image: "registry.example/acme/looprb:1" }]);
  const rolled = await deployWithAction(
    { deployment: "looprb", image: "registry.example/acme/looprb:crash", "rollback-on-failure": "true" },
    "1005",
  );
  t.is(rolled.outputs.status, "rolled_back");
  t.deepEqual(await deploymentImages(namespace, "looprb"), { app: "registry.example/acme/looprb:1" });
});

test.serial("StatefulSet and DaemonSet deploys", async (t) => {
  await createStatefulSet(namespace, "db", "registry.example/acme/db:1");
  await createDaemonSet(namespace, "node-agent", "registry.example/acme/node-agent:1");
  const sts = await deployWithAction(
    { kind: "StatefulSet", deployment: "db", image: "registry.example/acme/db:2" },
    "1006",
  );
  t.is(sts.outputs.status, "succeeded", sts.stdout);
  const ds = await deployWithAction(
    { kind: "DaemonSet", deployment: "node-agent", image: "registry.example/acme/node-agent:2" },
    "1007",
  );
  t.is(ds.outputs.status, "succeeded", ds.stdout);
  const { apps } = kube();
  const s = await apps.readNamespacedStatefulSet({ name: "db", namespace });
  t.is(s.spec?.template.spec?.containers[0]?.image, "registry.example/acme/db:2");
  const d = await apps.readNamespacedDaemonSet({ name: "node-agent", namespace });
  t.is(d.spec?.template.spec?.containers[0]?.image, "registry.example/acme/node-agent:2");
});

test.serial("a named init container", async (t) => {
  await createDeployment(namespace, "migrate", [{ name: "app", image: "registry.example/acme/app:1" }], {
    initContainers: [{ name: "migrations", image: "registry.example/acme/migrations:1" }],
  });
  const result = await deployWithAction(
    { deployment: "migrate", container: "migrations", image: "registry.example/acme/migrations:2" },
    "1008",
  );
  t.is(result.outputs.status, "succeeded", result.stdout);
  t.deepEqual(await deploymentImages(namespace, "migrate"), {
    migrations: "registry.example/acme/migrations:2",
    app: "registry.example/acme/app:1",
  });
});

test.serial("cluster look-ups reach the agent on replica A from replica B (Connect, binary)", async (t) => {
  const b = stack.replicas[1];
  if (!b) throw new Error("no replica B");
  const transport = createConnectTransport({
    baseUrl: `http://${b.httpAddress}`,
    httpVersion: "1.1",
    useBinaryFormat: true,
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${stack.adminToken}`);
        return next(req);
      },
    ],
  });
  const admin = createClient(AdminService, transport);
  const { namespaces } = await admin.listNamespaces({ agentId });
  t.true(namespaces.some((n) => n.name === namespace && n.phase === "Active"));
  const { workloads } = await admin.listWorkloads({ agentId, namespace });
  const web = workloads.find((w) => w.name === "web");
  t.is(web?.kind, WorkloadKind.DEPLOYMENT);
  t.deepEqual(
    web?.containers.map((c) => [c.container, c.image]),
    [["web", "registry.example/acme/web:1.1.0"]],
  );
  t.is(web?.replicas?.desired, 2);
  t.is(web?.replicas?.ready, 2);
  const sts = workloads.find((w) => w.name === "db");
  t.is(sts?.kind, WorkloadKind.STATEFUL_SET);
});
