// Deployments, StatefulSets and DaemonSets of a namespace with their containers, images, replica
// counts and last K8sDeploy deployment id; sorted by kind, then name.

import { validateDns1123Label } from "@k8sdeploy/proto/contract/names.js";
import type { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { FailureReason, type Workload } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { AppsV1Api } from "@kubernetes/client-node";
import { ANNOTATION_DEPLOYMENT_ID } from "../deploy/annotations.js";
import { rolloutStatus } from "../deploy/progress.js";
import { podContainers } from "../deploy/select-containers.js";
import { listWorkloads, WORKLOAD_KINDS, type WorkloadObject } from "../deploy/workload.js";
import { ExecutorError } from "../executor.js";
import { toExecutorError } from "../kube.js";
import { toDate } from "./namespaces.js";

/** Throws ExecutorError: INVALID_COMMAND for a bad namespace name, PERMISSION_DENIED, KUBERNETES_API. */
export async function describeWorkloads(apps: AppsV1Api, namespace: string): Promise<Workload[]> {
  const problem = validateDns1123Label(namespace, "namespace");
  if (problem) throw new ExecutorError(FailureReason.FAILURE_REASON_INVALID_COMMAND, problem);
  const lists = await Promise.all(
    WORKLOAD_KINDS.map(async (k) => {
      try {
        return (await listWorkloads(apps, k.kind, namespace)).map((obj) => toWorkload(k.kind, namespace, obj));
      } catch (err) {
        throw toExecutorError(err, { verb: "list", resource: k.resource, namespace });
      }
    }),
  );
  // WORKLOAD_KINDS is in kind order (Deployment, StatefulSet, DaemonSet).
  return lists.flatMap((l) => l.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
}

export function toWorkload(kind: WorkloadKind, namespace: string, obj: WorkloadObject): Workload {
  const w: Workload = {
    kind,
    name: obj.metadata?.name ?? "",
    namespace: obj.metadata?.namespace ?? namespace,
    containers: podContainers(obj.spec?.template?.spec),
    replicas: rolloutStatus(kind, obj).replicas,
    lastDeploymentId: obj.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID] ?? "",
  };
  const created = toDate(obj.metadata?.creationTimestamp);
  if (created) w.createdAt = created;
  return w;
}
