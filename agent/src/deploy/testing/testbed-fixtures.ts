// Fixtures for the integration tests (deploy/, describe/) against the test bed's real
// kube-apiserver + controllers + kwok. Not used by the agent itself.
import { randomBytes } from "node:crypto";
import { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Container,
  type V1DaemonSet,
  type V1Deployment,
  type V1StatefulSet,
} from "@kubernetes/client-node";
import anyTest, { type TestFn } from "ava";
import { followRollout } from "../rollout.js";
import { getWorkload, type WorkloadObject } from "../workload.js";

export const TESTBED_HINT =
  'start the test bed with `npm run testbed -- up`, then `eval "$(npm run --silent testbed -- env)"` before running the integration tests';

/** The test bed's admin KubeConfig; throws (failing the test) when KUBECONFIG is not set. */
export function testKubeConfig(): KubeConfig {
  if (!process.env.KUBECONFIG) throw new Error(`KUBECONFIG is not set: ${TESTBED_HINT}`);
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** The limited user's KubeConfig (may get/list/watch deployments in "default" only). */
export function limitedKubeConfig(): KubeConfig {
  const file = process.env.K8SDEPLOY_TESTBED_LIMITED_KUBECONFIG;
  if (!file) throw new Error(`K8SDEPLOY_TESTBED_LIMITED_KUBECONFIG is not set: ${TESTBED_HINT}`);
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

export class Cluster {
  readonly apps: AppsV1Api;
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
  private readonly namespaces: string[] = [];

  constructor(readonly kc: KubeConfig) {
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  }

  /** Creates `k8sd-<prefix>-<random>`; deleted by cleanup(). */
  async namespace(prefix: string): Promise<string> {
    const name = `k8sd-${prefix}-${randomBytes(3).toString("hex")}`.slice(0, 63);
    await this.core.createNamespace({ body: { metadata: { name, labels: { "k8sdeploy.dev/test": "true" } } } });
    this.namespaces.push(name);
    return name;
  }

  async cleanup(): Promise<void> {
    await Promise.all(
      this.namespaces.splice(0).map((name) => this.core.deleteNamespace({ name }).catch(() => undefined)),
    );
  }

  /** Lets the test bed's limited user get/list/watch deployments in `namespace` (but not patch). */
  async allowLimitedRead(namespace: string): Promise<void> {
    await this.rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: "limited-read" },
        rules: [{ apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "watch"] }],
      },
    });
    await this.rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: "limited-read" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "limited-read" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "k8sdeploy-limited" }],
      },
    });
  }

  async deployment(namespace: string, name: string, spec: WorkloadSpec): Promise<V1Deployment> {
    const body: V1Deployment = {
      metadata: { name, namespace },
      spec: {
        replicas: spec.replicas ?? 2,
        selector: { matchLabels: { app: name } },
        template: template(name, spec),
      },
    };
    if (spec.minReadySeconds !== undefined) body.spec!.minReadySeconds = spec.minReadySeconds;
    if (spec.progressDeadlineSeconds !== undefined) body.spec!.progressDeadlineSeconds = spec.progressDeadlineSeconds;
    return this.apps.createNamespacedDeployment({ namespace, body });
  }

  async statefulSet(namespace: string, name: string, spec: WorkloadSpec): Promise<V1StatefulSet> {
    return this.apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name, namespace },
        spec: {
          replicas: spec.replicas ?? 2,
          serviceName: name,
          podManagementPolicy: spec.podManagementPolicy ?? "Parallel",
          selector: { matchLabels: { app: name } },
          template: template(name, spec),
        },
      },
    });
  }

  async daemonSet(namespace: string, name: string, spec: WorkloadSpec): Promise<V1DaemonSet> {
    return this.apps.createNamespacedDaemonSet({
      namespace,
      body: {
        metadata: { name, namespace },
        spec: { selector: { matchLabels: { app: name } }, template: template(name, spec) },
      },
    });
  }

  /** Waits (with the agent's own watch-based follower) until the workload's rollout is complete. */
  async ready(kind: WorkloadKind, namespace: string, name: string, seconds = 60): Promise<WorkloadObject> {
    const obj = await getWorkload(this.apps, kind, namespace, name);
    const outcome = await followRollout({
      kc: this.kc,
      kind,
      namespace,
      name,
      selector: obj.spec?.selector,
      deadline: Date.now() + seconds * 1000,
      timeoutSeconds: seconds,
    });
    if (outcome.result !== "succeeded") throw new Error(`${name} did not become ready: ${outcome.failure.message}`);
    return getWorkload(this.apps, kind, namespace, name);
  }

  get(kind: WorkloadKind, namespace: string, name: string): Promise<WorkloadObject> {
    return getWorkload(this.apps, kind, namespace, name);
  }
}

export interface WorkloadSpec {
  containers: Array<Pick<V1Container, "name" | "image">>;
  initContainers?: Array<Pick<V1Container, "name" | "image">>;
  replicas?: number;
  nodeSelector?: Record<string, string>;
  minReadySeconds?: number;
  progressDeadlineSeconds?: number;
  /** StatefulSets: default Parallel (faster); OrderedReady is Kubernetes' default. */
  podManagementPolicy?: "Parallel" | "OrderedReady";
}

function template(name: string, spec: WorkloadSpec) {
  return {
    metadata: { labels: { app: name } },
    spec: {
      containers: spec.containers.map((c) => ({ ...c })),
      ...(spec.initContainers ? { initContainers: spec.initContainers.map((c) => ({ ...c })) } : {}),
      ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
      terminationGracePeriodSeconds: 0,
    },
  };
}

/** Test set-up only (the agent itself never polls): re-checks `check` every 200 ms. */
export async function eventually<T>(what: string, seconds: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const DEPLOYMENT = WorkloadKind.WORKLOAD_KIND_DEPLOYMENT;
export const STATEFUL_SET = WorkloadKind.WORKLOAD_KIND_STATEFUL_SET;
export const DAEMON_SET = WorkloadKind.WORKLOAD_KIND_DAEMON_SET;

/** Images of a workload's containers and init containers by name. */
export function imagesOf(obj: WorkloadObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of [
    ...(obj.spec?.template?.spec?.containers ?? []),
    ...(obj.spec?.template?.spec?.initContainers ?? []),
  ]) {
    out[c.name] = c.image ?? "";
  }
  return out;
}

export function deploymentId(): string {
  return `dep_${randomBytes(8).toString("hex")}`;
}

/**
 * ava's `test`, typed with a `cluster` context that is created before the file's tests (failing
 * every test when the test bed is not set up) and cleaned up after them.
 */
export function clusterTest(): TestFn<{ cluster: Cluster }> {
  const test = anyTest as TestFn<{ cluster: Cluster }>;
  test.before((t) => {
    t.context.cluster = new Cluster(testKubeConfig());
  });
  test.after.always(async (t) => {
    await t.context.cluster?.cleanup();
  });
  return test;
}
