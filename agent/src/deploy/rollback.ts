// Undo a failed rollout: restore the previous images (and the pod template's previous
// deployment-id annotation, so a Deployment scales its old ReplicaSet back up) through the same
// patch path, then wait, bounded, for that rollout.

import {
  type ContainerImage,
  type Failure,
  FailureReason,
  WorkloadKind,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1LabelSelector } from "@kubernetes/client-node";
import { type KubeClients, toFailure } from "../kube.js";
import {
  ANNOTATION_CHANGE_CAUSE,
  ANNOTATION_DEPLOYMENT_ID,
  ANNOTATION_ROLLED_BACK,
  rolledBackAnnotation,
} from "./annotations.js";
import { applyImagePatch } from "./patch.js";
import { isPodReady } from "./pod-failure.js";
import type { RolloutStatus } from "./progress.js";
import { followRollout } from "./rollout.js";
import { labelSelectorToString } from "./selector.js";
import { workloadLabel, workloadOp } from "./workload.js";

export interface RollbackInput {
  clients: KubeClients;
  kind: WorkloadKind;
  namespace: string;
  name: string;
  selector: V1LabelSelector | undefined;
  /** The failed deployment. */
  deploymentId: string;
  /** Images to restore. */
  previous: readonly ContainerImage[];
  /** The pod template's deployment-id annotation before the failed change; "" or undefined: none. */
  previousTemplateDeploymentId: string | undefined;
  /** Why the rollout failed. */
  failure: Failure;
  /** Bound for the rollback's own rollout. */
  timeoutSeconds: number;
  onProgress: (message: string, status?: RolloutStatus) => void;
  watchTimeoutSeconds?: number;
}

export type RollbackOutcome =
  | { ok: true; message: string; status: RolloutStatus | undefined }
  | { ok: false; failure: Failure; status: RolloutStatus | undefined };

/** `IMAGE_PULL` */
export function reasonName(reason: FailureReason): string {
  return (FailureReason[reason] ?? String(reason)).replace(/^FAILURE_REASON_/, "");
}

export function imagesText(images: readonly ContainerImage[]): string {
  return images.map((c) => `${c.init ? "init container " : ""}${c.container} ${c.image}`).join(", ");
}

export async function rollback(input: RollbackInput): Promise<RollbackOutcome> {
  const { clients, kind, namespace, name } = input;
  const label = workloadLabel(kind, name);
  const failed = `${reasonName(input.failure.reason)}: ${input.failure.message}`;
  const restoreTo = input.previousTemplateDeploymentId ? input.previousTemplateDeploymentId : null;
  input.onProgress(`rollout failed (${failed}); restoring the previous images: ${imagesText(input.previous)}`);
  try {
    await applyImagePatch(clients.apps, kind, namespace, name, {
      images: input.previous,
      templateAnnotations: { [ANNOTATION_DEPLOYMENT_ID]: restoreTo },
      workloadAnnotations: {
        [ANNOTATION_ROLLED_BACK]: rolledBackAnnotation(input.deploymentId, input.failure),
        [ANNOTATION_CHANGE_CAUSE]: `k8sdeploy ${input.deploymentId}: rolled back after ${reasonName(input.failure.reason)}`,
      },
    });
  } catch (err) {
    const f = toFailure(err, workloadOp(kind, "patch", namespace, name));
    return {
      ok: false,
      status: undefined,
      failure: {
        reason: FailureReason.FAILURE_REASON_ROLLBACK_FAILED,
        message: `restoring the previous images of ${label} failed: ${f.message}; the rollout had failed: ${failed}`,
      },
    };
  }

  // A StatefulSet does not replace a pod that never became ready on its own ("forced rollback"):
  // once the controller has observed the restored template, delete the failed deployment's pods
  // that are not ready, so they are recreated from it.
  let deleting: Promise<string> | undefined;
  const timeoutSeconds = input.timeoutSeconds;
  const outcome = await followRollout({
    kc: clients.kc,
    kind,
    namespace,
    name,
    selector: input.selector,
    deadline: Date.now() + timeoutSeconds * 1000,
    timeoutSeconds,
    onProgress: (s) => {
      if (kind === WorkloadKind.WORKLOAD_KIND_STATEFUL_SET && s.observed && !deleting) {
        deleting = deleteBrokenPods(input);
      }
      input.onProgress(`rolling back: ${s.message}`, s);
    },
    watchTimeoutSeconds: input.watchTimeoutSeconds,
  });
  const deleteProblem = deleting ? await deleting : "";
  if (outcome.result === "succeeded") {
    return {
      ok: true,
      status: outcome.status,
      message: `rollout of ${label} failed (${failed}); restored the previous images (${imagesText(input.previous)}): ${outcome.status.message}`,
    };
  }
  return {
    ok: false,
    status: outcome.status,
    failure: {
      reason: FailureReason.FAILURE_REASON_ROLLBACK_FAILED,
      message: `restored the previous images of ${label}, but that rollout did not complete: ${outcome.failure.message}${deleteProblem}; the rollout had failed: ${failed}`,
    },
  };
}

async function deleteBrokenPods(input: RollbackInput): Promise<string> {
  const { clients, namespace } = input;
  const op = { verb: "list", resource: "pods", namespace };
  try {
    const list = await clients.core.listNamespacedPod({
      namespace,
      labelSelector: labelSelectorToString(input.selector),
    });
    for (const pod of list.items) {
      const podName = pod.metadata?.name;
      if (!podName || pod.metadata?.deletionTimestamp || isPodReady(pod)) continue;
      if (pod.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID] !== input.deploymentId) continue;
      op.verb = "delete";
      await clients.core.deleteNamespacedPod({ name: podName, namespace });
    }
    return "";
  } catch (err) {
    const f = toFailure(err, op);
    return ` (failed pods of the statefulset could not be replaced: ${f.message})`;
  }
}
