// Hardening on real processes (issue 7): a result in flight while Redis is killed is stored when it
// is back (never silently dropped, never resurrected by an agent restart); a Redis outage of
// several seconds makes Deploy answer UNAVAILABLE and the action retry until it succeeds; a step
// that gave up on an offline agent is never deployed when the agent comes back.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { runBundledAction } from "./support/action.js";
import { deployClient, deployRequest, isGrpcError } from "./support/clients.js";
import { githubEnv, node24, waitConnected, waitState } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages, kube, waitFor } from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Stack, startStack } from "./support/stack.js";

const S = DeploymentState;
const FINAL = [S.DEPLOYMENT_STATE_SUCCEEDED, S.DEPLOYMENT_STATE_FAILED, S.DEPLOYMENT_STATE_TIMED_OUT];
const stacks: Stack[] = [];
const namespaces: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);
const redisCli = (port: number, args: string[]) => run("redis-cli", ["-p", String(port), ...args]);

test.before(() => agentBundleCheck());

test.after.always(async () => {
  await Promise.all(stacks.map((s) => s.stop()));
  await Promise.all(namespaces.map(deleteNamespace));
});

async function setup(name: string) {
  const stack = await startStack({ replicas: 1 });
  stacks.push(stack);
  const namespace = await createNamespace(name);
  namespaces.push(namespace);
  const agent = await stack.createAgent(name);
  const { key } = await stack.createKey(agent.id);
  const replica = stack.replicas[0]!;
  return { stack, namespace, agent, key, replica, client: deployClient(replica.grpcAddress, key) };
}

test.serial(
  "a result the store cannot take (writes paused, then Redis killed -9) is stored once Redis is back; an agent restart resurrects nothing",
  async (t) => {
    const { stack, namespace, agent, replica, client } = await setup("e2e-lost-result");
    // minReadySeconds keeps the rollout going long enough to kill Redis before it ends.
    await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1" }], {
      minReadySeconds: 6,
      replicas: 1,
    });
    let agentProc = stack.startAgent({ token: agent.token, servers: [replica.grpcAddress] });
    await waitConnected(stack, agent.id);
    const { deployment: first } = await client.deploy(
      deployRequest({ namespace, workload: "web", image: "registry.example/acme/web:2", timeoutSeconds: 120 }),
    );
    await waitState(client, first!.id, [S.DEPLOYMENT_STATE_IN_PROGRESS]);
    // Redis stops taking writes (as during a failover or under overload), so storing the result the
    // agent sends when the rollout ends times out; then Redis is killed -9 and restarted from its AOF
    // while the orchestrator still holds that result.
    await redisCli(stack.redis.port, ["CLIENT", "PAUSE", "60000", "WRITE"]);
    await waitFor(async () => {
      const d = await kube().apps.readNamespacedDeployment({ name: "web", namespace });
      return d.status?.availableReplicas === 1 && d.status?.updatedReplicas === 1 && d.status.replicas === 1;
    }, "the rollout to finish");
    await waitFor(
      async () => /storing an agent message failed/.test(replica.logs()),
      "storing the result to fail at least once",
      45_000,
    ).catch((e) => {
      t.log(
        agentProc
          .output()
          .split("\n")
          .filter((l) => !/"debug"/.test(l))
          .join("\n"),
      );
      t.log(
        replica
          .logs()
          .split("\n")
          .filter((l) => !/redis connection error/.test(l))
          .slice(-30)
          .join("\n"),
      );
      throw e;
    });
    t.is(
      (await client.get(first!.id).catch(() => undefined))?.deployment?.state ?? S.DEPLOYMENT_STATE_IN_PROGRESS,
      S.DEPLOYMENT_STATE_IN_PROGRESS,
    );
    await stack.redis.stop("SIGKILL");
    await stack.redis.restart();
    const done = await waitState(client, first!.id, FINAL, 120_000);
    t.is(done.state, S.DEPLOYMENT_STATE_SUCCEEDED, done.message);

    // A newer deploy succeeds; then the agent restarts: the older command is not applied again.
    const { deployment: second } = await client.deploy(
      deployRequest({ namespace, workload: "web", image: "registry.example/acme/web:3", timeoutSeconds: 120 }),
    );
    t.is((await waitState(client, second!.id, FINAL, 120_000)).state, S.DEPLOYMENT_STATE_SUCCEEDED);
    const generation = (await kube().apps.readNamespacedDeployment({ name: "web", namespace })).metadata?.generation;
    await agentProc.kill("SIGKILL");
    agentProc = stack.startAgent({ token: agent.token, servers: [replica.grpcAddress] });
    await waitConnected(stack, agent.id);
    await sleep(3000);
    t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:3" });
    const after = await kube().apps.readNamespacedDeployment({ name: "web", namespace });
    t.is(after.metadata?.generation, generation, "nothing was patched after the restart");
    t.is((await client.get(first!.id)).deployment?.state, S.DEPLOYMENT_STATE_SUCCEEDED);
    t.is((await client.get(second!.id)).deployment?.state, S.DEPLOYMENT_STATE_SUCCEEDED);
    const { events } = await client.get(first!.id);
    t.is(events.filter((e) => e.state === S.DEPLOYMENT_STATE_SUCCEEDED).length, 1);
    client.close();
  },
);

test.serial(
  "a Redis outage longer than 5 s: Deploy answers UNAVAILABLE saying to retry; the action retries and succeeds",
  async (t) => {
    const { stack, namespace, agent, key, replica, client } = await setup("e2e-outage");
    await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1" }]);
    stack.startAgent({ token: agent.token, servers: [replica.grpcAddress] });
    await waitConnected(stack, agent.id);
    await stack.redis.stop("SIGKILL");
    const err = await client
      .deploy(deployRequest({ namespace, workload: "web", image: "registry.example/acme/web:2" }))
      .catch((e: unknown) => e);
    t.true(isGrpcError(err), String(err));
    if (isGrpcError(err)) {
      t.is(err.code, status.UNAVAILABLE, err.details);
      t.regex(err.details, /store \(Redis\) is unreachable.*retry/);
    }
    const action = runBundledAction({
      inputs: {
        server: `http://${replica.grpcAddress}`,
        key,
        namespace,
        deployment: "web",
        image: "registry.example/acme/web:3",
        timeout: "60",
      },
      env: githubEnv("7001"),
      node: node24(),
      timeoutMs: 180_000,
    });
    // 9 s of outage while the action is already trying.
    await sleep(9000);
    await stack.redis.restart();
    const result = await action;
    t.is(result.code, 0, result.stdout + result.stderr);
    t.is(result.outputs.status, "succeeded");
    t.regex(result.stdout, /UNAVAILABLE.*trying again/);
    t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:3" });
    client.close();
  },
);

test.serial("a step that gave up on an offline agent is never deployed when the agent comes back", async (t) => {
  const { stack, namespace, agent, key, replica, client } = await setup("e2e-gave-up");
  await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1" }]);
  const result = await runBundledAction({
    inputs: {
      server: `http://${replica.grpcAddress}`,
      key,
      namespace,
      deployment: "web",
      image: "registry.example/acme/web:2",
      timeout: "60",
      "queue-timeout": "3",
    },
    env: githubEnv("7002"),
    node: node24(),
    timeoutMs: 120_000,
  });
  t.is(result.code, 1, result.stdout);
  const id = result.outputs["deployment-id"] ?? "";
  t.regex(result.outputs.status ?? "", /^(expired|cancelled)$/);
  // Hours later, as far as the queue is concerned: the agent returns.
  stack.startAgent({ token: agent.token, servers: [replica.grpcAddress] });
  await waitConnected(stack, agent.id);
  await sleep(3000);
  t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:1" });
  const d = (await client.get(id)).deployment;
  t.true(d?.state === S.DEPLOYMENT_STATE_EXPIRED || d?.state === S.DEPLOYMENT_STATE_CANCELLED, String(d?.state));
  client.close();
});
