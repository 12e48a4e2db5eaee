// Nothing is lost when the agent, the replica holding its stream, or Redis goes away.
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { deployClient, deployRequest } from "./support/clients.js";
import { waitConnected, waitState } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages, kube } from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Stack, startStack } from "./support/stack.js";

const stacks: Stack[] = [];
const namespaces: string[] = [];

test.before(() => agentBundleCheck());

test.after.always(async () => {
  await Promise.all(stacks.map((s) => s.stop()));
  await Promise.all(namespaces.map(deleteNamespace));
});

async function setup(replicas: number) {
  const stack = await startStack({ replicas });
  stacks.push(stack);
  const namespace = await createNamespace("e2e-durable");
  namespaces.push(namespace);
  const agent = await stack.createAgent("durable");
  const { key } = await stack.createKey(agent.id);
  return { stack, namespace, agent, key };
}

test.serial("a deploy made while the agent is down is applied when it comes back", async (t) => {
  const { stack, namespace, agent, key } = await setup(1);
  await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1" }]);
  const replica = stack.replicas[0]!;
  const client = deployClient(replica.grpcAddress, key);
  const { deployment } = await client.deploy(
    deployRequest({ namespace, workload: "web", image: "registry.example/acme/web:2" }),
  );
  t.is(deployment?.state, DeploymentState.DEPLOYMENT_STATE_QUEUED);
  await new Promise((r) => setTimeout(r, 1000));
  t.is((await client.get(deployment!.id)).deployment?.state, DeploymentState.DEPLOYMENT_STATE_QUEUED);
  t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:1" });
  stack.startAgent({ token: agent.token, servers: [replica.grpcAddress] });
  const done = await waitState(client, deployment!.id, [DeploymentState.DEPLOYMENT_STATE_SUCCEEDED]);
  t.is(done.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:2" });
  client.close();
});

test.serial(
  "kill -9 of the replica holding the agent's stream mid-deploy: the agent fails over, applied once",
  async (t) => {
    const { stack, namespace, agent, key } = await setup(2);
    // minReadySeconds keeps the rollout going long enough to kill the replica in the middle of it.
    await createDeployment(namespace, "slow", [{ name: "app", image: "registry.example/acme/slow:1" }], {
      minReadySeconds: 8,
      replicas: 2,
    });
    const [a, b] = stack.replicas;
    const agentProc = stack.startAgent({ token: agent.token, servers: [a!.grpcAddress, b!.grpcAddress] });
    await waitConnected(stack, agent.id, "replica-0");
    const before = await kube().apps.readNamespacedDeployment({ name: "slow", namespace });
    const client = deployClient(b!.grpcAddress, key);
    const { deployment } = await client.deploy(
      deployRequest({ namespace, workload: "slow", image: "registry.example/acme/slow:2", timeoutSeconds: 120 }),
    );
    await waitState(client, deployment!.id, [DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS]);
    await a!.stop("SIGKILL");
    const done = await waitState(client, deployment!.id, [
      DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
      DeploymentState.DEPLOYMENT_STATE_FAILED,
      DeploymentState.DEPLOYMENT_STATE_TIMED_OUT,
    ]);
    t.is(done.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED, done.message);
    await waitConnected(stack, agent.id, "replica-1");
    const after = await kube().apps.readNamespacedDeployment({ name: "slow", namespace });
    // Applied exactly once: one new pod template (generation +1); the agent executed the command
    // once and recognised the redelivery from replica B as a duplicate.
    t.is(after.metadata?.generation, (before.metadata?.generation ?? 0) + 1);
    t.deepEqual(await deploymentImages(namespace, "slow"), { app: "registry.example/acme/slow:2" });
    const lines = agentProc
      .output()
      .split("\n")
      .filter((l) => l.includes(deployment!.id));
    const executed = lines.filter((l) => l.includes('"msg":"command received"'));
    const duplicates = lines.filter((l) => l.includes('"msg":"duplicate command (not executed again)"'));
    t.is(executed.length, 1, lines.join("\n"));
    t.true(duplicates.length >= 1, `the command was not redelivered after the failover:\n${lines.join("\n")}`);
    const { events } = await client.get(deployment!.id);
    t.is(events.filter((e) => e.state === DeploymentState.DEPLOYMENT_STATE_SUCCEEDED).length, 1);
    client.close();
  },
);

test.serial("queued commands survive a Redis restart (AOF)", async (t) => {
  const { stack, namespace, agent, key } = await setup(1);
  await createDeployment(namespace, "persist", [{ name: "app", image: "registry.example/acme/persist:1" }]);
  const replica = stack.replicas[0]!;
  const client = deployClient(replica.grpcAddress, key);
  const { deployment } = await client.deploy(
    deployRequest({ namespace, workload: "persist", image: "registry.example/acme/persist:2" }),
  );
  await stack.redis.stop("SIGKILL");
  await stack.redis.restart();
  stack.startAgent({ token: agent.token, servers: [replica.grpcAddress] });
  const done = await waitState(client, deployment!.id, [DeploymentState.DEPLOYMENT_STATE_SUCCEEDED]);
  t.is(done.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  t.deepEqual(await deploymentImages(namespace, "persist"), { app: "registry.example/acme/persist:2" });
  client.close();
});
