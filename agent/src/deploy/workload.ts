// One get/patch/list/watch-path abstraction over apps/v1 Deployment, StatefulSet and DaemonSet.

import { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import {
  type AppsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1DaemonSet,
  type V1Deployment,
  type V1LabelSelector,
  type V1PodTemplateSpec,
  type V1StatefulSet,
} from "@kubernetes/client-node";
import type { KubeOp } from "../kube.js";

export type WorkloadObject = V1Deployment | V1StatefulSet | V1DaemonSet;

export interface WorkloadKindInfo {
  kind: WorkloadKind;
  /** For messages: `deployment`, `statefulset`, `daemonset`. */
  label: string;
  /** As RBAC names it: `deployments.apps`. */
  resource: string;
  /** URL plural: `deployments`. */
  plural: string;
}

const KINDS: ReadonlyMap<WorkloadKind, WorkloadKindInfo> = new Map([
  [
    WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    {
      kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
      label: "deployment",
      resource: "deployments.apps",
      plural: "deployments",
    },
  ],
  [
    WorkloadKind.WORKLOAD_KIND_STATEFUL_SET,
    {
      kind: WorkloadKind.WORKLOAD_KIND_STATEFUL_SET,
      label: "statefulset",
      resource: "statefulsets.apps",
      plural: "statefulsets",
    },
  ],
  [
    WorkloadKind.WORKLOAD_KIND_DAEMON_SET,
    {
      kind: WorkloadKind.WORKLOAD_KIND_DAEMON_SET,
      label: "daemonset",
      resource: "daemonsets.apps",
      plural: "daemonsets",
    },
  ],
]);

export const WORKLOAD_KINDS: readonly WorkloadKindInfo[] = [...KINDS.values()];

/** The kind's names, or undefined for UNSPECIFIED / unknown values. */
export function kindInfo(kind: WorkloadKind): WorkloadKindInfo | undefined {
  return KINDS.get(kind);
}

function info(kind: WorkloadKind): WorkloadKindInfo {
  const i = KINDS.get(kind);
  if (!i) throw new Error(`unsupported workload kind ${kind}`);
  return i;
}

/** The KubeOp of an operation on a workload, for error messages. */
export function workloadOp(kind: WorkloadKind, verb: string, namespace: string, name?: string): KubeOp {
  const i = info(kind);
  const op: KubeOp = { verb, resource: i.resource, kind: i.label, namespace };
  if (name !== undefined) op.name = name;
  return op;
}

/** `deployment "web"` */
export function workloadLabel(kind: WorkloadKind, name: string): string {
  return `${info(kind).label} "${name}"`;
}

/** Collection path for watches: `/apis/apps/v1/namespaces/<ns>/deployments`. */
export function workloadPath(kind: WorkloadKind, namespace: string): string {
  return `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${info(kind).plural}`;
}

export function getWorkload(
  apps: AppsV1Api,
  kind: WorkloadKind,
  namespace: string,
  name: string,
): Promise<WorkloadObject> {
  switch (kind) {
    case WorkloadKind.WORKLOAD_KIND_DEPLOYMENT:
      return apps.readNamespacedDeployment({ name, namespace });
    case WorkloadKind.WORKLOAD_KIND_STATEFUL_SET:
      return apps.readNamespacedStatefulSet({ name, namespace });
    case WorkloadKind.WORKLOAD_KIND_DAEMON_SET:
      return apps.readNamespacedDaemonSet({ name, namespace });
    default:
      throw new Error(`unsupported workload kind ${kind}`);
  }
}

/** Strategic merge patch of a workload (containers merge by name). */
export function patchWorkload(
  apps: AppsV1Api,
  kind: WorkloadKind,
  namespace: string,
  name: string,
  body: object,
  fieldManager = "k8sdeploy-agent",
): Promise<WorkloadObject> {
  const opts = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);
  const param = { name, namespace, body, fieldManager };
  switch (kind) {
    case WorkloadKind.WORKLOAD_KIND_DEPLOYMENT:
      return apps.patchNamespacedDeployment(param, opts);
    case WorkloadKind.WORKLOAD_KIND_STATEFUL_SET:
      return apps.patchNamespacedStatefulSet(param, opts);
    case WorkloadKind.WORKLOAD_KIND_DAEMON_SET:
      return apps.patchNamespacedDaemonSet(param, opts);
    default:
      throw new Error(`unsupported workload kind ${kind}`);
  }
}

/** All workloads of a kind in a namespace (follows `continue` pages). */
export async function listWorkloads(apps: AppsV1Api, kind: WorkloadKind, namespace: string): Promise<WorkloadObject[]> {
  const out: WorkloadObject[] = [];
  let cont: string | undefined;
  do {
    const param: { namespace: string; limit: number; _continue?: string } = { namespace, limit: 500 };
    if (cont) param._continue = cont;
    let page: { items: WorkloadObject[]; metadata?: { _continue?: string } };
    switch (kind) {
      case WorkloadKind.WORKLOAD_KIND_DEPLOYMENT:
        page = await apps.listNamespacedDeployment(param);
        break;
      case WorkloadKind.WORKLOAD_KIND_STATEFUL_SET:
        page = await apps.listNamespacedStatefulSet(param);
        break;
      case WorkloadKind.WORKLOAD_KIND_DAEMON_SET:
        page = await apps.listNamespacedDaemonSet(param);
        break;
      default:
        throw new Error(`unsupported workload kind ${kind}`);
    }
    out.push(...page.items);
    cont = page.metadata?._continue || undefined;
  } while (cont);
  return out;
}

export function podTemplate(obj: WorkloadObject): V1PodTemplateSpec | undefined {
  return obj.spec?.template;
}

export function selectorOf(obj: WorkloadObject): V1LabelSelector | undefined {
  return obj.spec?.selector;
}
