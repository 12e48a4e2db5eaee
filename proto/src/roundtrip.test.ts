// The two generated codes (ts-proto for Node, protobuf-es for Connect and the browser) must agree
// on the wire: the orchestrator's Connect adapter relies on it. Round-trip full messages both ways.
import { create, fromBinary, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import test from "ava";
import { ConnectRequestSchema as EsConnectRequestSchema } from "../gen/es/k8sdeploy/v1/agent_pb.js";
import { DeploymentSchema, DeploymentState as EsState } from "../gen/es/k8sdeploy/v1/types_pb.js";
import { ConnectRequest } from "../gen/node/k8sdeploy/v1/agent.js";
import { Deployment, DeploymentState, FailureReason, WorkloadKind } from "../gen/node/k8sdeploy/v1/types.js";

const full: Deployment = {
  id: "dep_0abc",
  agentId: "agt_1",
  keyId: "key_1",
  namespace: "shop",
  kind: WorkloadKind.WORKLOAD_KIND_STATEFUL_SET,
  workload: "db",
  containers: ["db", "migrate"],
  image: "ghcr.io/acme/db@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  timeoutSeconds: 600,
  rollbackOnFailure: true,
  idempotencyKey: "gha-1-1-x",
  origin: {
    repository: "acme/db",
    sha: "abc",
    ref: "refs/heads/main",
    actor: "octocat",
    runUrl: "https://x",
    workflow: "d",
  },
  state: DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
  failure: { reason: FailureReason.FAILURE_REASON_CRASH_LOOP, message: "CrashLoopBackOff" },
  createdAt: new Date("2026-11-26T07:00:00.123Z"),
  updatedAt: new Date("2026-11-26T07:01:00.456Z"),
  previousImages: [{ container: "db", image: "ghcr.io/acme/db:1", init: false }],
  appliedImages: [{ container: "migrate", image: "ghcr.io/acme/db:2", init: true }],
  message: "rolled back",
  replicas: { desired: 3, updated: 1, ready: 2, available: 2 },
  rollbackOf: "",
  queueDeadline: new Date("2026-05-01T11:00:00.000Z"),
  supersededBy: "dep_newer",
  pinDigest: true,
  resolvedDigest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  changeKind: 1,
  agentVersion: "",
  trustPolicyId: "tp_1",
  oidcClaims: {
    issuer: "https://token.actions.githubusercontent.com",
    subject: "repo:acme/db:environment:production",
    repository: "acme/db",
    repositoryId: "42",
    repositoryOwner: "acme",
    ref: "refs/heads/main",
    sha: "abc",
    environment: "production",
    workflowRef: "acme/db/.github/workflows/deploy.yml@refs/heads/main",
    jobWorkflowRef: "acme/db/.github/workflows/deploy.yml@refs/heads/main",
    actor: "octocat",
    runId: "7",
    runAttempt: "1",
    eventName: "push",
    tokenId: "f0c1",
    issuedAt: new Date("2026-11-26T06:59:00.000Z"),
  },
  deliveredAt: new Date("2026-11-26T07:00:05.789Z"),
};

test("a Deployment survives ts-proto → binary → protobuf-es → binary → ts-proto", (t) => {
  const es = fromBinary(DeploymentSchema, Deployment.encode(full).finish());
  t.is(es.state, EsState.ROLLED_BACK);
  t.is(es.appliedImages[0]?.init, true);
  t.is(es.createdAt?.nanos, 123_000_000);
  t.deepEqual(Deployment.decode(toBinary(DeploymentSchema, es)), full);
});

test("the JSON forms agree (Connect JSON ↔ ts-proto JSON)", (t) => {
  const es = fromBinary(DeploymentSchema, Deployment.encode(full).finish());
  const json = toJson(DeploymentSchema, es);
  t.deepEqual(Deployment.fromJSON(json), full);
  t.deepEqual(
    toBinary(DeploymentSchema, fromJson(DeploymentSchema, Deployment.toJSON(full) as never)),
    toBinary(DeploymentSchema, es),
  );
});

test("oneof messages on the agent stream round-trip", (t) => {
  const msg: ConnectRequest = {
    msg: {
      $case: "result",
      value: {
        commandId: "dep_1",
        state: DeploymentState.DEPLOYMENT_STATE_FAILED,
        failure: { reason: FailureReason.FAILURE_REASON_IMAGE_PULL, message: "ErrImagePull" },
        message: "m",
        replicas: undefined,
        previousImages: [],
        appliedImages: [],
        resolvedDigest: "",
      },
    },
  };
  const es = fromBinary(EsConnectRequestSchema, ConnectRequest.encode(msg).finish());
  t.is(es.msg.case, "result");
  t.deepEqual(ConnectRequest.decode(toBinary(EsConnectRequestSchema, create(EsConnectRequestSchema, es))), msg);
});
