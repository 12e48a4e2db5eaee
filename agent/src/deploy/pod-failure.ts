// What is wrong with a pod: failures that end a rollout at once (image pull, crash loop), and
// reasons a pod is not ready yet (for progress and timeout messages).

import { type Failure, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1ContainerStatus, V1Pod } from "@kubernetes/client-node";

/** Kubelet waiting reasons that mean the image cannot be pulled. */
export const IMAGE_PULL_REASONS: ReadonlySet<string> = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "RegistryUnavailable",
  "ImageInspectError",
]);
export const CRASH_LOOP_REASON = "CrashLoopBackOff";

function statuses(pod: V1Pod): Array<{ s: V1ContainerStatus; init: boolean }> {
  return [
    ...(pod.status?.initContainerStatuses ?? []).map((s) => ({ s, init: true })),
    ...(pod.status?.containerStatuses ?? []).map((s) => ({ s, init: false })),
  ];
}

function who(pod: V1Pod, name: string, init: boolean): string {
  return `pod "${pod.metadata?.name ?? "?"}" ${init ? "init container" : "container"} "${name}"`;
}

function lastTermination(s: V1ContainerStatus): string {
  const t = s.lastState?.terminated;
  if (!t) return "";
  const parts = [`exit code ${t.exitCode}`];
  if (t.reason) parts.push(t.reason);
  let out = ` (restarted ${s.restartCount ?? 0} times; last ${parts.join(", ")}`;
  if (t.message) out += `: ${t.message.trim().slice(0, 500)}`;
  return `${out})`;
}

/**
 * IMAGE_PULL or CRASH_LOOP when a container (init containers first) waits for one of those
 * reasons; the message names pod, container, reason and the kubelet's message, e.g.
 * `pod "web-7d4b9-x2x" container "web": ImagePullBackOff: Back-off pulling image "x"`.
 */
export function classifyPod(pod: V1Pod): Failure | undefined {
  if (pod.metadata?.deletionTimestamp) return undefined;
  for (const { s, init } of statuses(pod)) {
    const waiting = s.state?.waiting;
    const reason = waiting?.reason;
    if (!reason) continue;
    const kubelet = waiting.message ? `: ${waiting.message.trim()}` : "";
    if (IMAGE_PULL_REASONS.has(reason)) {
      return {
        reason: FailureReason.FAILURE_REASON_IMAGE_PULL,
        message: `${who(pod, s.name, init)}: ${reason}${kubelet}`,
      };
    }
    if (reason === CRASH_LOOP_REASON) {
      return {
        reason: FailureReason.FAILURE_REASON_CRASH_LOOP,
        message: `${who(pod, s.name, init)}: ${reason}${kubelet}${lastTermination(s)}`,
      };
    }
  }
  return undefined;
}

export function isPodReady(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

/**
 * Why a pod is not ready, e.g. `pod "web-x" is Pending: Unschedulable: 0/1 nodes are available…`;
 * undefined when it is ready or terminating.
 */
export function describePodBlocker(pod: V1Pod): string | undefined {
  if (pod.metadata?.deletionTimestamp || isPodReady(pod)) return undefined;
  const name = `pod "${pod.metadata?.name ?? "?"}"`;
  const conditions = pod.status?.conditions ?? [];
  const scheduled = conditions.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False") {
    return `${name} is ${pod.status?.phase ?? "Pending"}: ${scheduled.reason ?? "not scheduled"}${
      scheduled.message ? `: ${scheduled.message}` : ""
    }`;
  }
  const failure = classifyPod(pod);
  if (failure) return failure.message;
  for (const { s, init } of statuses(pod)) {
    const waiting = s.state?.waiting;
    if (waiting?.reason) {
      return `${who(pod, s.name, init)}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`;
    }
    const terminated = s.state?.terminated;
    if (terminated && !(init && terminated.exitCode === 0)) {
      return `${who(pod, s.name, init)}: terminated with exit code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ""}`;
    }
  }
  const ready = conditions.find((c) => c.type === "Ready");
  const phase = pod.status?.phase ?? "Pending";
  if (!scheduled && !pod.spec?.nodeName) return `${name} is ${phase}: not scheduled yet`;
  return `${name} is ${phase} but not ready${ready?.message ? `: ${ready.message}` : ""}`;
}
