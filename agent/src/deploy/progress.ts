// Rollout progress of a workload from its status, per kind — the same rules as
// `kubectl rollout status`, plus "available" for every kind.

import { type ReplicaStatus, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1DaemonSet, V1Deployment, V1StatefulSet } from "@kubernetes/client-node";
import type { WorkloadObject } from "./workload.js";

export interface RolloutStatus {
  replicas: ReplicaStatus;
  /** The controller has observed the current spec (status.observedGeneration >= metadata.generation). */
  observed: boolean;
  /** Every replica runs the current template and is available; no old replica is left. */
  done: boolean;
  /** Human-readable, e.g. `2 of 3 replicas updated, 1 available`. */
  message: string;
  /** Deployment only: Progressing=False/ProgressDeadlineExceeded message, for the current generation. */
  progressDeadlineExceeded?: string;
  /** Deployment only: ReplicaFailure=True condition (FailedCreate, quota…), as `reason: message`. */
  replicaFailure?: string;
}

const n = (v: number | undefined): number => (typeof v === "number" && v > 0 ? v : 0);
const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? "" : "s"}`;

function counts(replicas: ReplicaStatus): string {
  const { desired, updated, ready, available } = replicas;
  return `${updated} of ${plural(desired, "replica")} updated, ${ready} ready, ${available} available`;
}

/** Progress of a workload of the given kind (the object as read or as received from a watch). */
export function rolloutStatus(kind: WorkloadKind, obj: WorkloadObject): RolloutStatus {
  const generation = obj.metadata?.generation ?? 0;
  const observed = (obj.status?.observedGeneration ?? 0) >= generation;
  switch (kind) {
    case WorkloadKind.WORKLOAD_KIND_DEPLOYMENT:
      return deploymentStatus(obj as V1Deployment, observed, generation);
    case WorkloadKind.WORKLOAD_KIND_STATEFUL_SET:
      return statefulSetStatus(obj as V1StatefulSet, observed, generation);
    case WorkloadKind.WORKLOAD_KIND_DAEMON_SET:
      return daemonSetStatus(obj as V1DaemonSet, observed, generation);
    default:
      throw new Error(`unsupported workload kind ${kind}`);
  }
}

/** Before the controller has seen the new spec, no replica is known to run the current template. */
function notObserved(replicas: ReplicaStatus, generation: number, controller: string): RolloutStatus {
  return {
    replicas: { ...replicas, updated: 0 },
    observed: false,
    done: false,
    message: `waiting for the ${controller} controller to observe generation ${generation}`,
  };
}

function deploymentStatus(d: V1Deployment, observed: boolean, generation: number): RolloutStatus {
  const s = d.status;
  const replicas: ReplicaStatus = {
    desired: d.spec?.replicas ?? 1,
    updated: n(s?.updatedReplicas),
    ready: n(s?.readyReplicas),
    available: n(s?.availableReplicas),
  };
  const total = n(s?.replicas);
  const conditions = s?.conditions ?? [];
  const failure = conditions.find((c) => c.type === "ReplicaFailure" && c.status === "True");
  const out: RolloutStatus = observed
    ? { replicas, observed, done: false, message: "" }
    : notObserved(replicas, generation, "deployment");
  if (failure) out.replicaFailure = `${failure.reason ?? "ReplicaFailure"}: ${failure.message ?? ""}`.trim();
  if (!observed) return out;
  const progressing = conditions.find((c) => c.type === "Progressing");
  if (progressing?.status === "False" && progressing.reason === "ProgressDeadlineExceeded") {
    out.progressDeadlineExceeded = progressing.message || "ProgressDeadlineExceeded";
  }
  if (d.spec?.paused) {
    out.message = `the deployment is paused; ${counts(replicas)}`;
  } else if (replicas.updated < replicas.desired) {
    out.message = counts(replicas);
  } else if (total > replicas.updated) {
    out.message = `waiting for ${plural(total - replicas.updated, "old replica")} to terminate; ${counts(replicas)}`;
  } else if (replicas.available < replicas.desired) {
    out.message = counts(replicas);
  } else {
    out.done = true;
    out.message = `${replicas.updated} of ${plural(replicas.desired, "replica")} updated and available`;
  }
  return out;
}

function statefulSetStatus(sts: V1StatefulSet, observed: boolean, generation: number): RolloutStatus {
  const s = sts.status;
  const ready = n(s?.readyReplicas);
  const replicas: ReplicaStatus = {
    desired: sts.spec?.replicas ?? 1,
    updated: n(s?.updatedReplicas),
    ready,
    available: s?.availableReplicas === undefined ? ready : n(s.availableReplicas),
  };
  if (!observed) return notObserved(replicas, generation, "statefulset");
  const out: RolloutStatus = { replicas, observed, done: false, message: counts(replicas) };
  const strategy = sts.spec?.updateStrategy;
  if (strategy?.type === "OnDelete") {
    out.done = true;
    out.message = `updateStrategy OnDelete: pods get the new template only when they are deleted; ${counts(replicas)}`;
    return out;
  }
  const partition = n(strategy?.rollingUpdate?.partition);
  const target = Math.max(0, replicas.desired - partition);
  const total = n(s?.replicas);
  if (
    replicas.updated >= target &&
    replicas.ready >= replicas.desired &&
    replicas.available >= replicas.desired &&
    total <= replicas.desired
  ) {
    out.done = true;
    out.message =
      partition > 0
        ? `partitioned rollout complete: ${replicas.updated} of ${plural(replicas.desired, "replica")} updated (partition ${partition}), all available`
        : `${replicas.updated} of ${plural(replicas.desired, "replica")} updated and available`;
  } else if (total > replicas.desired) {
    out.message = `waiting for ${plural(total - replicas.desired, "extra replica")} to terminate; ${counts(replicas)}`;
  }
  return out;
}

function daemonSetStatus(ds: V1DaemonSet, observed: boolean, generation: number): RolloutStatus {
  const s = ds.status;
  const replicas: ReplicaStatus = {
    desired: n(s?.desiredNumberScheduled),
    updated: n(s?.updatedNumberScheduled),
    ready: n(s?.numberReady),
    available: n(s?.numberAvailable),
  };
  if (!observed) return notObserved(replicas, generation, "daemonset");
  const out: RolloutStatus = { replicas, observed, done: false, message: counts(replicas) };
  if (ds.spec?.updateStrategy?.type === "OnDelete") {
    out.done = true;
    out.message = `updateStrategy OnDelete: pods get the new template only when they are deleted; ${counts(replicas)}`;
  } else if (replicas.updated >= replicas.desired && replicas.available >= replicas.desired) {
    out.done = true;
    out.message = `${replicas.updated} of ${plural(replicas.desired, "scheduled pod")} updated and available`;
  }
  return out;
}
