// The orchestrator as a user installs it: the README's install block (base + redis component,
// admin token and TLS from Secrets) applied to the test bed, server-side dry-run first; then the
// pulled orchestrator image run as TWO of that Deployment's pods (kubelet emulation), sharing the
// test bed's Redis: an agent connects to one over TLS, the bundled action deploys through the
// other, and the dashboard they serve works in Chromium. The ingress example passes a server-side
// dry-run; the Gateway API and cert-manager examples (CRDs the test bed lacks) are checked
// against the base's names.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { loadAllYaml } from "@kubernetes/client-node";
import test from "ava";
import type { Browser } from "playwright-core";
import { runBundledAction } from "./support/action.js";
import { browserPreflight, launchChromium, openPage } from "./support/browser.js";
import { githubEnv, node24 } from "./support/e2e.js";
import { type ImageProcess, pullImage, testImageReference } from "./support/images.js";
import {
  createDeployment,
  createNamespace,
  deleteNamespace,
  deploymentImages,
  kube,
  kubeconfigPath,
  waitFor,
} from "./support/kube.js";
import { type PodRun, podRunFor, probe, runAsPod } from "./support/kubelet.js";
import { cliPath } from "./support/orchestrator.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Proc, startProcess } from "./support/processes.js";
import { insertAfter, readmeBlock, withServerDryRun } from "./support/readme.js";
import { testRegistry } from "./support/registry.js";
import { agentBundle } from "./support/stack.js";
import { grpcurl, repoRoot, run, selfSignedCert, tempDir } from "./support/tools.js";

const KUSTOMIZE_URL = "https://github.com/k8sdeploy/k8sdeploy//orchestrator/deploy/kustomize";
const EXAMPLES = path.join(repoRoot, "orchestrator/deploy/kustomize/examples");
const ns = `k8sd-orch-${randomBytes(3).toString("hex")}`;
const pv = `${ns}-redis`;

let work: string;
let imageRef: string;
let cert: { cert: string; key: string };
let adminToken: string;
let target: string | undefined;
let browser: Browser | undefined;
const replicas: { proc: ImageProcess; pod: PodRun; grpc: string; http: string }[] = [];
const agents: Proc[] = [];
const footprint: Record<string, unknown> = {};

async function sh(script: string) {
  const r = await run("bash", ["-c", `set -euo pipefail\n${script}`], { cwd: work, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`script failed (${r.code}):\n${script}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function cli(args: string[], replica = 0) {
  return run(process.execPath, [cliPath, ...args], {
    env: {
      ...process.env,
      K8SDEPLOY_SERVER: `https://${replicas[replica]?.grpc}`,
      K8SDEPLOY_CA_FILE: cert.cert,
      K8SDEPLOY_ADMIN_TOKEN: adminToken,
    },
  });
}

function memoryMiB(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
}

const statusKiB = (pid: number, field: string) =>
  readFile(`/proc/${pid}/status`, "utf8").then((s) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(s)?.[1]));

test.before(async () => {
  agentBundleCheck();
  browserPreflight();
  if (!process.env.K8SDEPLOY_REDIS_URL) throw new Error("K8SDEPLOY_REDIS_URL is not set: run the test bed's env");
  work = await tempDir("k8sd-install-orch-");
  cert = await selfSignedCert(work, { name: "tls" });
  imageRef = await testImageReference("orchestrator");
});

test.after.always(async () => {
  await browser?.close().catch(() => {});
  await Promise.all(agents.map((a) => a.kill("SIGKILL")));
  await Promise.all(replicas.map((r) => r.proc.stop(5000).catch(() => {})));
  if (target) await deleteNamespace(target);
  await run("kubectl", ["delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
  await run("kubectl", ["delete", "pv", pv, "--ignore-not-found"]);
  if (Object.keys(footprint).length > 0) {
    await mkdir(path.join(repoRoot, "test-output"), { recursive: true });
    await writeFile(
      path.join(repoRoot, "test-output", "orchestrator-footprint.json"),
      `${JSON.stringify(footprint, null, 2)}\n`,
    );
  }
});

test.serial("the README's install applies the base with Redis (server-side dry-run, then real)", async (t) => {
  t.timeout(180_000);
  const reg = testRegistry();
  const digest = imageRef.slice(imageRef.indexOf("@") + 1);
  const overlay = path.join(work, "k8sdeploy-orchestrator");
  const local = path.relative(overlay, path.join(repoRoot, "orchestrator/deploy/kustomize"));
  // Test-only changes, named: a namespace of its own (the overlay's `namespace:`), the image
  // from the test registry, and a PersistentVolume for the Redis claim (the test bed has no
  // storage provisioner).
  let script = readmeBlock("orchestrator")
    .replaceAll("-n k8sdeploy ", `-n ${ns} `)
    .replace("kubectl create namespace k8sdeploy", `kubectl create namespace ${ns}`)
    .replaceAll(KUSTOMIZE_URL, local)
    .replace(/\?ref=v[0-9][^\s]*/g, "")
    .replace("--cert=tls.crt --key=tls.key", `--cert=${cert.cert} --key=${cert.key}`);
  script = insertAfter(script, "EOF", [
    "cat >> k8sdeploy-orchestrator/kustomization.yaml <<'TEST'",
    `namespace: ${ns}`,
    "images:",
    "  - name: ghcr.io/k8sdeploy/orchestrator",
    `    newName: ${reg.host}/k8sdeploy/orchestrator`,
    `    digest: ${digest}`,
    "TEST",
    "kubectl apply -f - <<'TEST'",
    JSON.stringify({
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: pv },
      spec: {
        capacity: { storage: "1Gi" },
        accessModes: ["ReadWriteOnce"],
        hostPath: { path: path.join(work, "redis-pv") },
        claimRef: { namespace: ns, name: "data-k8sdeploy-redis-0" },
      },
    }),
    "TEST",
  ]);
  script = withServerDryRun(script, "KUBECTL_APPLYSET=true kubectl apply");
  const r = await sh(script);
  t.regex(r.stdout, /deployment\.apps\/k8sdeploy-orchestrator serverside-applied \(server dry run\)/);
  t.regex(r.stdout, /deployment\.apps\/k8sdeploy-orchestrator serverside-applied\n/);

  const { apps, core, kc } = kube();
  await waitFor(async () => {
    const d = await apps.readNamespacedDeployment({ name: "k8sdeploy-orchestrator", namespace: ns });
    return d.status?.availableReplicas === 2;
  }, "2 orchestrator replicas available (kwok)");
  await waitFor(async () => {
    const s = await apps.readNamespacedStatefulSet({ name: "k8sdeploy-redis", namespace: ns });
    return s.status?.readyReplicas === 1;
  }, "Redis ready (its claim bound)");
  const pvc = await core.readNamespacedPersistentVolumeClaim({ name: "data-k8sdeploy-redis-0", namespace: ns });
  t.is(pvc.status?.phase, "Bound");
  const d = await apps.readNamespacedDeployment({ name: "k8sdeploy-orchestrator", namespace: ns });
  t.is(d.spec?.template.spec?.containers[0]?.image, imageRef);
  const grpcSvc = await core.readNamespacedService({ name: "k8sdeploy-orchestrator-grpc", namespace: ns });
  t.deepEqual(
    grpcSvc.spec?.ports?.map((p) => [p.port, p.targetPort]),
    [[50051, "grpc"]],
  );
  const httpSvc = await core.readNamespacedService({ name: "k8sdeploy-orchestrator-http", namespace: ns });
  t.deepEqual(
    httpSvc.spec?.ports?.map((p) => [p.port, p.targetPort]),
    [[80, "http"]],
  );
  const policy = kc.makeApiClient((await import("@kubernetes/client-node")).PolicyV1Api);
  const pdb = await policy.readNamespacedPodDisruptionBudget({ name: "k8sdeploy-orchestrator", namespace: ns });
  t.is(pdb.spec?.minAvailable, 1);
  const secret = await core.readNamespacedSecret({ name: "k8sdeploy-orchestrator", namespace: ns });
  adminToken = Buffer.from(secret.data?.["admin-token"] ?? "", "base64").toString("utf8");
  t.regex(adminToken, /^[0-9a-f]{64}$/);
});

test.serial("two replicas from the pulled image serve an agent over TLS, the action and the dashboard", async (t) => {
  t.timeout(300_000);
  const image = await pullImage(imageRef, "linux/amd64");
  t.is(image.config.config.User, "65532:65532");
  for (const podIndex of [0, 1]) {
    const pod = await podRunFor(ns, "k8sdeploy-orchestrator", "orchestrator", {
      podIndex,
      listenEnv: { K8SDEPLOY_GRPC_LISTEN: "grpc", K8SDEPLOY_HTTP_LISTEN: "http" },
      // Cluster DNS (k8sdeploy-redis) does not resolve here: the test bed's redis-server instead.
      envOverrides: { K8SDEPLOY_REDIS_URL: process.env.K8SDEPLOY_REDIS_URL ?? "" },
    });
    const proc = await runAsPod(image, pod);
    replicas.push({
      proc,
      pod,
      grpc: pod.env.K8SDEPLOY_GRPC_LISTEN ?? "",
      http: pod.env.K8SDEPLOY_HTTP_LISTEN ?? "",
    });
  }
  for (const r of replicas) {
    await waitFor(async () => (await probe(r.pod.probes.startup)) === 200, "the startup probe", 60_000);
    t.is(await probe(r.pod.probes.readiness), 200);
    t.is(await probe(r.pod.probes.liveness), 200);
    // gRPC health and reflection over TLS, with the certificate from the Secret.
    const health = await grpcurl(["-cacert", cert.cert, "-d", '{"service":""}', r.grpc, "grpc.health.v1.Health/Check"]);
    t.regex(health.stdout, /SERVING/, health.stderr);
    const list = await grpcurl(["-cacert", cert.cert, r.grpc, "list"]);
    t.regex(list.stdout, /k8sdeploy\.v1\.AgentService/);
  }
  const [a, b] = replicas;
  if (!a || !b) throw new Error("two replicas expected");

  // Register an agent with the admin CLI (TLS, the token from the Secret) and connect it to A.
  const created = await cli(["agent", "create", "--name", "from-image", "--json"]);
  t.is(created.code, 0, created.stderr);
  const agent = JSON.parse(created.stdout) as { id: string; token: string };
  target = await createNamespace("orch-image");
  const keyOut = await cli(["key", "create", "--agent", agent.id, "--namespace", target, "--json"]);
  const { key } = JSON.parse(keyOut.stdout) as { key: string };
  agents.push(
    startProcess(process.execPath, [agentBundle], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG: kubeconfigPath(),
      K8SDEPLOY_SERVER: `https://${a.grpc}`,
      K8SDEPLOY_CA_FILE: cert.cert,
      K8SDEPLOY_AGENT_TOKEN: agent.token,
      POD_NAMESPACE: "k8sdeploy",
    }),
  );
  await waitFor(async () => {
    const list = await cli(["agent", "list", "--json"], 1);
    const agents = JSON.parse(list.stdout) as { id: string; connectionState: string; replicaId: string }[];
    const mine = (Array.isArray(agents) ? agents : (agents as { agents: typeof agents }).agents).find(
      (x) => x.id === agent.id,
    );
    return mine?.connectionState === "CONNECTION_STATE_CONNECTED" && mine.replicaId === a.pod.pod.metadata?.name;
  }, "the agent to connect to replica A (replica id = pod name)");

  // Deploy through replica B with the action (TLS with ca-file).
  await createDeployment(target, "web", [{ name: "web", image: "registry.example/acme/web:1" }]);
  const result = await runBundledAction({
    inputs: {
      server: `https://${b.grpc}`,
      "ca-file": cert.cert,
      key,
      namespace: target,
      deployment: "web",
      image: "registry.example/acme/web:2",
      timeout: "120",
    },
    env: githubEnv("4001"),
    node: node24(),
    timeoutMs: 200_000,
  });
  t.is(
    result.outputs.status,
    "succeeded",
    `${result.stdout}\n${a.proc.output().slice(-2000)}\n${b.proc.output().slice(-2000)}`,
  );
  t.deepEqual(await deploymentImages(target, "web"), { web: "registry.example/acme/web:2" });

  // The dashboard from replica B's HTTP port: signed in with the admin token, the agent connected.
  browser = await launchChromium();
  const { context, page, problems } = await openPage(browser, { adminToken });
  try {
    await page.goto(`http://${b.http}/agents`);
    await page.locator(`tr[data-agent-id="${agent.id}"][data-connection=connected]`).waitFor({ timeout: 60_000 });
    const version = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")).version as string;
    t.is((await page.locator("[data-testid=version]").textContent())?.trim(), `K8sDeploy v${version}`);
    await page.goto(`http://${b.http}/deployments`);
    await page.locator("text=registry.example/acme/web").first().waitFor({ timeout: 30_000 });
    t.deepEqual(problems, []);
  } finally {
    await context.close();
  }

  for (const [i, r] of replicas.entries()) {
    const pid = await r.proc.pid1();
    footprint[`replica${i}`] = {
      rssMiB: Math.round((await statusKiB(pid, "VmRSS")) / 102.4) / 10,
      peakRssMiB: Math.round((await statusKiB(pid, "VmHWM")) / 102.4) / 10,
    };
  }
  const resources = a.pod.container.resources ?? {};
  const peak = Math.max(...Object.values(footprint).map((f) => (f as { peakRssMiB: number }).peakRssMiB));
  const rss = Math.max(...Object.values(footprint).map((f) => (f as { rssMiB: number }).rssMiB));
  footprint.requestsMemory = resources.requests?.memory;
  footprint.limitsMemory = resources.limits?.memory;
  t.log(`orchestrator footprint: ${JSON.stringify(footprint)}`);
  t.true(memoryMiB(String(resources.requests?.memory)) >= rss, "the memory request covers the RSS");
  t.true(memoryMiB(String(resources.limits?.memory)) >= 1.5 * peak, "the limit leaves 50 % above the peak");

  // SIGTERM: /readyz turns 503 while draining, then a clean exit.
  for (const r of replicas) t.is(await r.proc.stop(), 0);
});

test.serial("the arm64 orchestrator image serves under qemu", async (t) => {
  t.timeout(180_000);
  const image = await pullImage(imageRef, "linux/arm64");
  t.is(image.config.architecture, "arm64");
  const pod = await podRunFor(ns, "k8sdeploy-orchestrator", "orchestrator", {
    listenEnv: { K8SDEPLOY_GRPC_LISTEN: "grpc", K8SDEPLOY_HTTP_LISTEN: "http" },
    envOverrides: { K8SDEPLOY_REDIS_URL: process.env.K8SDEPLOY_REDIS_URL ?? "" },
  });
  const proc = await runAsPod(image, pod);
  try {
    await waitFor(async () => (await probe(pod.probes.readiness)) === 200, "/readyz under qemu", 120_000);
    const health = await grpcurl([
      ...["-cacert", cert.cert, "-d", '{"service":""}'],
      pod.env.K8SDEPLOY_GRPC_LISTEN ?? "",
      "grpc.health.v1.Health/Check",
    ]);
    t.regex(health.stdout, /SERVING/, health.stderr);
    const index = await fetch(`http://${pod.env.K8SDEPLOY_HTTP_LISTEN}/`);
    t.regex(await index.text(), /<div id=/);
  } finally {
    t.is(await proc.stop(), 0);
  }
});

test("the ingress example passes a server-side dry-run; the Gateway API and cert-manager examples name the base's objects", async (t) => {
  await run("kubectl", ["create", "namespace", ns]).catch(() => {});
  const ingress = (await readFile(path.join(EXAMPLES, "ingress-nginx", "ingress.yaml"), "utf8")).replaceAll(
    "namespace: k8sdeploy",
    `namespace: ${ns}`,
  );
  const dry = await run("kubectl", ["apply", "--server-side", "--dry-run=server", "-f", "-"], { input: ingress });
  t.is(dry.code, 0, dry.stderr);
  t.regex(
    dry.stdout,
    /ingress\.networking\.k8s\.io\/k8sdeploy-orchestrator-grpc serverside-applied \(server dry run\)/,
  );
  const objs = loadAllYaml(ingress).map((o) => JSON.parse(JSON.stringify(o)));
  t.is(objs[0].metadata.annotations["nginx.ingress.kubernetes.io/backend-protocol"], "GRPCS");
  t.is(objs[0].spec.rules[0].http.paths[0].backend.service.name, "k8sdeploy-orchestrator-grpc");

  const gw = loadAllYaml(await readFile(path.join(EXAMPLES, "gateway-api", "gateway.yaml"), "utf8")).map((o) =>
    JSON.parse(JSON.stringify(o)),
  );
  const route = gw.find((o) => o.kind === "GRPCRoute");
  t.is(route.apiVersion, "gateway.networking.k8s.io/v1");
  t.deepEqual(route.spec.rules[0].backendRefs[0], { name: "k8sdeploy-orchestrator-grpc", port: 50051 });
  const certificate = JSON.parse(
    JSON.stringify(loadAllYaml(await readFile(path.join(EXAMPLES, "cert-manager", "certificate.yaml"), "utf8"))[0]),
  );
  t.is(certificate.spec.secretName, "k8sdeploy-orchestrator-tls", "the Secret the base mounts");
});
