// Image pre-flight on real parts: the test bed's CNCF Distribution registry (htpasswd auth, TLS
// signed by the test bed's CA) with small multi-platform images pushed by crane, the test bed's
// kube-apiserver with kwok nodes of two architectures (kwok-node-0 is amd64; this file adds a
// tainted arm64 node), and the agent's deploy executor. Needs `npm run testbed -- up` and its env.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState, FailureReason, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1PodSpec } from "@kubernetes/client-node";
import { type PushedImage, pushTestImage, testRegistry } from "../../../test/support/registry.js";
import { freePort } from "../../../test/support/tools.js";
import { createDeployExecutor, type DeployExecutorOptions } from "../deploy/deploy.js";
import { type Cluster, clusterTest, deploymentId, eventually, imagesOf } from "../deploy/testing/testbed-fixtures.js";
import type { Progress, Result } from "../executor.js";
import type { PreflightOptions } from "./preflight.js";

const test = clusterTest();
const S = DeploymentState;
const R = FailureReason;
const DEPLOYMENT = WorkloadKind.WORKLOAD_KIND_DEPLOYMENT;
const TAINT = "k8sdeploy.dev/test-arm64";

const registry = testRegistry();
const caPem = readFileSync(registry.caFile, "utf8");
const repo = `k8sd-pf-${randomBytes(3).toString("hex")}/app`;
const image = (tag: string) => `${registry.host}/${repo}:${tag}`;
let images: { multi: PushedImage; amd64: PushedImage; arm64: PushedImage };
let piNode: string;
let ns: string;
/** Every message the executor produced in this file, for the secret check. */
const allMessages: string[] = [];

const WRONG_PASSWORD = `wrong-${randomBytes(8).toString("hex")}`;

function dockerConfig(user: string, password: string) {
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  return Buffer.from(JSON.stringify({ auths: { [registry.host]: { auth } } })).toString("base64");
}

test.before(async (t) => {
  const { cluster } = t.context;
  const [multi, amd64, arm64] = await Promise.all([
    pushTestImage(repo, "multi", { platforms: ["linux/amd64", "linux/arm64"] }),
    pushTestImage(repo, "amd64", { platforms: ["linux/amd64"] }),
    pushTestImage(repo, "arm64", { platforms: ["linux/arm64"] }),
  ]);
  images = { multi, amd64, arm64 };
  // An arm64 node managed by kwok, tainted so that other test files' pods stay off it.
  piNode = `k8sd-pi-${randomBytes(3).toString("hex")}`;
  await cluster.core.createNode({
    body: {
      metadata: {
        name: piNode,
        annotations: { "kwok.x-k8s.io/node": "fake" },
        labels: {
          "kubernetes.io/hostname": piNode,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "arm64",
          type: "kwok",
        },
      },
      spec: { taints: [{ key: TAINT, value: "true", effect: "NoSchedule" }] },
    },
  });
  await eventually("the arm64 node to be Ready", 60, async () => {
    const n = await cluster.core.readNode({ name: piNode });
    return n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? true : undefined;
  });
  ns = await cluster.namespace("preflight");
  for (const [name, password] of [
    ["good", registry.password],
    ["bad", WRONG_PASSWORD],
  ] as const) {
    await cluster.core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name },
        type: "kubernetes.io/dockerconfigjson",
        data: { ".dockerconfigjson": dockerConfig(registry.user, password) },
      },
    });
  }
});

test.after.always(async (t) => {
  if (piNode) await t.context.cluster?.core.deleteNode({ name: piNode }).catch(() => undefined);
});

const onArm64: Partial<V1PodSpec> = {
  nodeSelector: { "kubernetes.io/arch": "arm64" },
  tolerations: [{ key: TAINT, operator: "Exists", effect: "NoSchedule" }],
};
const anywhere: Partial<V1PodSpec> = { tolerations: [{ key: TAINT, operator: "Exists", effect: "NoSchedule" }] };

async function workload(cluster: Cluster, name: string, spec: Partial<V1PodSpec> = {}): Promise<void> {
  await cluster.apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name: "app", image: image("old") }], terminationGracePeriodSeconds: 0, ...spec },
        },
      },
    },
  });
  await cluster.ready(DEPLOYMENT, ns, name);
}

function command(workloadName: string, img: string, over: Partial<DeployCommand> = {}): DeployCommand {
  return {
    deploymentId: deploymentId(),
    namespace: ns,
    kind: DEPLOYMENT,
    workload: workloadName,
    containers: [],
    image: img,
    timeoutSeconds: 60,
    rollbackOnFailure: false,
    origin: undefined,
    pinDigest: false,
    ...over,
  };
}

async function deploy(
  cluster: Cluster,
  cmd: DeployCommand,
  preflight: PreflightOptions = {},
): Promise<{ result: Result; progress: Progress[]; ms: number }> {
  const progress: Progress[] = [];
  const options: DeployExecutorOptions = { preflight: { registry: { caPem }, ...preflight } };
  const started = Date.now();
  const result = await createDeployExecutor(cluster.kc, options)(cmd, (p) => progress.push(p));
  allMessages.push(result.message, result.failure?.message ?? "", ...progress.map((p) => p.message));
  return { result, progress, ms: Date.now() - started };
}

/** The workload was not patched: same generation, same image. */
async function untouched(t: import("ava").ExecutionContext, cluster: Cluster, name: string, generation: number) {
  const obj = await cluster.get(DEPLOYMENT, ns, name);
  t.is(obj.metadata?.generation, generation, "the workload was not patched");
  t.deepEqual(imagesOf(obj), { app: image("old") });
}

const generationOf = async (cluster: Cluster, name: string) =>
  (await cluster.get(DEPLOYMENT, ns, name)).metadata?.generation ?? 0;

test.serial("found and pinned: the workload runs repo:tag@digest and the digest is reported", async (t) => {
  const { cluster } = t.context;
  await workload(cluster, "pinned", { imagePullSecrets: [{ name: "good" }] });
  const { result, progress, ms } = await deploy(cluster, command("pinned", image("multi"), { pinDigest: true }));
  t.log(`${ms} ms: ${progress.map((p) => p.message).join(" | ")}`);
  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  t.is(result.resolvedDigest, images.multi.digest);
  const pinned = `${image("multi")}@${images.multi.digest}`;
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "pinned")), { app: pinned });
  t.deepEqual(result.appliedImages, [{ container: "app", image: pinned, init: false }]);
  const check = progress.find((p) => p.resolvedDigest);
  t.is(check?.state, S.DEPLOYMENT_STATE_DELIVERED, "the pre-flight reports before anything is patched");
  t.regex(
    check?.message ?? "",
    new RegExp(`is ${images.multi.digest} \\(linux/amd64, linux/arm64; resolved with secret ${ns}/good\\)`),
  );
});

test.serial("without pinning the tag is written as given, and the digest is still reported", async (t) => {
  const { cluster } = t.context;
  await workload(cluster, "tagged", { imagePullSecrets: [{ name: "good" }] });
  const { result } = await deploy(cluster, command("tagged", image("amd64")));
  t.is(result.state, S.DEPLOYMENT_STATE_SUCCEEDED, result.message);
  t.is(result.resolvedDigest, images.amd64.digest);
  t.deepEqual(imagesOf(await cluster.get(DEPLOYMENT, ns, "tagged")), { app: image("amd64") });
});

test.serial("not found: fails in seconds naming registry, repository and tag; nothing patched", async (t) => {
  const { cluster } = t.context;
  await workload(cluster, "missing", { imagePullSecrets: [{ name: "good" }] });
  const generation = await generationOf(cluster, "missing");
  const { result, ms } = await deploy(cluster, command("missing", image("no-such-tag")));
  t.is(result.state, S.DEPLOYMENT_STATE_FAILED);
  t.is(result.failure?.reason, R.FAILURE_REASON_IMAGE_NOT_FOUND, result.message);
  t.true(ms < 5000, `took ${ms} ms`);
  for (const part of [registry.host, JSON.stringify(repo), '"no-such-tag"'])
    t.true(result.message.includes(part), result.message);
  t.regex(result.message, /HTTP 404 MANIFEST_UNKNOWN/);
  await untouched(t, cluster, "missing", generation);
});

test.serial("wrong credentials: names the secret and the registry's answer, never the password", async (t) => {
  const { cluster } = t.context;
  await workload(cluster, "wrongpw", { imagePullSecrets: [{ name: "bad" }] });
  const generation = await generationOf(cluster, "wrongpw");
  const { result } = await deploy(cluster, command("wrongpw", image("multi")));
  t.is(result.failure?.reason, R.FAILURE_REASON_REGISTRY_UNAUTHORIZED, result.message);
  t.true(result.message.includes(`secret ${ns}/bad`), result.message);
  t.regex(result.message, /HTTP 401/);
  t.false(result.message.includes(WRONG_PASSWORD));
  await untouched(t, cluster, "wrongpw", generation);
});

test.serial("no credentials for a private repository: says which secrets were checked", async (t) => {
  const { cluster } = t.context;
  await workload(cluster, "nocreds");
  const generation = await generationOf(cluster, "nocreds");
  const { result } = await deploy(cluster, command("nocreds", image("multi")));
  t.is(result.failure?.reason, R.FAILURE_REASON_REGISTRY_UNAUTHORIZED, result.message);
  t.regex(result.message, /requires a login \(Basic\): HTTP 401/);
  t.regex(
    result.message,
    new RegExp(
      `none of the secrets the agent can use has credentials for registry ${registry.host.replace(/\./g, "\\.")}`,
    ),
  );
  await untouched(t, cluster, "nocreds", generation);
});

test.serial("credentials from the service account's imagePullSecrets and from the agent's own secret", async (t) => {
  const { cluster } = t.context;
  await cluster.core.createNamespacedServiceAccount({
    namespace: ns,
    body: { metadata: { name: "puller" }, imagePullSecrets: [{ name: "good" }] },
  });
  await workload(cluster, "viasa", { serviceAccountName: "puller" });
  const viaSa = await deploy(cluster, command("viasa", image("multi")));
  t.is(viaSa.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, viaSa.result.message);
  t.true(viaSa.progress.some((p) => p.message.includes(`resolved with secret ${ns}/good`)));

  await workload(cluster, "viaagent");
  const viaAgent = await deploy(cluster, command("viaagent", image("multi")), {
    agentSecret: { namespace: ns, name: "good" },
  });
  t.is(viaAgent.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, viaAgent.result.message);
});

test.serial(
  "platform mismatch: an amd64-only image to a workload pinned to arm64 nodes; nothing patched",
  async (t) => {
    const { cluster } = t.context;
    await workload(cluster, "pi", { imagePullSecrets: [{ name: "good" }], ...onArm64 });
    const generation = await generationOf(cluster, "pi");
    const { result, ms } = await deploy(cluster, command("pi", image("amd64")));
    t.is(result.failure?.reason, R.FAILURE_REASON_PLATFORM_MISMATCH, result.message);
    t.is(
      result.failure?.message,
      `${image("amd64")} has linux/amd64 only; the pods can land on linux/arm64 node ${piNode}`,
    );
    t.is(result.resolvedDigest, images.amd64.digest);
    t.true(ms < 5000, `took ${ms} ms`);
    await untouched(t, cluster, "pi", generation);
    // The arm64-only image is fine there.
    const ok = await deploy(cluster, command("pi", image("arm64")));
    t.is(ok.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, ok.result.message);
  },
);

test.serial(
  "a multi-arch image deploys everywhere; a single-arch one is refused where both kinds of node are",
  async (t) => {
    const { cluster } = t.context;
    await workload(cluster, "mixed", { imagePullSecrets: [{ name: "good" }], ...anywhere });
    const multi = await deploy(cluster, command("mixed", image("multi")));
    t.is(multi.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, multi.result.message);
    const arm = await deploy(cluster, command("mixed", image("arm64")));
    t.is(arm.result.failure?.reason, R.FAILURE_REASON_PLATFORM_MISMATCH, arm.result.message);
    t.regex(arm.result.message, /has linux\/arm64 only; the pods can land on linux\/amd64 node kwok-node-0/);
  },
);

test.serial("registry down: lenient warns and deploys, strict fails fast; both quickly", async (t) => {
  const { cluster } = t.context;
  await workload(cluster, "down");
  const port = await freePort();
  const unreachable = `127.0.0.1:${port}/${repo}:2`;
  const generation = await generationOf(cluster, "down");
  const down = (img: string, over: Partial<DeployCommand> = {}) =>
    command("down", img, { containers: ["app"], ...over });
  const strict = await deploy(cluster, down(unreachable), { mode: "strict" });
  t.is(strict.result.failure?.reason, R.FAILURE_REASON_REGISTRY_UNREACHABLE, strict.result.message);
  t.regex(strict.result.message, /ECONNREFUSED/);
  t.true(strict.ms < 3000, `took ${strict.ms} ms`);
  await untouched(t, cluster, "down", generation);

  const lenient = await deploy(cluster, down(unreachable));
  t.is(lenient.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, lenient.result.message);
  t.is(lenient.result.resolvedDigest, "");
  t.true(lenient.progress.some((p) => /^warning: image pre-flight: .*cannot reach/.test(p.message)));

  // A host that does not resolve (the other suites' registry.example images) is just as quick.
  const unresolvable = await deploy(cluster, down("registry.example/acme/web:9"));
  t.is(unresolvable.result.state, S.DEPLOYMENT_STATE_SUCCEEDED, unresolvable.result.message);
  t.true(unresolvable.ms < 5000, `took ${unresolvable.ms} ms`);
  // Pinning needs the registry.
  const pin = await deploy(cluster, down(unreachable, { pinDigest: true }));
  t.is(pin.result.failure?.reason, R.FAILURE_REASON_REGISTRY_UNREACHABLE);
});

test.serial("TLS: without the registry's CA the registry counts as unreachable, with a hint", async (t) => {
  const { cluster } = t.context;
  await workload(cluster, "noca", { imagePullSecrets: [{ name: "good" }] });
  const progress: Progress[] = [];
  const result = await createDeployExecutor(cluster.kc, { preflight: { mode: "strict" } })(
    command("noca", image("multi")),
    (p) => progress.push(p),
  );
  allMessages.push(result.message);
  t.is(result.failure?.reason, R.FAILURE_REASON_REGISTRY_UNREACHABLE, result.message);
  t.regex(result.message, /K8SDEPLOY_REGISTRY_CA_FILE/);
});

test.serial("no message of this file contains a registry password", (t) => {
  t.true(allMessages.length > 20);
  for (const secret of [
    registry.password,
    WRONG_PASSWORD,
    Buffer.from(`${registry.user}:${registry.password}`).toString("base64"),
  ]) {
    t.false(
      allMessages.some((m) => m.includes(secret)),
      "a password leaked into a message",
    );
  }
});
