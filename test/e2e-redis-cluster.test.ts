// Two orchestrator replicas on a real Redis Cluster (3 masters + 3 replicas on loopback): the
// bundled action on replica B deploys through the real agent held by replica A (the bus over
// sharded Pub/Sub, the feed's blocking reader behind WatchDeployment, across nodes); and a master
// killed -9 in the middle of a stream of deploys loses none that was acknowledged.
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { DeployServiceClient } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { runBundledAction } from "./support/action.js";
import { adminClient, deployClient, deployRequest, isGrpcError } from "./support/clients.js";
import { githubEnv, node24 } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages } from "./support/kube.js";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";
import { agentBundleCheck } from "./support/preflight.js";
import { startProcess } from "./support/processes.js";
import { type RedisCluster, startRedisCluster } from "./support/redis-cluster.js";
import { agentBundle } from "./support/stack.js";
import { connectStandInAgent, waitUntil } from "./support/stand-in-agents.js";

const ADMIN = `admin-${randomBytes(16).toString("hex")}`;
const S = DeploymentState;
let cluster: RedisCluster;
let a: Orchestrator;
let b: Orchestrator;
const cleanups: (() => Promise<unknown>)[] = [];

test.before(async () => {
  agentBundleCheck();
  cluster = await startRedisCluster({ nodeTimeoutMs: 1000 });
  const env = (name: string) => ({
    K8SDEPLOY_REDIS_URL: cluster.url,
    K8SDEPLOY_ADMIN_TOKEN: ADMIN,
    K8SDEPLOY_REPLICA_ID: name,
    K8SDEPLOY_LOG_LEVEL: "debug",
  });
  [a, b] = await Promise.all([
    startOrchestrator({ env: env("replica-a") }),
    startOrchestrator({ env: env("replica-b") }),
  ]);
});

test.after.always(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await Promise.all([a?.stop("SIGKILL"), b?.stop("SIGKILL")]);
  await cluster?.stop();
});

async function agentWithKey(name: string) {
  const admin = adminClient(a.grpcAddress, ADMIN);
  const agent = await admin.createAgent(name);
  const key = await admin.createDeployKey(agent.id);
  admin.close();
  return { agent, key };
}

test.serial("the action on replica B deploys through the real agent on replica A, over the cluster", async (t) => {
  const namespace = await createNamespace("e2e-cluster");
  cleanups.push(() => deleteNamespace(namespace));
  await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1" }], { replicas: 1 });
  const { agent, key } = await agentWithKey("cluster-real");
  const proc = startProcess(process.execPath, [agentBundle], {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    KUBECONFIG: process.env.KUBECONFIG,
    K8SDEPLOY_SERVER: `http://${a.grpcAddress}`,
    K8SDEPLOY_AGENT_TOKEN: agent.token,
    POD_NAMESPACE: "k8sdeploy-e2e",
  });
  cleanups.push(() => proc.kill("SIGKILL"));
  await proc.waitFor(/connected to the orchestrator/);
  const result = await runBundledAction({
    inputs: {
      server: `http://${b.grpcAddress}`,
      key,
      namespace,
      deployment: "web",
      image: "registry.example/acme/web:2",
      timeout: "60",
    },
    env: githubEnv("8101"),
    node: node24(),
    timeoutMs: 120_000,
  });
  t.is(result.code, 0, result.stdout + result.stderr);
  t.is(result.outputs.status, "succeeded");
  t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:2" });
  // The progress the action printed came from the feed (WatchDeployment on B) of events stored by A.
  t.regex(result.stdout, /delivered to agent/);
});

test.serial("kill -9 of a master during a stream of deploys: none that was acknowledged is lost", async (t) => {
  const { agent, key } = await agentWithKey("cluster-failover");
  const standIn = connectStandInAgent(a.grpcAddress, agent);
  cleanups.push(async () => standIn.close());
  await waitUntil(() => standIn.welcomed, "the stand-in agent to connect");
  const victim = await cluster.masterOf(`k8sd:{${agent.id}}:queue`);

  const client = new DeployServiceClient(b.grpcAddress, grpc.credentials.createInsecure());
  cleanups.push(async () => client.close());
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${key}`);
  const acknowledged: string[] = [];
  let retried = 0;
  let killedAt = -1;
  for (let i = 0; i < 30; i++) {
    // As the action does: the same idempotency key until an answer, retrying UNAVAILABLE.
    const request = deployRequest({
      namespace: "cluster",
      workload: `w${i}`,
      image: `registry.example/app:${i}`,
      idempotencyKey: `run-${i}`,
    });
    for (;;) {
      const outcome = await new Promise<{ id?: string; err?: grpc.ServiceError }>((resolve) =>
        client.deploy(request, md, { deadline: Date.now() + 10_000 }, (err, res) =>
          resolve(err ? { err } : { id: res.deployment?.id }),
        ),
      );
      if (outcome.id) {
        acknowledged.push(outcome.id);
        break;
      }
      t.true(
        isGrpcError(outcome.err) && [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(outcome.err.code),
        String(outcome.err),
      );
      retried++;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (i === 9) {
      killedAt = Date.now();
      await cluster.kill(victim);
    }
  }
  t.log(`30 deploys acknowledged, ${retried} attempts retried, ${Date.now() - killedAt} ms from the kill`);
  t.is(new Set(acknowledged).size, 30);
  // Every acknowledged deploy reaches the agent and ends SUCCEEDED, as read through either replica.
  await waitUntil(
    () => acknowledged.every((id) => standIn.received.has(id)),
    "every acknowledged deploy to arrive",
    60_000,
  );
  for (const replica of [a, b]) {
    const reader = deployClient(replica.grpcAddress, key);
    for (const id of acknowledged) {
      let state: DeploymentState | undefined;
      for (let n = 0; n < 150 && state !== S.DEPLOYMENT_STATE_SUCCEEDED; n++) {
        state = (await reader.get(id).catch(() => undefined))?.deployment?.state;
        if (state !== S.DEPLOYMENT_STATE_SUCCEEDED) await new Promise((r) => setTimeout(r, 200));
      }
      t.is(state, S.DEPLOYMENT_STATE_SUCCEEDED, id);
    }
    reader.close();
  }
  // WAIT was honoured before the kill: no replica lagged behind an acknowledged write.
  const beforeKill = b
    .logEntries()
    .filter((e) => /fewer Redis replicas/.test(String(e.msg)) && Date.parse(String(e.time)) < killedAt);
  t.deepEqual(beforeKill, []);
});
