// What happens once when a deployment reaches a final state, wherever that happened (the agent's
// result, cancel, expiry, supersession): the outcome counter and latency histograms, ONE log line
// (`event: "deployment_finished"`), and the webhooks. Called only by the code whose store update
// made the state final (appendEvent is atomic), so each of these happens once per deployment
// across all replicas. Costs nothing beyond the update already made: everything is read from the
// deployment record the store returned.
import { type Deployment, failureReasonToJSON, workloadKindToJSON } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import { stateName } from "./lifecycle.js";

/** Told about every final deployment (the webhook dispatcher). Must not throw or block. */
export interface OutcomeListener {
  deploymentFinished(deployment: Deployment): void;
}

const seconds = (from: Date | undefined, to: Date | undefined) =>
  from && to ? Math.max(0, (to.getTime() - from.getTime()) / 1000) : undefined;

/** `FAILURE_REASON_IMAGE_PULL` → `image_pull`; "" when unspecified. */
export function failureReasonName(deployment: Deployment): string {
  const reason = deployment.failure?.reason;
  if (!reason) return "";
  return failureReasonToJSON(reason)
    .replace(/^FAILURE_REASON_/, "")
    .toLowerCase();
}

export function kindName(deployment: Deployment): string {
  return workloadKindToJSON(deployment.kind)
    .replace(/^WORKLOAD_KIND_/, "")
    .replaceAll("_", "")
    .toLowerCase();
}

export class Outcomes {
  private listener: OutcomeListener | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** The webhook dispatcher, once it exists (it needs the store). */
  listen(listener: OutcomeListener): void {
    this.listener = listener;
  }

  /** The deployment just reached its final state `deployment.state` (as stored). */
  ended(deployment: Deployment): void {
    const state = stateName(deployment.state);
    const at = deployment.updatedAt ?? new Date();
    const total = seconds(deployment.createdAt, at);
    const queued = seconds(deployment.createdAt, deployment.deliveredAt);
    const run = seconds(deployment.deliveredAt, at);
    this.metrics.deploymentsFinished.inc({ state });
    if (total !== undefined) this.metrics.deploymentDuration.observe({ state }, total);
    if (run !== undefined) this.metrics.deploymentRun.observe({ state }, run);
    this.log.info(
      {
        event: "deployment_finished",
        deploymentId: deployment.id,
        agentId: deployment.agentId,
        keyId: deployment.keyId || undefined,
        namespace: deployment.namespace,
        kind: kindName(deployment),
        workload: deployment.workload,
        image: deployment.image,
        state,
        reason: failureReasonName(deployment) || undefined,
        message: deployment.message,
        durationSeconds: total,
        queuedSeconds: queued,
        rolloutSeconds: run,
        rollbackOf: deployment.rollbackOf || undefined,
        supersededBy: deployment.supersededBy || undefined,
        repository: deployment.origin?.repository || undefined,
        sha: deployment.origin?.sha || undefined,
      },
      "deployment finished",
    );
    try {
      this.listener?.deploymentFinished(deployment);
    } catch (err) {
      this.log.warn({ err, deploymentId: deployment.id }, "queueing the deployment's notifications failed");
    }
  }

  /** The agent acknowledged the command: the end of the queue wait. */
  delivered(deployment: Deployment): void {
    const queued = seconds(deployment.createdAt, deployment.deliveredAt ?? new Date());
    if (queued !== undefined) this.metrics.deploymentDelivery.observe(queued);
  }
}
