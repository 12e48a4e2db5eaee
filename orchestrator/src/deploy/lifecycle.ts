// How a deployment's state moves: the one place that decides which transitions are allowed,
// shared by Deploy (creation), the agent stream (ack, progress, result) and the orchestrator's own
// endings (cancel, expiry, superseded). States only move forward — QUEUED → DELIVERED →
// IN_PROGRESS → a final state, steps may be skipped — and a final state never changes again.
// Who may set what: the agent's ack only DELIVERED, its progress only IN_PROGRESS, its result
// only a final state the agent can reach; CANCELLED, and expiry or supersession of a command the
// agent never started, only the orchestrator.

import { MAX_EVENTS_PER_DEPLOYMENT } from "@k8sdeploy/proto/contract/limits.js";
import type { CommandProgress, CommandResult, DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import {
  ChangeKind,
  type Deployment,
  type DeploymentEvent,
  DeploymentState,
  deploymentStateToJSON,
  type Failure,
  FailureReason,
  type OidcClaims,
  type ReplicaStatus,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { ValidDeploy } from "./validate-deploy.js";

const S = DeploymentState;

export const FINAL_STATES: ReadonlySet<DeploymentState> = new Set([
  S.DEPLOYMENT_STATE_SUCCEEDED,
  S.DEPLOYMENT_STATE_FAILED,
  S.DEPLOYMENT_STATE_ROLLED_BACK,
  S.DEPLOYMENT_STATE_TIMED_OUT,
  S.DEPLOYMENT_STATE_CANCELLED,
  S.DEPLOYMENT_STATE_SUPERSEDED,
  S.DEPLOYMENT_STATE_EXPIRED,
]);

/** Final states an agent may report in a result. */
const AGENT_RESULT_STATES: ReadonlySet<DeploymentState> = new Set([
  S.DEPLOYMENT_STATE_SUCCEEDED,
  S.DEPLOYMENT_STATE_FAILED,
  S.DEPLOYMENT_STATE_ROLLED_BACK,
  S.DEPLOYMENT_STATE_TIMED_OUT,
  S.DEPLOYMENT_STATE_SUPERSEDED,
  S.DEPLOYMENT_STATE_EXPIRED,
]);

/** Position in the lifecycle; every final state shares the last one. */
function rank(state: DeploymentState): number {
  switch (state) {
    case S.DEPLOYMENT_STATE_QUEUED:
      return 1;
    case S.DEPLOYMENT_STATE_DELIVERED:
      return 2;
    case S.DEPLOYMENT_STATE_IN_PROGRESS:
      return 3;
    default:
      return FINAL_STATES.has(state) ? 4 : 0;
  }
}

export const isFinal = (state: DeploymentState) => FINAL_STATES.has(state);

/** True when `state` is a value of DeploymentState other than UNSPECIFIED. */
export const isKnownState = (state: number) => rank(state) > 0;

/**
 * Whether a deployment in `from` may move to `to`: forward only, never out of a final state;
 * IN_PROGRESS may repeat (each progress step is an event).
 */
export function canMove(from: DeploymentState, to: DeploymentState): boolean {
  if (isFinal(from) || !isKnownState(to)) return false;
  const a = rank(from);
  const b = rank(to);
  return b > a || (b === a && to === S.DEPLOYMENT_STATE_IN_PROGRESS);
}

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

export type Update = { deployment: Deployment; event: Omit<DeploymentEvent, "seq"> };

/**
 * What applying a report decided: a change to store, nothing to do (a repeat, or the deployment
 * is already past that point), or a refusal (a report that breaks the rules; logged and counted).
 */
export type Verdict =
  | { kind: "apply"; update: Update }
  | { kind: "ignore" }
  | { kind: "refuse"; reason: RefusalReason; detail: string; owner?: string };

export type RefusalReason =
  | "foreign_command"
  | "unknown_command"
  | "unknown_state"
  | "backwards_state"
  | "not_a_result_state"
  | "invalid_field";

const ignore: Verdict = { kind: "ignore" };
const refuse = (reason: RefusalReason, detail: string): Verdict => ({ kind: "refuse", reason, detail });

/** A rule applied to the current record: the store calls it (again on a concurrent change). */
export type Rule = (current: Deployment, eventCount: number) => Verdict;

export function newDeployment(
  id: string,
  agentId: string,
  keyId: string,
  request: ValidDeploy,
  now: Date,
  queueDeadline: Date,
  rollbackOf = "",
  /** Set when a GitHub OIDC token (not a deploy key) requested it: the audit trail. */
  trust?: { policyId: string; claims: OidcClaims },
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
    state: S.DEPLOYMENT_STATE_QUEUED,
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
    queueDeadline,
    supersededBy: "",
    trustPolicyId: trust?.policyId ?? "",
    oidcClaims: trust?.claims,
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

/** Agent reports apply only to that agent's deployments. */
function foreign(d: Deployment, agentId: string): Verdict | undefined {
  return d.agentId === agentId
    ? undefined
    : {
        kind: "refuse",
        reason: "foreign_command",
        detail: `deployment ${d.id} belongs to agent ${d.agentId}, not to agent ${agentId}`,
        owner: d.agentId,
      };
}

/** The agent received the command: QUEUED → DELIVERED (later states ignore it). */
export function applyAck(agentId: string, now: Date, agentInstance: string): Rule {
  return (d) => {
    const wrong = foreign(d, agentId);
    if (wrong) return wrong;
    if (!canMove(d.state, S.DEPLOYMENT_STATE_DELIVERED)) return ignore;
    const message = `delivered to agent ${d.agentId}${agentInstance ? ` (${agentInstance})` : ""}`;
    const deployment = { ...d, state: S.DEPLOYMENT_STATE_DELIVERED, updatedAt: now, message, deliveredAt: now };
    return {
      kind: "apply",
      update: {
        deployment,
        event: { time: now, state: deployment.state, message, replicas: undefined, failure: undefined },
      },
    };
  };
}

/** Progress of the rollout: only IN_PROGRESS (UNSPECIFIED counts as IN_PROGRESS). */
export function applyProgress(agentId: string, now: Date, progress: CommandProgress): Rule {
  return (d, eventCount) => {
    const wrong = foreign(d, agentId);
    if (wrong) return wrong;
    const state = progress.state === S.DEPLOYMENT_STATE_UNSPECIFIED ? S.DEPLOYMENT_STATE_IN_PROGRESS : progress.state;
    if (!isKnownState(state))
      return refuse("unknown_state", `progress state ${progress.state} is not a deployment state`);
    // DELIVERED: a check before anything is changed (the agent's image pre-flight).
    if (state !== S.DEPLOYMENT_STATE_IN_PROGRESS && state !== S.DEPLOYMENT_STATE_DELIVERED) {
      return refuse("backwards_state", `progress may only report delivered or in_progress, not ${stateName(state)}`);
    }
    if (isFinal(d.state)) return ignore; // a late progress event after the result
    if (d.state !== state && !canMove(d.state, state)) {
      return refuse("backwards_state", `${stateName(d.state)} → ${stateName(state)}`);
    }
    // The agent re-sends its latest progress after a reconnect: keep the timeline free of repeats.
    if (state === d.state && progress.message === d.message && sameReplicas(progress.replicas, d.replicas)) {
      return ignore;
    }
    // A bounded timeline: beyond the limit only the record moves on (the final event is always kept).
    if (eventCount >= MAX_EVENTS_PER_DEPLOYMENT && d.state === state) return ignore;
    const deployment: Deployment = {
      ...d,
      state,
      updatedAt: now,
      deliveredAt: d.deliveredAt ?? now,
      message: progress.message,
      replicas: progress.replicas ?? d.replicas,
      previousImages: progress.previousImages.length > 0 ? progress.previousImages : d.previousImages,
      appliedImages: progress.appliedImages.length > 0 ? progress.appliedImages : d.appliedImages,
      resolvedDigest: progress.resolvedDigest || d.resolvedDigest,
    };
    return {
      kind: "apply",
      update: {
        deployment,
        event: { time: now, state, message: progress.message, replicas: progress.replicas, failure: undefined },
      },
    };
  };
}

/** The agent's final result. */
export function applyResult(agentId: string, now: Date, result: CommandResult): Rule {
  return (d) => {
    const wrong = foreign(d, agentId);
    if (wrong) return wrong;
    if (!isKnownState(result.state))
      return refuse("unknown_state", `result state ${result.state} is not a deployment state`);
    if (!AGENT_RESULT_STATES.has(result.state)) {
      return refuse("not_a_result_state", `a result must be a final state, not ${stateName(result.state)}`);
    }
    if (isFinal(d.state)) return ignore; // a re-sent result, or the orchestrator ended it first
    const state = result.state;
    const failure =
      state === S.DEPLOYMENT_STATE_SUCCEEDED
        ? undefined
        : (result.failure ?? { reason: 0, message: result.message || "the agent reported no reason" });
    const message = result.message || failure?.message || stateName(state);
    const deployment: Deployment = {
      ...d,
      state,
      failure,
      updatedAt: now,
      deliveredAt: d.deliveredAt ?? now,
      message,
      replicas: result.replicas ?? d.replicas,
      previousImages: result.previousImages.length > 0 ? result.previousImages : d.previousImages,
      appliedImages: result.appliedImages.length > 0 ? result.appliedImages : d.appliedImages,
      resolvedDigest: result.resolvedDigest || d.resolvedDigest,
    };
    return {
      kind: "apply",
      update: { deployment, event: { time: now, state, message, replicas: deployment.replicas, failure } },
    };
  };
}

/** Ends a deployment the agent never started, from one of the states in `from`. */
function endUnapplied(
  from: ReadonlySet<DeploymentState>,
  state: DeploymentState,
  now: Date,
  failure: Failure,
  extra: Partial<Deployment> = {},
): Rule {
  return (d) => {
    if (!from.has(d.state) || !canMove(d.state, state)) return ignore;
    const deployment: Deployment = { ...d, ...extra, state, failure, updatedAt: now, message: failure.message };
    return {
      kind: "apply",
      update: { deployment, event: { time: now, state, message: failure.message, replicas: undefined, failure } },
    };
  };
}

const QUEUED_ONLY: ReadonlySet<DeploymentState> = new Set([S.DEPLOYMENT_STATE_QUEUED]);
const NOT_STARTED: ReadonlySet<DeploymentState> = new Set([S.DEPLOYMENT_STATE_QUEUED, S.DEPLOYMENT_STATE_DELIVERED]);

/** QUEUED → CANCELLED (the command was withdrawn from the queue before delivery). */
export function cancelRule(now: Date, by: string, reason: string): Rule {
  const message = `cancelled by ${by} before delivery${reason ? `: ${reason}` : ""}; the workload was not changed`;
  return endUnapplied(QUEUED_ONLY, S.DEPLOYMENT_STATE_CANCELLED, now, {
    reason: FailureReason.FAILURE_REASON_CANCELLED,
    message,
  });
}

/** QUEUED → EXPIRED (the queue deadline passed before the command was sent). */
export function expireRule(now: Date): Rule {
  return (d, n) =>
    endUnapplied(QUEUED_ONLY, S.DEPLOYMENT_STATE_EXPIRED, now, {
      reason: FailureReason.FAILURE_REASON_QUEUE_DEADLINE_EXCEEDED,
      message: `not started before its queue deadline ${d.queueDeadline?.toISOString() ?? "?"} (agent ${d.agentId} offline or busy); the workload was not changed`,
    })(d, n);
}

/** QUEUED or DELIVERED → SUPERSEDED: a newer deployment of the same workload succeeded first. */
export function supersedeRule(now: Date, newer: Deployment): Rule {
  return endUnapplied(
    NOT_STARTED,
    S.DEPLOYMENT_STATE_SUPERSEDED,
    now,
    {
      reason: FailureReason.FAILURE_REASON_SUPERSEDED,
      message: `not applied: the newer deployment ${newer.id} (${newer.image}) of the same workload succeeded first`,
    },
    { supersededBy: newer.id },
  );
}

/** Adapts a rule to the store's update callback, remembering the verdict for the caller. */
export function asStoreUpdate(rule: Rule, seen: { verdict?: Verdict }) {
  return (current: Deployment, eventCount: number): Update | undefined => {
    const verdict = rule(current, eventCount);
    seen.verdict = verdict;
    return verdict.kind === "apply" ? verdict.update : undefined;
  };
}

/** Same workload (agent, namespace, kind, name). */
export function sameTarget(a: Pick<Deployment, "agentId" | "namespace" | "kind" | "workload">, b: typeof a): boolean {
  return a.agentId === b.agentId && a.namespace === b.namespace && a.kind === b.kind && a.workload === b.workload;
}

/** Creation order of deployments: time, then id (ids start with the time, so ties are stable). */
export function createdBefore(a: { createdAt?: Date | undefined; id: string }, b: typeof a): boolean {
  const ta = a.createdAt?.getTime() ?? 0;
  const tb = b.createdAt?.getTime() ?? 0;
  return ta !== tb ? ta < tb : a.id < b.id;
}
