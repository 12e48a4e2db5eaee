// `k8sdeploy-deadline` on a real `k8sdeploy serve`, over gRPC and Connect: a call whose caller is about
// to give up — though its transport timeout still claims seconds, as it does for a call that waited
// in the client's HTTP/2 queue — is refused with DEADLINE_EXCEEDED before anything is stored; a
// malformed header is INVALID_ARGUMENT saying what to send; a header far in the past (clocks that
// disagree) is ignored rather than failing every call.
import * as grpc from "@grpc/grpc-js";
import { DeployServiceClient } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import test from "ava";
import { adminClient, allDeployments, deployRequest } from "./support/clients.js";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";

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

function grpcDeploy(image: string, header: string | undefined): Promise<{ code: number; details: string }> {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${key}`);
  if (header !== undefined) md.set("k8sdeploy-deadline", header);
  return new Promise((resolve) =>
    client.deploy(deployRequest({ image }), md, { deadline: Date.now() + 10_000 }, (err) =>
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

test.serial("gRPC: a header an hour in the past is taken for clock skew and ignored", async (t) => {
  const r = await grpcDeploy("registry.example/skew:1", String(Date.now() - 3_600_000));
  t.is(r.code, grpc.status.OK, r.details);
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
