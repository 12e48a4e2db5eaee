// How a deployment's state moves: the rules shared by Deploy (creation) and the agent stream
// (ack, progress, result). Final states never change again.
import type { CommandProgress, CommandResult, DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import {
  ChangeKind,
  type Deployment,
  type DeploymentEvent,
  DeploymentState,
  deploymentStateToJSON,
  type ReplicaStatus,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { ValidDeploy } from "./validate-deploy.js";

export const FINAL_STATES: ReadonlySet<DeploymentState> = new Set([
  DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
  DeploymentState.DEPLOYMENT_STATE_FAILED,
  DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
  DeploymentState.DEPLOYMENT_STATE_TIMED_OUT,
]);

export const isFinal = (state: DeploymentState) => FINAL_STATES.has(state);

/** Lowercase name without prefix: `in_progress`. */
export function stateName(state: DeploymentState): string {
  return deploymentStateToJSON(state)
    .replace(/^DEPLOYMENT_STATE_/, "")
    .toLowerCase();
}

function sameReplicas(a: ReplicaStatus | undefined, b: ReplicaStatus | undefined): boolean {
  return (
    a?.desired === b?.desired && a?.updated === b?.updated && a?.ready === b?.ready && a?.available === b?.available
  );
}

type Update = { deployment: Deployment; event: Omit<DeploymentEvent, "seq"> } | undefined;

export function newDeployment(
  id: string,
  agentId: string,
  keyId: string,
  request: ValidDeploy,
  now: Date,
  rollbackOf = "",
): { deployment: Deployment; event: DeploymentEvent } {
  const message = `queued for agent ${agentId}`;
  const deployment: Deployment = {
    id,
    agentId,
    keyId,
    namespace: request.namespace,
    kind: request.kind,
    workload: request.workload,
    containers: request.containers,
    image: request.image,
    timeoutSeconds: request.timeoutSeconds,
    rollbackOnFailure: request.rollbackOnFailure,
    idempotencyKey: request.idempotencyKey,
    origin: request.origin,
    state: DeploymentState.DEPLOYMENT_STATE_QUEUED,
    failure: undefined,
    createdAt: now,
    updatedAt: now,
    previousImages: [],
    appliedImages: [],
    message,
    replicas: undefined,
    rollbackOf,
    pinDigest: request.pinDigest ?? false,
    resolvedDigest: "",
    changeKind: ChangeKind.CHANGE_KIND_WORKLOAD_IMAGE,
    agentVersion: "",
  };
  return {
    deployment,
    event: { seq: 1, time: now, state: deployment.state, message, replicas: undefined, failure: undefined },
  };
}

export function deployCommandOf(d: Deployment): DeployCommand {
  return {
    deploymentId: d.id,
    namespace: d.namespace,
    kind: d.kind,
    workload: d.workload,
    containers: d.containers,
    image: d.image,
    timeoutSeconds: d.timeoutSeconds,
    rollbackOnFailure: d.rollbackOnFailure,
    origin: d.origin,
    pinDigest: d.pinDigest,
  };
}

/** The agent received the command: QUEUED → DELIVERED (only from QUEUED). */
export function applyAck(now: Date, agentInstance: string) {
  return (d: Deployment): Update => {
    if (d.state !== DeploymentState.DEPLOYMENT_STATE_QUEUED) return undefined;
    const message = `delivered to agent ${d.agentId}${agentInstance ? ` (${agentInstance})` : ""}`;
    const deployment = { ...d, state: DeploymentState.DEPLOYMENT_STATE_DELIVERED, updatedAt: now, message };
    return {
      deployment,
      event: { time: now, state: deployment.state, message, replicas: undefined, failure: undefined },
    };
  };
}

export function applyProgress(now: Date, progress: CommandProgress) {
  return (d: Deployment): Update => {
    if (isFinal(d.state) || isFinal(progress.state)) return undefined;
    const state =
      progress.state === DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED
        ? DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS
        : progress.state;
    // The agent re-sends its latest progress after a reconnect: keep the timeline free of repeats.
    if (state === d.state && progress.message === d.message && sameReplicas(progress.replicas, d.replicas)) {
      return undefined;
    }
    const deployment: Deployment = {
      ...d,
      state,
      updatedAt: now,
      message: progress.message,
      replicas: progress.replicas ?? d.replicas,
      previousImages: progress.previousImages.length > 0 ? progress.previousImages : d.previousImages,
      appliedImages: progress.appliedImages.length > 0 ? progress.appliedImages : d.appliedImages,
      resolvedDigest: progress.resolvedDigest || d.resolvedDigest,
    };
    return {
      deployment,
      event: { time: now, state, message: progress.message, replicas: progress.replicas, failure: undefined },
    };
  };
}

export function applyResult(now: Date, result: CommandResult) {
  return (d: Deployment): Update => {
    if (isFinal(d.state)) return undefined;
    const state = isFinal(result.state) ? result.state : DeploymentState.DEPLOYMENT_STATE_FAILED;
    const failure =
      state === DeploymentState.DEPLOYMENT_STATE_SUCCEEDED
        ? undefined
        : (result.failure ?? { reason: 0, message: result.message || "the agent reported no reason" });
    const message = result.message || failure?.message || stateName(state);
    const deployment: Deployment = {
      ...d,
      state,
      failure,
      updatedAt: now,
      message,
      replicas: result.replicas ?? d.replicas,
      previousImages: result.previousImages.length > 0 ? result.previousImages : d.previousImages,
      appliedImages: result.appliedImages.length > 0 ? result.appliedImages : d.appliedImages,
      resolvedDigest: result.resolvedDigest || d.resolvedDigest,
    };
    return { deployment, event: { time: now, state, message, replicas: deployment.replicas, failure } };
  };
}
