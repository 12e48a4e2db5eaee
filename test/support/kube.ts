// Kubernetes helpers for end-to-end tests, on the test bed's real API server (or the cluster
// that K8SDEPLOY_TEST_KUBECONFIG / KUBECONFIG points at).
import { randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";

export function kubeconfigPath(): string {
  const path = process.env.KUBECONFIG;
  if (!path) {
    throw new Error(
      'KUBECONFIG is not set: run `npm run testbed -- up` and `eval "$(npm run --silent testbed -- env)"`',
    );
  }
  return path;
}

export function kube() {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return { kc, apps: kc.makeApiClient(k8s.AppsV1Api), core: kc.makeApiClient(k8s.CoreV1Api) };
}

export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await kube().core.createNamespace({ body: { metadata: { name } } });
  return name;
}

export async function deleteNamespace(name: string): Promise<void> {
  await kube()
    .core.deleteNamespace({ name })
    .catch(() => {});
}

const labels = (app: string) => ({ app });

function podSpec(
  containers: { name: string; image: string }[],
  initContainers: { name: string; image: string }[] = [],
) {
  return { containers, initContainers: initContainers.length > 0 ? initContainers : undefined };
}

export async function createDeployment(
  namespace: string,
  name: string,
  containers: { name: string; image: string }[],
  options: { replicas?: number; minReadySeconds?: number; initContainers?: { name: string; image: string }[] } = {},
): Promise<void> {
  await kube().apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas: options.replicas ?? 2,
        minReadySeconds: options.minReadySeconds,
        selector: { matchLabels: labels(name) },
        template: { metadata: { labels: labels(name) }, spec: podSpec(containers, options.initContainers) },
      },
    },
  });
  await waitFor(async () => {
    const d = await kube().apps.readNamespacedDeployment({ name, namespace });
    return (d.status?.availableReplicas ?? 0) === (options.replicas ?? 2);
  }, `deployment ${namespace}/${name} to become available`);
}

export async function createStatefulSet(namespace: string, name: string, image: string): Promise<void> {
  await kube().apps.createNamespacedStatefulSet({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas: 2,
        serviceName: name,
        selector: { matchLabels: labels(name) },
        template: { metadata: { labels: labels(name) }, spec: podSpec([{ name: "app", image }]) },
      },
    },
  });
}

export async function createDaemonSet(namespace: string, name: string, image: string): Promise<void> {
  await kube().apps.createNamespacedDaemonSet({
    namespace,
    body: {
      metadata: { name },
      spec: {
        selector: { matchLabels: labels(name) },
        template: { metadata: { labels: labels(name) }, spec: podSpec([{ name: "app", image }]) },
      },
    },
  });
}

export async function deploymentImages(namespace: string, name: string): Promise<Record<string, string>> {
  const d = await kube().apps.readNamespacedDeployment({ name, namespace });
  const spec = d.spec?.template.spec;
  return Object.fromEntries(
    [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c) => [c.name, c.image ?? ""]),
  );
}

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
