// Follows a rollout with two watches — the workload (progress, completion, progress deadline)
// and its pods (image pull and crash loop failures of new pods) — until it succeeds, fails or
// the deadline passes. No polling: every decision is taken on a watch event or at the deadline.

import { type Failure, FailureReason, type WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { KubeConfig, V1LabelSelector, V1Pod } from "@kubernetes/client-node";
import { apiErrorInfo, describeOp, toFailure } from "../kube.js";
import { ANNOTATION_DEPLOYMENT_ID } from "./annotations.js";
import { classifyPod, describePodBlocker } from "./pod-failure.js";
import { type RolloutStatus, rolloutStatus } from "./progress.js";
import { labelSelectorToString } from "./selector.js";
import { WatchLoop } from "./watch.js";
import { type WorkloadObject, workloadLabel, workloadOp, workloadPath } from "./workload.js";

export interface FollowOptions {
  kc: KubeConfig;
  kind: WorkloadKind;
  namespace: string;
  name: string;
  /** The workload's pod selector (immutable in apps/v1). */
  selector: V1LabelSelector | undefined;
  /**
   * Pods whose template carries this deployment id are the rollout's new pods: an image pull or
   * crash loop failure of one of them fails the rollout. Without it, pods are only used to
   * explain a timeout.
   */
  deploymentId?: string;
  /** Epoch ms after which the rollout is TIMED_OUT. */
  deadline: number;
  /** Seconds the command allowed, for the timeout message. */
  timeoutSeconds: number;
  /** Called whenever the replica counts or the status message change. */
  onProgress?: (status: RolloutStatus) => void;
  /** Server-side timeout of each watch request; the watches are re-established after it. */
  watchTimeoutSeconds?: number;
}

export type RolloutOutcome =
  | { result: "succeeded"; status: RolloutStatus; watchRequests: number }
  | { result: "failed" | "timed-out"; failure: Failure; status: RolloutStatus | undefined; watchRequests: number };

const MAX_BLOCKERS = 3;

export function followRollout(opts: FollowOptions): Promise<RolloutOutcome> {
  const label = workloadLabel(opts.kind, opts.name);
  let workload: WorkloadObject | undefined;
  let status: RolloutStatus | undefined;
  let lastKey = "";
  const pods = new Map<string, V1Pod>();
  let podWatchProblem: string | undefined;
  let finished = false;

  return new Promise<RolloutOutcome>((resolve) => {
    const workloadWatch = new WatchLoop<WorkloadObject>({
      kc: opts.kc,
      path: workloadPath(opts.kind, opts.namespace),
      query: { fieldSelector: `metadata.name=${opts.name}` },
      watchTimeoutSeconds: opts.watchTimeoutSeconds,
      onReset: () => {},
      onEvent: (type, obj) => {
        if (type === "DELETED") {
          finish({
            result: "failed",
            failure: {
              reason: FailureReason.FAILURE_REASON_WORKLOAD_NOT_FOUND,
              message: `${label} was deleted from namespace "${opts.namespace}" during the rollout`,
            },
          });
          return;
        }
        workload = obj;
        evaluate();
      },
      onFatal: (err) =>
        finish({
          result: "failed",
          failure: toFailure(err, workloadOp(opts.kind, "watch", opts.namespace, opts.name)),
        }),
    });

    let podWatch: WatchLoop<V1Pod> | undefined;
    try {
      const labelSelector = labelSelectorToString(opts.selector);
      podWatch = new WatchLoop<V1Pod>({
        kc: opts.kc,
        path: `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods`,
        query: { labelSelector },
        watchTimeoutSeconds: opts.watchTimeoutSeconds,
        onReset: () => pods.clear(),
        onEvent: (type, pod) => {
          const key = pod.metadata?.uid ?? pod.metadata?.name ?? "";
          if (type === "DELETED") pods.delete(key);
          else pods.set(key, pod);
          evaluate();
        },
        onFatal: (err) => {
          // The rollout can still be followed through the workload's status; failures of new
          // pods are then only seen as a timeout (or a Deployment's progress deadline).
          podWatchProblem = `${describeOp({ verb: "watch", resource: "pods", namespace: opts.namespace })}: ${apiErrorInfo(err).message}`;
        },
      });
    } catch (err) {
      podWatchProblem = `cannot watch the pods of ${label}: ${err instanceof Error ? err.message : String(err)}`;
    }

    const timer = setTimeout(() => finish(timedOut()), Math.max(0, opts.deadline - Date.now()));

    function finish(o: { result: "succeeded" } | { result: "failed" | "timed-out"; failure: Failure }): void {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      workloadWatch.stop();
      podWatch?.stop();
      const watchRequests = workloadWatch.requests + (podWatch?.requests ?? 0);
      if (o.result === "succeeded" && status) resolve({ result: "succeeded", status, watchRequests });
      else if (o.result !== "succeeded") resolve({ ...o, status, watchRequests });
    }

    function isNew(pod: V1Pod): boolean {
      return (
        opts.deploymentId !== undefined && pod.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID] === opts.deploymentId
      );
    }

    function evaluate(): void {
      if (finished || !workload) return;
      status = rolloutStatus(opts.kind, workload);
      const key = JSON.stringify([status.replicas, status.message]);
      if (key !== lastKey) {
        lastKey = key;
        opts.onProgress?.(status);
      }
      if (status.done) {
        finish({ result: "succeeded" });
        return;
      }
      if (status.progressDeadlineExceeded) {
        finish({
          result: "failed",
          failure: {
            reason: FailureReason.FAILURE_REASON_PROGRESS_DEADLINE_EXCEEDED,
            message: `${label} exceeded its progress deadline: ${status.progressDeadlineExceeded.replace(/\.$/, "")}${blockers(" ")}`,
          },
        });
        return;
      }
      for (const pod of pods.values()) {
        if (!isNew(pod)) continue;
        const failure = classifyPod(pod);
        if (failure) {
          finish({ result: "failed", failure });
          return;
        }
      }
    }

    /** `; pod "x" is Pending: Unschedulable: …; …` for the new pods (all pods without a deployment id). */
    function blockers(sep: string): string {
      const relevant = [...pods.values()].filter((p) => opts.deploymentId === undefined || isNew(p));
      const reasons = relevant
        .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""))
        .map(describePodBlocker)
        .filter((x): x is string => x !== undefined);
      const parts = reasons.slice(0, MAX_BLOCKERS);
      if (reasons.length > MAX_BLOCKERS) parts.push(`and ${reasons.length - MAX_BLOCKERS} more pods`);
      if (status?.replicaFailure) parts.push(status.replicaFailure);
      if (opts.deploymentId !== undefined && relevant.length === 0 && !podWatchProblem) {
        parts.push("no pod with the new template exists yet");
      }
      if (podWatchProblem) parts.push(`pods were not watched (${podWatchProblem})`);
      return parts.length > 0 ? `;${sep}${parts.join("; ")}` : "";
    }

    function timedOut(): { result: "timed-out"; failure: Failure } {
      const state = status ? status.message : "its status was never received";
      return {
        result: "timed-out",
        failure: {
          reason: FailureReason.FAILURE_REASON_TIMEOUT,
          message: `${label} did not finish rolling out within ${opts.timeoutSeconds}s: ${state}${blockers(" ")}`,
        },
      };
    }

    workloadWatch.start();
    podWatch?.start();
  });
}
