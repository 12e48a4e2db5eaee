// `k8sdeploy-deadline` on a real `k8sdeploy serve`, over gRPC and Connect: a call whose caller is about
// to give up — though its transport timeout still claims seconds, as it does for a call that waited
// in the client's HTTP/2 queue — is refused with DEADLINE_EXCEEDED before anything is stored; a
// malformed header is INVALID_ARGUMENT saying what to send; a header long past (a stale call, or a
// clock that is behind: a server cannot tell them apart) is refused naming both; a deadline used up
// while the call waits on a stalled store is refused before the deploy is stored.
import * as grpc from "@grpc/grpc-js";
import { DeployServiceClient } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import test from "ava";
import { adminClient, allDeployments, deployRequest } from "./support/clients.js";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";
import { startRedisServer } from "./support/redis-server.js";

const ADMIN_TOKEN = `admin-${"dead".repeat(10)}`;
let orch: Orchestrator;
let key: string;
let client: DeployServiceClient;

test.before(async () => {
  orch = await startOrchestrator({ env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN } });
  const admin = adminClient(orch.grpcAddress, ADMIN_TOKEN);
  const agent = await admin.createAgent("deadline");
  key = await admin.createDeployKey(agent.id);
  admin.close();
  client = new DeployServiceClient(orch.grpcAddress, grpc.credentials.createInsecure());
});

test.after.always(async () => {
  client?.close();
  await orch?.stop();
});

async function storedImages(): Promise<string[]> {
  return (await allDeployments(orch.grpcAddress, ADMIN_TOKEN)).map((d) => d.image);
}

function grpcDeploy(
  image: string,
  header: string | undefined,
  via: { client: DeployServiceClient; key: string } = { client, key },
): Promise<{ code: number; details: string }> {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${via.key}`);
  if (header !== undefined) md.set("k8sdeploy-deadline", header);
  return new Promise((resolve) =>
    via.client.deploy(deployRequest({ image }), md, { deadline: Date.now() + 10_000 }, (err) =>
      resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: "" }),
    ),
  );
}

async function connectDeploy(
  image: string,
  header: string,
): Promise<{ status: number; code?: string; message?: string }> {
  const res = await fetch(`${orch.httpUrl}/k8sdeploy.v1.DeployService/Deploy`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "connect-timeout-ms": "10000",
      authorization: `Bearer ${key}`,
      "k8sdeploy-deadline": header,
    },
    body: JSON.stringify({ namespace: "default", workload: "web", image }),
  });
  const body = (await res.json()) as { code?: string; message?: string };
  return { status: res.status, code: body.code, message: body.message };
}

test.serial("gRPC: a call whose caller gives up in 50 ms is refused before anything is stored", async (t) => {
  const r = await grpcDeploy("registry.example/stale:1", String(Date.now() + 50));
  t.is(r.code, grpc.status.DEADLINE_EXCEEDED, r.details);
  t.regex(r.details, /nothing was done/);
  // Just passed (within the clock tolerance): refused too.
  const passed = await grpcDeploy("registry.example/stale:2", String(Date.now() - 500));
  t.is(passed.code, grpc.status.DEADLINE_EXCEEDED, passed.details);
  t.false((await storedImages()).some((i) => i.startsWith("registry.example/stale:")));
});

test.serial("gRPC: a header with time to spare, or none, is served", async (t) => {
  t.is((await grpcDeploy("registry.example/fresh:1", String(Date.now() + 5000))).code, grpc.status.OK);
  t.is((await grpcDeploy("registry.example/fresh:2", undefined)).code, grpc.status.OK);
  t.true((await storedImages()).includes("registry.example/fresh:1"));
});

test.serial("gRPC: a header long past is refused, naming a stale call or a clock that is behind", async (t) => {
  const r = await grpcDeploy("registry.example/skew:1", String(Date.now() - 3_600_000));
  t.is(r.code, grpc.status.DEADLINE_EXCEEDED, r.details);
  t.regex(
    r.details,
    /k8sdeploy-deadline\) passed 3600\.\d s ago by this server's clock: the call waited that long on the caller's side, or the caller's clock is behind; nothing was done/,
  );
  t.false((await storedImages()).includes("registry.example/skew:1"));
});

test.serial("gRPC: a malformed header is INVALID_ARGUMENT saying what to send, and nothing is stored", async (t) => {
  const r = await grpcDeploy("registry.example/malformed:1", "in ten seconds");
  t.is(r.code, grpc.status.INVALID_ARGUMENT);
  t.regex(r.details, /k8sdeploy-deadline must be the caller's deadline in whole milliseconds since the Unix epoch/);
  t.false((await storedImages()).includes("registry.example/malformed:1"));
});

test.serial("Connect: the same header is honoured on the HTTP port", async (t) => {
  const stale = await connectDeploy("registry.example/connect-stale:1", String(Date.now() + 50));
  t.is(stale.code, "deadline_exceeded", JSON.stringify(stale));
  const malformed = await connectDeploy("registry.example/connect-malformed:1", "soon");
  t.is(malformed.code, "invalid_argument", JSON.stringify(malformed));
  t.regex(malformed.message ?? "", /k8sdeploy-deadline must be/);
  const fresh = await connectDeploy("registry.example/connect-fresh:1", String(Date.now() + 5000));
  t.is(fresh.status, 200, JSON.stringify(fresh));
  const images = await storedImages();
  t.false(images.includes("registry.example/connect-stale:1"));
  t.false(images.includes("registry.example/connect-malformed:1"));
  t.true(images.includes("registry.example/connect-fresh:1"));
});

// The deadline is checked again once the key is read: with Redis stopped (SIGSTOP) for 1.5 s, a call
// whose caller gives up after 600 ms passes admission, waits on the key's lookup, and is then refused
// — not stored and answered OK to a caller whose transport timeout (10 s) still waits. The deploy key
// is read from Redis on every call, so the stall is where the call waits.
test.serial("gRPC: a deadline used up while the store stalls is refused before the deploy is stored", async (t) => {
  const redis = await startRedisServer({ appendonly: false });
  const o = await startOrchestrator({ env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN, K8SDEPLOY_REDIS_URL: redis.url } });
  const own = new DeployServiceClient(o.grpcAddress, grpc.credentials.createInsecure());
  t.teardown(async () => {
    own.close();
    await o.stop();
    await redis.stop("SIGKILL");
  });
  const admin = adminClient(o.grpcAddress, ADMIN_TOKEN);
  const agent = await admin.createAgent("stall");
  const stallKey = await admin.createDeployKey(agent.id);
  admin.close();
  const via = { client: own, key: stallKey };
  t.is((await grpcDeploy("registry.example/before-stall:1", String(Date.now() + 5000), via)).code, grpc.status.OK);

  process.kill(redis.pid, "SIGSTOP");
  const resume = setTimeout(() => process.kill(redis.pid, "SIGCONT"), 1500);
  t.teardown(() => {
    clearTimeout(resume);
    process.kill(redis.pid, "SIGCONT");
  });
  const started = Date.now();
  const r = await grpcDeploy("registry.example/stalled:1", String(started + 600), via);
  t.true(Date.now() - started >= 1400, "the call waited on the stalled store");
  t.is(r.code, grpc.status.DEADLINE_EXCEEDED, r.details);
  t.regex(r.details, /deadline passed before the deploy could be stored; nothing was done/);
  const images = (await allDeployments(o.grpcAddress, ADMIN_TOKEN)).map((d) => d.image);
  t.true(images.includes("registry.example/before-stall:1"));
  t.false(images.includes("registry.example/stalled:1"));
});
