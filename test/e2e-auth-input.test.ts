// Refusals: bad keys and scopes are refused with nothing queued, revoked agents cannot connect,
// malformed requests get INVALID_ARGUMENT that says what to fix, and the server keeps serving.
import { status } from "@grpc/grpc-js";
import test from "ava";
import { createClient } from "redis";
import { adminClient, deployClient, deployRequest, isGrpcError } from "./support/clients.js";
import { waitConnected } from "./support/e2e.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Stack, startStack } from "./support/stack.js";

let stack: Stack;
let address: string;
let agentId: string;
let agentToken: string;

test.before(async () => {
  agentBundleCheck();
  stack = await startStack({ replicas: 1 });
  address = stack.replicas[0]!.grpcAddress;
  const agent = await stack.createAgent("auth");
  agentId = agent.id;
  agentToken = agent.token;
});

test.after.always(async () => {
  await stack?.stop();
});

async function refused(t: import("ava").ExecutionContext, key: string, init: Parameters<typeof deployRequest>[0]) {
  const client = deployClient(address, key);
  try {
    await client.deploy(deployRequest(init));
    t.fail("the deploy was accepted");
    return undefined;
  } catch (err) {
    if (!isGrpcError(err)) throw err;
    return err;
  } finally {
    client.close();
  }
}

async function queueLength(): Promise<number> {
  const redis = createClient({ url: stack.redis.url });
  await redis.connect();
  try {
    return await redis.xLen(`k8sd:{${agentId}}:queue`);
  } finally {
    redis.destroy();
  }
}

async function deploymentCount(): Promise<number> {
  const admin = adminClient(address, stack.adminToken);
  const { deployments } = await admin.listDeployments({ agentId });
  admin.close();
  return deployments.length;
}

test.serial("wrong, revoked and out-of-scope keys are refused and nothing is queued", async (t) => {
  const scoped = await stack.createKey(agentId, { namespaces: ["allowed"], workloads: ["web"] });
  const revoked = await stack.createKey(agentId);
  await stack.cli(["key", "revoke", revoked.id]);

  const wrong = await refused(t, `${scoped.key.slice(0, -4)}AAAA`, { namespace: "allowed" });
  t.is(wrong?.code, status.UNAUTHENTICATED);
  const garbage = await refused(t, "not-a-key", { namespace: "allowed" });
  t.is(garbage?.code, status.UNAUTHENTICATED);
  const gone = await refused(t, revoked.key, { namespace: "allowed" });
  t.is(gone?.code, status.UNAUTHENTICATED);
  t.regex(gone?.details ?? "", /revoked/);
  const outside = await refused(t, scoped.key, { namespace: "prod" });
  t.is(outside?.code, status.PERMISSION_DENIED);
  t.regex(outside?.details ?? "", /namespace "prod" is not allowed/);
  const otherWorkload = await refused(t, scoped.key, { namespace: "allowed", workload: "db" });
  t.is(otherWorkload?.code, status.PERMISSION_DENIED);

  t.is(await deploymentCount(), 0);
  t.is(await queueLength(), 0);
  const logs = stack.allOutput();
  t.false(logs.includes(scoped.key));
  t.false(logs.includes(revoked.key));
});

test.serial("malformed requests get INVALID_ARGUMENT naming what to fix; the server keeps serving", async (t) => {
  const { key } = await stack.createKey(agentId);
  const cases: [Parameters<typeof deployRequest>[0], RegExp][] = [
    [{ namespace: "Bad_NS" }, /namespace "Bad_NS"/],
    [{ workload: "" }, /workload/],
    [{ image: "" }, /image: required/],
    [{ image: "UPPER/Case:1" }, /image/],
    [{ image: "nginx:bad tag" }, /image/],
    [{ image: `registry.example/${"a".repeat(600)}:1` }, /image/],
    [{ containers: ["ok", "Not_OK"] }, /containers\[1\]/],
    [{ timeoutSeconds: 99_999 }, /timeout_seconds/],
    [{ idempotencyKey: "k".repeat(200) }, /idempotency_key/],
    [
      { origin: { repository: "r".repeat(2000), sha: "", ref: "", actor: "", runUrl: "", workflow: "" } },
      /origin\.repository/,
    ],
    [
      { origin: { repository: "", sha: "", ref: "", actor: "", runUrl: "javascript:alert(1)", workflow: "" } },
      /run_url/,
    ],
  ];
  for (const [init, message] of cases) {
    const err = await refused(t, key, init);
    t.is(err?.code, status.INVALID_ARGUMENT, JSON.stringify(init).slice(0, 100));
    t.regex(err?.details ?? "", message);
  }
  const several = await refused(t, key, { namespace: "-x", image: "" });
  t.regex(several?.details ?? "", /namespace.*image|image.*namespace/);
  t.is(await deploymentCount(), 0);
  // Still serving: a valid request is accepted.
  const client = deployClient(address, key);
  const ok = await client.deploy(deployRequest({ namespace: "default", workload: "web" }));
  t.regex(ok.deployment?.id ?? "", /^dep_/);
  client.close();
});

test.serial("a revoked agent token cannot connect; revoking a connected agent ends its stream", async (t) => {
  const connected = stack.startAgent({ token: agentToken, servers: [address] });
  await waitConnected(stack, agentId);
  await stack.cli(["agent", "revoke", agentId]);
  t.is(await connected.exited(), 2);
  const again = stack.startAgent({ token: agentToken, servers: [address] });
  t.is(await again.exited(), 2);
  t.regex(again.output(), /revoked|rejected/i);
  t.false(again.output().includes(agentToken));
});
