// The agent as a user installs it: the README's install block run against the test bed (with the
// base pinned to the image `npm run images` pushed to the test registry), then the pulled image
// run as that pod's container would be run by the kubelet (test/support/kubelet.ts), amd64 under
// chroot/unshare and arm64 under qemu, deploying for real through the bundled action. Then the
// install's promises: probes backed by real state, a self-update that a re-apply does not
// silently revert (server-side apply conflict), overlay switches that leave no stale RBAC
// (ApplySet prune), and resources that fit the measured footprint.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import test from "ava";
import { runBundledAction } from "./support/action.js";
import { agentInfo, githubEnv, node24, waitConnected } from "./support/e2e.js";
import { type ImageProcess, pullImage, testImageReference, type UnpackedImage } from "./support/images.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages, kube, waitFor } from "./support/kube.js";
import { type PodRun, podRunFor, probe, runAsPod } from "./support/kubelet.js";
import { agentBundleCheck } from "./support/preflight.js";
import { insertAfter, readmeBlock, withServerDryRun } from "./support/readme.js";
import { craneOk, testRegistry } from "./support/registry.js";
import { type Stack, startStack } from "./support/stack.js";
import { grpcurl, repoRoot, run, tempDir } from "./support/tools.js";

const NS = "k8sdeploy";
const KUSTOMIZE_URL = "https://github.com/k8sdeploy/k8sdeploy//agent/deploy/kustomize";
const APPLY = "KUBECTL_APPLYSET=true kubectl apply --server-side";
const external = process.env.K8SDEPLOY_TESTBED_KIND === "external";

let stack: Stack;
let imageRef: string;
let agent: { id: string; token: string };
let key: string;
let target: string;
let work: string;
let overlay: string;
const running: ImageProcess[] = [];

const footprint: Record<string, unknown> = {};

async function sh(script: string, options: { allowFailure?: boolean } = {}) {
  const r = await run("bash", ["-c", `set -euo pipefail\n${script}`], {
    cwd: work,
    env: { ...process.env, KUBECTL_APPLYSET: "true" },
    timeoutMs: 120_000,
  });
  if (r.code !== 0 && !options.allowFailure)
    throw new Error(`script failed (${r.code}):\n${script}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The README's apply line (the same for every re-apply). */
function applyLine(): string {
  const line = readmeBlock("agent")
    .split("\n")
    .find((l) => l.startsWith(APPLY));
  if (!line) throw new Error("the README's agent block has no apply line");
  return line;
}

/** Writes the overlay's kustomization with these components (paths in the repository). */
async function setComponents(components: string[]) {
  const file = path.join(overlay, "kustomization.yaml");
  let text = await readFile(file, "utf8");
  text = text.replace(/components:\n(?: {2}- .*\n)*/, "");
  if (components.length > 0) {
    const rel = components.map(
      (c) => `  - ${path.relative(overlay, path.join(repoRoot, "agent/deploy/kustomize", c))}`,
    );
    text = text.replace("configMapGenerator:", `components:\n${rel.join("\n")}\nconfigMapGenerator:`);
  }
  await writeFile(file, text);
}

async function agentImage(): Promise<string | undefined> {
  const d = await kube().apps.readNamespacedDeployment({ name: "k8sdeploy-agent", namespace: NS });
  return d.spec?.template.spec?.containers.find((c) => c.name === "agent")?.image;
}

async function exists(kind: string, name: string, namespace?: string): Promise<boolean> {
  const r = await run("kubectl", ["get", kind, name, ...(namespace ? ["-n", namespace] : []), "-o", "name"]);
  return r.code === 0;
}

async function cleanInstall() {
  await run("kubectl", ["delete", "namespace", NS, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
  await run("kubectl", [
    ...["delete", "clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/name=k8sdeploy-agent"],
    "--ignore-not-found",
  ]);
}

/** Starts the agent image as the current pod of the installed Deployment. */
async function startAgentPod(image: UnpackedImage): Promise<{ proc: ImageProcess; pod: PodRun }> {
  const pod = await podRunFor(NS, "k8sdeploy-agent", "agent", { listenEnv: { K8SDEPLOY_HEALTH_LISTEN: "health" } });
  const proc = await runAsPod(image, pod);
  running.push(proc);
  return { proc, pod };
}

function deploy(deployment: string, image: string, namespace = target, run = "3001") {
  const replica = stack.replicas[0];
  if (!replica) throw new Error("no replica");
  return runBundledAction({
    inputs: { server: `http://${replica.grpcAddress}`, key, namespace, deployment, image, timeout: "120" },
    env: githubEnv(run),
    node: node24(),
    timeoutMs: 200_000,
  });
}

function memoryMiB(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
}

function procStatusKiB(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  return readFile(`/proc/${pid}/status`, "utf8").then((s) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(s)?.[1]),
  );
}

test.before(async () => {
  agentBundleCheck();
  if (external) {
    const ns = await run("kubectl", ["get", "namespace", NS, "-o", "name"]);
    if (ns.code === 0)
      throw new Error(
        `namespace ${NS} exists in the external cluster: this test installs the agent there; use a scratch cluster`,
      );
  }
  await cleanInstall();
  imageRef = await testImageReference("agent");
  stack = await startStack({ replicas: 1 });
  agent = await stack.createAgent("installed");
  target = await createNamespace("install-target");
  key = (await stack.createKey(agent.id)).key;
  work = await tempDir("k8sd-install-agent-");
  overlay = path.join(work, "k8sdeploy-agent");
});

test.after.always(async () => {
  await Promise.all(running.map((p) => p.stop(5000).catch(() => {})));
  await stack?.stop();
  if (target) await deleteNamespace(target);
  await cleanInstall();
  if (Object.keys(footprint).length > 0) {
    await mkdir(path.join(repoRoot, "test-output"), { recursive: true });
    await writeFile(
      path.join(repoRoot, "test-output", "agent-footprint.json"),
      `${JSON.stringify(footprint, null, 2)}\n`,
    );
  }
});

test.serial(
  "the README's install applies the base (server-side dry-run, then real) pinned to the image by digest",
  async (t) => {
    t.timeout(180_000);
    const reg = testRegistry();
    const digest = imageRef.slice(imageRef.indexOf("@") + 1);
    const replica = stack.replicas[0];
    if (!replica) throw new Error("no replica");
    const local = path.relative(overlay, path.join(repoRoot, "agent/deploy/kustomize"));
    let script = readmeBlock("agent")
      .replace("kda_xxxxxxxx", agent.token)
      .replace("https://deploy.example.com:443", `http://${replica.grpcAddress}`)
      .replaceAll(KUSTOMIZE_URL, local)
      .replace(/\?ref=v[0-9][^\s]*/g, "")
      .replaceAll("<namespace>", target);
    // Test-only: the image comes from the test registry (same index digest as dist/images).
    script = insertAfter(script, "EOF", [
      "cat >> k8sdeploy-agent/kustomization.yaml <<'TEST'",
      "images:",
      "  - name: ghcr.io/k8sdeploy/agent",
      `    newName: ${reg.host}/k8sdeploy/agent`,
      `    digest: ${digest}`,
      "TEST",
    ]);
    script = withServerDryRun(script, APPLY);
    const r = await sh(script);
    t.regex(r.stdout, /serverside-applied \(server dry run\)/);
    t.regex(r.stdout, /deployment\.apps\/k8sdeploy-agent serverside-applied/);

    t.is(await agentImage(), imageRef, "the Deployment runs the pushed index by digest");
    await waitFor(async () => {
      const d = await kube().apps.readNamespacedDeployment({ name: "k8sdeploy-agent", namespace: NS });
      return d.status?.availableReplicas === 1;
    }, "the agent Deployment to become available (kwok)");
    const parent = await kube().core.readNamespacedSecret({ name: "k8sdeploy-agent-install", namespace: NS });
    t.truthy(parent.metadata?.labels?.["applyset.kubernetes.io/id"], "the ApplySet parent records the install");
    t.true(await exists("rolebinding", "k8sdeploy-agent", target));
    t.false(await exists("clusterrolebinding", "k8sdeploy-agent-deployer"), "deploy rights are not cluster-wide");
  },
);

test.serial(
  "the pulled amd64 image runs as its pod (read-only root, uid 65532, its service account) and deploys through the action",
  async (t) => {
    t.timeout(240_000);
    const image = await pullImage(imageRef, "linux/amd64");
    t.is(image.config.architecture, "amd64");
    t.is(image.config.config.User, "65532:65532");
    const { proc, pod } = await startAgentPod(image);
    await waitConnected(stack, agent.id, undefined, 60_000);
    const info = (await agentInfo(stack, agent.id)) as
      | { arch?: string; version?: string; instance?: string }
      | undefined;
    t.is(info?.arch, "x64");
    t.is(info?.version, JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")).version);
    await waitFor(async () => (await probe(pod.probes.readiness)) === 200, "/readyz 200 once connected", 60_000);
    t.is(await probe(pod.probes.liveness), 200);

    // Idle footprint after the connection settled.
    const pid = await proc.pid1();
    await new Promise((r) => setTimeout(r, 10_000));
    footprint.idleRssMiB = Math.round((await procStatusKiB(pid, "VmRSS")) / 102.4) / 10;

    await createDeployment(target, "web", [{ name: "web", image: "registry.example/acme/web:1" }]);
    const result = await deploy("web", "registry.example/acme/web:2", target, "3001");
    t.is(result.outputs.status, "succeeded", `${result.stdout}\n${proc.output().slice(-3000)}`);
    t.deepEqual(await deploymentImages(target, "web"), { web: "registry.example/acme/web:2" });

    // Least privilege is real: the process holds the ServiceAccount's token, not an admin's.
    const other = await createNamespace("install-unbound");
    try {
      await createDeployment(other, "web", [{ name: "web", image: "registry.example/acme/web:1" }], { replicas: 1 });
      const denied = await deploy("web", "registry.example/acme/web:2", other, "3002");
      t.is(denied.outputs.status, "failed");
      t.regex(denied.outputs.message ?? "", /forbidden|permission|RBAC/i);
      t.deepEqual(await deploymentImages(other, "web"), { web: "registry.example/acme/web:1" });
    } finally {
      await deleteNamespace(other);
    }

    footprint.peakRssMiB = Math.round((await procStatusKiB(pid, "VmHWM")) / 102.4) / 10;
    footprint.measuredWith = "amd64 image, Node 24, after one deploy and one denied deploy (VmHWM)";
    const resources = pod.container.resources ?? {};
    footprint.requestsMemory = resources.requests?.memory;
    footprint.limitsMemory = resources.limits?.memory;
    t.log(`agent footprint: ${JSON.stringify(footprint)}`);
    const request = memoryMiB(String(resources.requests?.memory));
    const limit = memoryMiB(String(resources.limits?.memory));
    t.true(request >= (footprint.idleRssMiB as number), "the memory request covers the idle RSS");
    t.true(limit >= 1.5 * (footprint.peakRssMiB as number), "the limit leaves 50 % above the measured peak");

    t.is(await proc.stop(), 0, "SIGTERM to pid 1: a graceful stop");
  },
);

test.serial("the pulled arm64 image runs under qemu as its pod and deploys through the action", async (t) => {
  t.timeout(300_000);
  const image = await pullImage(imageRef, "linux/arm64");
  t.is(image.config.architecture, "arm64");
  const { proc } = await startAgentPod(image);
  // Connected again, now from the arm64 process (qemu: slower to start).
  await waitFor(
    async () => {
      const info = (await agentInfo(stack, agent.id)) as { arch?: string; connectionState?: string } | undefined;
      return info?.arch === "arm64" && info.connectionState === "CONNECTION_STATE_CONNECTED";
    },
    "the arm64 agent to connect",
    120_000,
  );
  await createDeployment(target, "pi", [{ name: "app", image: "registry.example/acme/pi:1" }]);
  const result = await deploy("pi", "registry.example/acme/pi:2", target, "3003");
  t.is(result.outputs.status, "succeeded", `${result.stdout}\n${proc.output().slice(-3000)}`);
  t.deepEqual(await deploymentImages(target, "pi"), { app: "registry.example/acme/pi:2" });
  t.is(await proc.stop(), 0);
});

test.serial("after a self-update, re-applying the overlay conflicts instead of reverting the image", async (t) => {
  t.timeout(240_000);
  await setComponents(["components/auto-update"]);
  await sh(applyLine());
  // The kwok pod of the new template (auto-update on).
  await waitFor(async () => {
    const pods = await kube().core.listNamespacedPod({
      namespace: NS,
      labelSelector: "app.kubernetes.io/name=k8sdeploy-agent",
    });
    return pods.items.some(
      (p) =>
        p.status?.phase === "Running" &&
        !p.metadata?.deletionTimestamp &&
        p.spec?.containers[0]?.env?.some((e) => e.name === "K8SDEPLOY_AUTO_UPDATE" && e.value === "true"),
    );
  }, "the auto-update pod");
  const image = await pullImage(imageRef, "linux/amd64");
  const { proc } = await startAgentPod(image);
  await waitFor(
    async () =>
      ((await agentInfo(stack, agent.id)) as { autoUpdateEnabled?: boolean } | undefined)?.autoUpdateEnabled === true,
    "the agent to announce auto-update",
  );

  // A "new release": another image in the same repository (here: the amd64 image of the index).
  const reg = testRegistry();
  const amd64 = JSON.parse(await craneOk(["manifest", imageRef])).manifests.find(
    (m: { platform: { architecture: string } }) => m.platform.architecture === "amd64",
  ).digest as string;
  const next = `${reg.host}/k8sdeploy/agent@${amd64}`;
  const replica = stack.replicas[0];
  if (!replica) throw new Error("no replica");
  const update = await grpcurl([
    "-plaintext",
    ...["-H", `authorization: Bearer ${stack.adminToken}`],
    ...["-d", JSON.stringify({ id: agent.id, image: next })],
    replica.grpcAddress,
    "k8sdeploy.v1.AdminService/UpdateAgent",
  ]);
  t.is(update.code, 0, update.stderr);
  await waitFor(async () => (await agentImage()) === next, "the agent to patch its own Deployment", 60_000);
  const d = await kube().apps.readNamespacedDeployment({ name: "k8sdeploy-agent", namespace: NS });
  t.true(
    (d.metadata?.managedFields ?? []).some((f) => f.manager === "k8sdeploy-agent"),
    "the agent is a field manager of its Deployment",
  );

  const reapply = await sh(applyLine(), { allowFailure: true });
  t.not(reapply.code, 0, "re-applying the old pin must not succeed silently");
  t.regex(reapply.stderr, /conflict with "k8sdeploy-agent"/);
  t.regex(reapply.stderr, /containers\[name="agent"\]\.image/);
  t.is(await agentImage(), next, "the self-updated image stays");

  // Taking it back is an explicit choice.
  await sh(`${applyLine()} --force-conflicts`);
  t.is(await agentImage(), imageRef);
  t.is(await proc.stop(), 0);
});

test.serial("switching overlays prunes the RBAC the previous one applied (ApplySet)", async (t) => {
  t.timeout(120_000);
  t.true(await exists("role", "k8sdeploy-agent-self-update", NS), "from the auto-update overlay");
  await setComponents(["components/cluster-wide"]);
  const wide = await sh(applyLine());
  t.regex(wide.stdout, /role\.rbac\.authorization\.k8s\.io\/k8sdeploy-agent-self-update pruned/);
  t.true(await exists("clusterrolebinding", "k8sdeploy-agent-deployer"));
  t.false(await exists("role", "k8sdeploy-agent-self-update", NS));
  t.false(await exists("rolebinding", "k8sdeploy-agent-self-update", NS));

  await setComponents([]);
  const narrow = await sh(applyLine());
  t.regex(narrow.stdout, /clusterrolebinding\.rbac\.authorization\.k8s\.io\/k8sdeploy-agent-deployer pruned/);
  t.false(await exists("clusterrolebinding", "k8sdeploy-agent-deployer"));
  t.true(await exists("deployment", "k8sdeploy-agent", NS), "the rest of the install stays");
  t.true(
    await exists("rolebinding", "k8sdeploy-agent", target),
    "bindings made next to the apps are not the install's",
  );
  t.is(await agentImage(), imageRef);
});

test.serial("readiness follows the orchestrator connection; liveness stays while the agent retries", async (t) => {
  t.timeout(180_000);
  const image = await pullImage(imageRef, "linux/amd64");
  const { proc, pod } = await startAgentPod(image);
  await waitConnected(stack, agent.id, undefined, 60_000);
  await waitFor(async () => (await probe(pod.probes.readiness)) === 200, "/readyz 200", 60_000);
  await stack.replicas[0]?.stop("SIGKILL");
  const lost = Date.now();
  await waitFor(
    async () => (await probe(pod.probes.readiness)) === 503,
    "/readyz 503 after the orchestrator is gone",
    90_000,
  );
  t.log(`/readyz turned 503 ${Date.now() - lost} ms after the orchestrator died (grace 30 s)`);
  t.true(Date.now() - lost >= 25_000, "a short outage does not flap readiness");
  t.is(await probe(pod.probes.liveness), 200, "retrying is alive: no restart for an orchestrator outage");
  t.is(await proc.stop(), 0);
});
