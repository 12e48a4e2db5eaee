// Property-based fuzzing (fast-check) of Deploy on both ports of a real `k8sdeploy serve` backed
// by a real redis-server: random DeployRequests over gRPC (grpc-js) and Connect JSON, random
// bytes over gRPC and Connect binary, random JSON over Connect. No answer is INTERNAL / HTTP 500,
// nothing is queued (the deploy key only allows a namespace the generators never produce), and
// the server still serves afterwards. Runs are bounded (a few hundred cases, seeded by fast-check
// and printed on failure so a case can be replayed with `{ seed, path }`).
import * as grpc from "@grpc/grpc-js";
import { DeployRequest } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import test from "ava";
import fc from "fast-check";
import { createClient } from "redis";
import { adminClient, deployClient, isGrpcError } from "./support/clients.js";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";
import { grpcFrame, rawGrpcCall } from "./support/raw-grpc.js";
import { type RedisServer, startRedisServer } from "./support/redis-server.js";

const ADMIN_TOKEN = `admin-${"f0zz".repeat(10)}`;
const ALLOWED_NAMESPACE = "only-this-namespace";
const RUNS = 300;
let redis: RedisServer;
let orch: Orchestrator;
let agentId = "";
let key = "";

test.before(async () => {
  redis = await startRedisServer();
  orch = await startOrchestrator({
    env: {
      K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN,
      K8SDEPLOY_REDIS_URL: redis.url,
      // Wrong keys are part of the fuzzing; the guessing limit is tested elsewhere.
      K8SDEPLOY_AUTH_FAILURES_PER_MINUTE: "100000",
    },
  });
  const call = async <T>(method: string, body: unknown) => {
    const res = await fetch(`${orch.httpUrl}/k8sdeploy.v1.AdminService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify(body),
    });
    return (await res.json()) as T;
  };
  agentId = (await call<{ agent: { id: string } }>("CreateAgent", { name: "fuzz" })).agent.id;
  key = (await call<{ key: string }>("CreateDeployKey", { agentId, name: "fuzz", namespaces: [ALLOWED_NAMESPACE] }))
    .key;
});

test.after.always(async () => {
  await orch?.stop();
  await redis?.stop();
});

const interesting = fc.constantFrom(
  "",
  "shop",
  "web",
  "default",
  "nginx:1.27",
  "ghcr.io/acme/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  "UPPER",
  "-bad-",
  "a".repeat(600),
  "🚀",
  "../../etc/passwd",
  "\u0000",
  ALLOWED_NAMESPACE.toUpperCase(),
);
const text = fc.oneof(interesting, fc.string({ maxLength: 80 }), fc.string({ unit: "binary", maxLength: 40 }));
/** Anything but the one namespace the key allows (so nothing may be queued). */
const namespace = text.filter((s) => s !== ALLOWED_NAMESPACE);

const deployRequest: fc.Arbitrary<DeployRequest> = fc.record({
  namespace,
  kind: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: -5, max: 2 ** 31 - 1 })),
  workload: text,
  containers: fc.array(text, { maxLength: 40 }),
  image: text,
  timeoutSeconds: fc.oneof(fc.integer({ min: 0, max: 4000 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
  rollbackOnFailure: fc.boolean(),
  pinDigest: fc.boolean(),
  idempotencyKey: text,
  queueTimeoutSeconds: fc.oneof(fc.integer({ min: 0, max: 700_000 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
  origin: fc.option(
    fc.record({
      repository: text,
      sha: text,
      ref: text,
      actor: text,
      runUrl: fc.oneof(text, fc.webUrl()),
      workflow: text,
    }),
    { nil: undefined },
  ),
});
const credential = fc.oneof(
  { weight: 4, arbitrary: fc.constant("key") },
  fc.constant("none"),
  fc.constant("admin"),
  fc.string({ maxLength: 60 }),
);
const bearerFor = (c: string) => (c === "key" ? key : c === "admin" ? ADMIN_TOKEN : c);

function grpcDeploy(request: DeployRequest, token: string): Promise<grpc.status> {
  const client = deployClient(orch.grpcAddress, token);
  return client
    .deploy(request)
    .then(
      () => grpc.status.OK,
      (err: unknown) => {
        if (!isGrpcError(err)) throw err;
        return err.code;
      },
    )
    .finally(() => client.close());
}

async function connectPost(contentType: string, body: Uint8Array | string, token: string) {
  const headers: Record<string, string> = { "content-type": contentType };
  if (token !== "none") headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${orch.httpUrl}/k8sdeploy.v1.DeployService/Deploy`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : Buffer.from(body),
  });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, text };
}

/** Connect JSON of a DeployRequest (proto3 JSON names), with an occasional unknown or mistyped field. */
function jsonOf(request: DeployRequest, extra: Record<string, unknown>): string {
  return JSON.stringify({
    namespace: request.namespace,
    kind: request.kind,
    workload: request.workload,
    containers: request.containers,
    image: request.image,
    timeoutSeconds: request.timeoutSeconds,
    rollbackOnFailure: request.rollbackOnFailure,
    idempotencyKey: request.idempotencyKey,
    ...(request.origin ? { origin: request.origin } : {}),
    ...extra,
  });
}

const params = { numRuns: RUNS, endOnFailure: true } as const;

test.serial("random DeployRequests over gRPC: never INTERNAL, never accepted", async (t) => {
  await fc.assert(
    fc.asyncProperty(deployRequest, credential, async (request, cred) => {
      const code = await grpcDeploy(request, bearerFor(cred === "none" ? "" : cred));
      return code !== grpc.status.INTERNAL && code !== grpc.status.OK && code !== grpc.status.UNKNOWN;
    }),
    params,
  );
  t.pass();
});

test.serial("random bytes over gRPC: never INTERNAL", async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), credential, async (bytes, cred) => {
      const r = await rawGrpcCall(orch.grpcAddress, "/k8sdeploy.v1.DeployService/Deploy", grpcFrame(bytes), {
        ...(cred === "none" ? {} : { authorization: `Bearer ${bearerFor(cred)}` }),
      });
      return r.code !== undefined && r.code !== grpc.status.INTERNAL && r.code !== grpc.status.OK;
    }),
    params,
  );
  t.pass();
});

test.serial("random DeployRequests and bytes over Connect binary and JSON: never internal / HTTP 500", async (t) => {
  const extra = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), {
    maxKeys: 2,
  });
  await fc.assert(
    fc.asyncProperty(deployRequest, extra, credential, async (request, more, cred) => {
      const token = bearerFor(cred);
      const binary = await connectPost("application/proto", DeployRequest.encode(request).finish(), token);
      const json = await connectPost("application/json", jsonOf(request, more), token);
      for (const r of [binary, json]) {
        if (r.status >= 500 || r.status === 200 || r.code === "internal" || r.code === "unknown") {
          throw new Error(`HTTP ${r.status}: ${r.text}`);
        }
      }
      return true;
    }),
    params,
  );
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.uint8Array({ maxLength: 600 }), fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 })),
      fc.constantFrom("application/proto", "application/json"),
      credential,
      async (body, type, cred) => {
        const r = await connectPost(type, body, bearerFor(cred));
        if (r.status >= 500 || r.status === 200 || r.code === "internal")
          throw new Error(`HTTP ${r.status}: ${r.text}`);
        return true;
      },
    ),
    params,
  );
  t.pass();
});

test.serial("afterwards nothing is queued and the server still serves", async (t) => {
  const admin = adminClient(orch.grpcAddress, ADMIN_TOKEN);
  try {
    t.is((await admin.listDeployments({ agentId })).deployments.length, 0);
  } finally {
    admin.close();
  }
  const client = createClient({ url: redis.url });
  await client.connect();
  try {
    t.is(await client.xLen(`k8sd:{${agentId}}:queue`), 0);
  } finally {
    client.destroy();
  }
  t.is(orch.process.exitCode, null);
  const health = await rawGrpcCall(orch.grpcAddress, "/grpc.health.v1.Health/Check", grpcFrame(Buffer.alloc(0)));
  t.is(health.code, grpc.status.OK);
  t.is((await fetch(`${orch.httpUrl}/healthz`)).status, 200);
  t.false(orch.logs().includes(key.slice(20)), "the deploy key's secret is never logged");
});
