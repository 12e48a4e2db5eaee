// What the kubelet would give a container of an applied workload, read from the test bed's API
// server: the pod template's env resolved (value, configMapKeyRef, secretKeyRef, fieldRef against
// the pod kwok created), its volumes (Secrets written out and mounted read-only, emptyDirs, the
// projected service-account token from a real TokenRequest, with the CA and namespace), the
// KUBERNETES_SERVICE_* variables, runAsUser/runAsGroup, args, and its httpGet probes.
//
// Two things differ, on purpose and named: the network is the host's (runImage), so listen
// addresses the manifest gives in env (e.g. K8SDEPLOY_HEALTH_LISTEN=0.0.0.0:8081) are rewritten
// to free 127.0.0.1 ports (`listenEnv`), and probes go to those; cluster DNS names do not resolve
// here, so `envOverrides` may point e.g. a Redis URL at the test bed's redis-server.
import { chmod, chown, mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { type ImageProcess, type Mount, runImage, type UnpackedImage } from "./images.js";
import { kube, waitFor } from "./kube.js";
import { freePort, tempDir } from "./tools.js";

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface PodRun {
  pod: k8s.V1Pod;
  container: k8s.V1Container;
  env: Record<string, string>;
  mounts: Mount[];
  args?: string[];
  user?: { uid: number; gid: number };
  /** Container port name or number → 127.0.0.1 port it listens on here. */
  ports: Map<string | number, number>;
  /** Named probes as URLs on this machine. */
  probes: { readiness?: string; liveness?: string; startup?: string };
  readOnlyRootFilesystem: boolean;
}

export interface PodRunOptions {
  /** Env variables holding a `host:port` listen address for a container port (name or number). */
  listenEnv?: Record<string, string | number>;
  /** Replace these variables after resolving (named in the test). */
  envOverrides?: Record<string, string>;
  /** Which of the Deployment's running pods (by name order), for several replicas. */
  podIndex?: number;
}

async function podOf(namespace: string, deployment: k8s.V1Deployment, index = 0): Promise<k8s.V1Pod> {
  const { core } = kube();
  const selector = Object.entries(deployment.spec?.selector.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  let pod: k8s.V1Pod | undefined;
  await waitFor(async () => {
    const pods = await core.listNamespacedPod({ namespace, labelSelector: selector });
    pod = pods.items
      .filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === "Running")
      .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""))[index];
    return pod !== undefined;
  }, `a running pod of ${namespace}/${deployment.metadata?.name}`);
  return pod as k8s.V1Pod;
}

function fieldValue(pod: k8s.V1Pod, fieldPath: string): string {
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "default";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    default:
      throw new Error(`fieldRef ${fieldPath} is not emulated`);
  }
}

/** Reads a Deployment's pod (as kwok runs it) and prepares what its container would get. */
export async function podRunFor(
  namespace: string,
  deploymentName: string,
  containerName: string,
  options: PodRunOptions = {},
): Promise<PodRun> {
  const { core, apps, kc } = kube();
  const deployment = await apps.readNamespacedDeployment({ name: deploymentName, namespace });
  const pod = await podOf(namespace, deployment, options.podIndex);
  const spec = pod.spec as k8s.V1PodSpec;
  const container = spec.containers.find((c) => c.name === containerName);
  if (!container) throw new Error(`no container ${containerName} in ${namespace}/${deploymentName}`);

  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      const cm = await core.readNamespacedConfigMap({ name: ref.name as string, namespace });
      const v = cm.data?.[ref.key];
      if (v === undefined) throw new Error(`configMapKeyRef ${ref.name}/${ref.key} is missing`);
      env[e.name] = v;
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const s = await core.readNamespacedSecret({ name: ref.name as string, namespace });
      const v = s.data?.[ref.key];
      if (v === undefined) throw new Error(`secretKeyRef ${ref.name}/${ref.key} is missing`);
      env[e.name] = Buffer.from(v, "base64").toString("utf8");
    } else if (e.valueFrom?.fieldRef) {
      env[e.name] = fieldValue(pod, e.valueFrom.fieldRef.fieldPath);
    } else {
      throw new Error(`env ${e.name}: this valueFrom is not emulated`);
    }
  }

  const uid = container.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
  const gid = container.securityContext?.runAsGroup ?? spec.securityContext?.runAsGroup;
  const user = uid !== undefined ? { uid, gid: gid ?? uid } : undefined;

  const mounts: Mount[] = [];
  const volumesDir = await tempDir("k8sd-volumes-");
  // The service-account token the kubelet projects, from a real TokenRequest for the pod's
  // ServiceAccount, so that the process has exactly its RBAC; with the cluster's CA and namespace.
  let saDir: string | undefined;
  const serviceAccountDir = async (): Promise<string> => {
    if (saDir) return saDir;
    const sa = spec.serviceAccountName ?? "default";
    const request = await core.createNamespacedServiceAccountToken({
      name: sa,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const dir = path.join(volumesDir, "serviceaccount");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "token"), request.status?.token ?? "");
    await writeFile(path.join(dir, "namespace"), namespace);
    const caData = kc.getCurrentCluster()?.caData;
    if (!caData) throw new Error("the test kubeconfig has no certificate-authority-data to project as ca.crt");
    await writeFile(path.join(dir, "ca.crt"), Buffer.from(caData, "base64"));
    for (const f of ["token", "namespace", "ca.crt"]) await chmod(path.join(dir, f), 0o644);
    saDir = dir;
    return dir;
  };
  for (const vm of container.volumeMounts ?? []) {
    const volume = spec.volumes?.find((v) => v.name === vm.name);
    if (!volume) throw new Error(`volumeMount ${vm.name} has no volume`);
    const dir = path.join(volumesDir, vm.name);
    await mkdir(dir, { recursive: true });
    if (volume.secret) {
      const s = await core.readNamespacedSecret({ name: volume.secret.secretName as string, namespace });
      for (const [key, value] of Object.entries(s.data ?? {})) {
        await writeFile(path.join(dir, key), Buffer.from(value, "base64"));
        await chmod(path.join(dir, key), volume.secret.defaultMode ?? 0o644);
        if (user) await chown(path.join(dir, key), 0, spec.securityContext?.fsGroup ?? user.gid);
      }
      mounts.push({ source: dir, target: vm.mountPath, readOnly: true });
    } else if (volume.projected?.sources?.some((src) => src.serviceAccountToken)) {
      // The admission-injected kube-api-access-* volume: token, ca.crt, namespace.
      mounts.push({ source: await serviceAccountDir(), target: vm.mountPath, readOnly: true });
    } else if (volume.emptyDir) {
      await chmod(dir, 0o1777);
      mounts.push({ source: dir, target: vm.mountPath, readOnly: false });
    } else {
      throw new Error(`volume ${vm.name}: only secret and emptyDir are emulated`);
    }
  }

  if (spec.automountServiceAccountToken !== false && !mounts.some((m) => m.target === SA_DIR)) {
    mounts.push({ source: await serviceAccountDir(), target: SA_DIR, readOnly: true });
  }
  if (mounts.some((m) => m.target === SA_DIR)) {
    const server = new URL(kc.getCurrentCluster()?.server ?? "");
    env.KUBERNETES_SERVICE_HOST = server.hostname;
    env.KUBERNETES_SERVICE_PORT = server.port || "443";
  }

  const ports = new Map<string | number, number>();
  for (const [name, port] of Object.entries(options.listenEnv ?? {})) {
    const local = await freePort();
    const containerPort = container.ports?.find((p) => p.name === port || p.containerPort === port);
    if (!containerPort) throw new Error(`${name}: container port ${port} is not declared`);
    if (!env[name]?.endsWith(`:${containerPort.containerPort}`)) {
      throw new Error(`${name}=${env[name]} does not listen on the declared port ${containerPort.containerPort}`);
    }
    env[name] = `127.0.0.1:${local}`;
    ports.set(containerPort.containerPort, local);
    if (containerPort.name) ports.set(containerPort.name, local);
  }
  Object.assign(env, options.envOverrides ?? {});

  const probeUrl = (probe: k8s.V1Probe | undefined) => {
    const get = probe?.httpGet;
    if (!get) return undefined;
    const local = ports.get(get.port as string | number);
    if (local === undefined) throw new Error(`probe port ${get.port} is not mapped (listenEnv)`);
    return `http://127.0.0.1:${local}${get.path ?? "/"}`;
  };

  return {
    pod,
    container,
    env,
    mounts,
    args: container.args ?? undefined,
    user,
    ports,
    probes: {
      readiness: probeUrl(container.readinessProbe),
      liveness: probeUrl(container.livenessProbe),
      startup: probeUrl(container.startupProbe),
    },
    readOnlyRootFilesystem: container.securityContext?.readOnlyRootFilesystem === true,
  };
}

/** Runs the unpacked image as this pod's container (runImage with what the kubelet would add). */
export function runAsPod(image: UnpackedImage, run: PodRun): Promise<ImageProcess> {
  if (!run.readOnlyRootFilesystem) throw new Error("the manifest does not ask for readOnlyRootFilesystem");
  if (run.user && (run.user.uid !== image.process.user.uid || run.user.gid !== image.process.user.gid)) {
    // The kubelet would run the image as runAsUser; with this image it must be the same user.
    throw new Error(
      `runAsUser ${run.user.uid}:${run.user.gid} differs from the image user ${image.process.user.uid}:${image.process.user.gid}`,
    );
  }
  return runImage(image, {
    env: run.env,
    mounts: run.mounts,
    args: run.args,
    hostname: run.pod.metadata?.name,
  });
}

/** GET a probe URL: the status code, or 0 when nothing answers. */
export async function probe(url: string | undefined): Promise<number> {
  if (!url) throw new Error("no such probe in the manifest");
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}
