// Follows a deployment until it reaches a final state: WatchDeployment, resumed with after_seq when the stream
// drops, GetDeployment polling when the server has no Watch, all bounded by one overall deadline.
import { status } from "@grpc/grpc-js";
import { type Deployment, type DeploymentEvent, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { type DeployApi, describeGrpcError, isServiceError } from "./client.js";

/** Seconds the action waits beyond queue timeout + rollout timeout (a rollback, reporting, watch re-opening). */
export const SLACK_SECONDS = 120;
/** Seconds past the queue timeout after which a still-queued deployment is given up (and cancelled). */
export const QUEUED_SLACK_SECONDS = 5;

const FINAL_STATES = new Set([
  DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
  DeploymentState.DEPLOYMENT_STATE_FAILED,
  DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
  DeploymentState.DEPLOYMENT_STATE_TIMED_OUT,
  DeploymentState.DEPLOYMENT_STATE_CANCELLED,
  DeploymentState.DEPLOYMENT_STATE_SUPERSEDED,
  DeploymentState.DEPLOYMENT_STATE_EXPIRED,
]);

/** Errors after which the watch is opened again (or the poll repeated). Anything else ends the follow. */
const TRANSIENT = new Set([
  status.UNAVAILABLE,
  status.CANCELLED,
  status.DEADLINE_EXCEEDED,
  status.ABORTED,
  status.INTERNAL,
  status.UNKNOWN,
  status.RESOURCE_EXHAUSTED,
]);

export function isFinal(state: DeploymentState): boolean {
  return FINAL_STATES.has(state);
}

/** `in_progress`, `rolled_back`, … as used by the `status` output. */
export function stateName(state: DeploymentState): string {
  const name = DeploymentState[state];
  return name && state !== DeploymentState.UNRECOGNIZED
    ? name.replace(/^DEPLOYMENT_STATE_/, "").toLowerCase()
    : "unspecified";
}

/** How long a waiting step follows a deployment: its queue timeout, its rollout timeout and a little slack. */
export function waitSeconds(timeoutSeconds: number, queueTimeoutSeconds: number): number {
  return queueTimeoutSeconds + timeoutSeconds + SLACK_SECONDS;
}

/** Why the action gave up on a deployment that is not final when its deadline passed. */
export function describeUnfinished(
  deployment: Deployment,
  timeoutSeconds: number,
  queueTimeoutSeconds: number,
): string {
  const waited = waitSeconds(timeoutSeconds, queueTimeoutSeconds);
  if (deployment.state === DeploymentState.DEPLOYMENT_STATE_QUEUED) {
    return (
      `Deployment ${deployment.id} is still queued after ${queueTimeoutSeconds + QUEUED_SLACK_SECONDS} s: the agent seems offline. ` +
      "Check that the K8sDeploy agent of this cluster is running and connected to the orchestrator."
    );
  }
  return (
    `Deployment ${deployment.id} did not reach a final state within ${waited} s ` +
    `(queue ${queueTimeoutSeconds} s + timeout ${timeoutSeconds} s + ${SLACK_SECONDS} s); last state: ${stateName(deployment.state)}` +
    `${deployment.message ? `: ${deployment.message}` : ""}.`
  );
}

export interface FollowOptions {
  api: Pick<DeployApi, "watch" | "getDeployment">;
  /** The deployment as returned by Deploy. */
  initial: Deployment;
  /** Epoch milliseconds after which the action stops waiting. */
  deadline: number;
  /** Epoch milliseconds after which it stops waiting if the deployment is still queued. */
  queuedDeadline?: number;
  /** Called once per new event, in seq order. */
  onEvent?: (event: DeploymentEvent, deployment: Deployment) => void;
  /** Called for reconnects and the switch to polling. */
  onNotice?: (message: string) => void;
  /** Milliseconds between GetDeployment polls when Watch is unavailable (default 2000). */
  pollIntervalMs?: number;
  now?: () => number;
}

export interface FollowResult {
  deployment: Deployment;
  /** Every event seen, in seq order. */
  events: DeploymentEvent[];
  /** True when the deadline passed before a final state. */
  deadlineExceeded: boolean;
  /** How many times a dropped watch stream was reopened. */
  reconnects: number;
  /** True when the follow fell back to GetDeployment polling. */
  polled: boolean;
}

/** Thrown for errors that end the follow (UNAUTHENTICATED, NOT_FOUND, …). */
export class FollowError extends Error {
  constructor(
    readonly error: unknown,
    readonly deployment: Deployment,
    readonly events: DeploymentEvent[],
  ) {
    super(describeGrpcError(error), { cause: error });
    this.name = "FollowError";
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export async function followDeployment(options: FollowOptions): Promise<FollowResult> {
  const now = options.now ?? Date.now;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const id = options.initial.id;
  let deployment = options.initial;
  const events: DeploymentEvent[] = [];
  let lastSeq = 0;
  let reconnects = 0;
  let polled = false;

  const deadlineController = new AbortController();
  const timer = setTimeout(() => deadlineController.abort(), Math.max(0, options.deadline - now()));
  const queuedTimer =
    options.queuedDeadline === undefined
      ? undefined
      : setTimeout(
          () => {
            if (deployment.state === DeploymentState.DEPLOYMENT_STATE_QUEUED) deadlineController.abort();
          },
          Math.max(0, options.queuedDeadline - now()),
        );
  const signal = deadlineController.signal;
  const expired = () => signal.aborted || now() >= options.deadline;

  const accept = (event: DeploymentEvent, latest: Deployment | undefined) => {
    if (event.seq <= lastSeq) return;
    lastSeq = event.seq;
    events.push(event);
    // The event decides the state; the snapshot sent with it fills in the rest when it agrees.
    const base = latest ?? deployment;
    deployment =
      latest && latest.state === event.state
        ? latest
        : {
            ...base,
            state: event.state,
            message: event.message,
            replicas: event.replicas ?? base.replicas,
            failure: event.failure ?? (isFinal(event.state) ? base.failure : undefined),
          };
    options.onEvent?.(event, deployment);
  };
  const result = (): FollowResult => ({
    deployment,
    events,
    deadlineExceeded: !isFinal(deployment.state),
    reconnects,
    polled,
  });
  const fail = (error: unknown): never => {
    throw new FollowError(error, deployment, events);
  };

  try {
    // Watch, reopening the stream after drops; false when the server has no Watch.
    let backoffMs = 250;
    let watchAvailable = true;
    while (!isFinal(deployment.state) && !expired()) {
      const seqBefore = lastSeq;
      let reason: string;
      try {
        for await (const message of options.api.watch(id, lastSeq, signal)) {
          if (message.event) accept(message.event, message.deployment);
          if (isFinal(deployment.state)) break;
        }
        if (isFinal(deployment.state)) break;
        reason = "the stream ended before a final state";
      } catch (error) {
        if (expired()) break;
        if (isServiceError(error) && error.code === status.UNIMPLEMENTED) {
          watchAvailable = false;
          break;
        }
        if (!isServiceError(error) || !TRANSIENT.has(error.code)) fail(error);
        reason = describeGrpcError(error);
      }
      if (lastSeq > seqBefore) backoffMs = 250;
      reconnects++;
      options.onNotice?.(`Watch interrupted (${reason}); resuming after event ${lastSeq} in ${backoffMs} ms.`);
      await sleep(Math.min(backoffMs, options.deadline - now()), signal);
      backoffMs = Math.min(backoffMs * 2, 5000);
    }

    if (!watchAvailable) {
      polled = true;
      options.onNotice?.("WatchDeployment is not available on this server; polling GetDeployment instead.");
      while (!isFinal(deployment.state) && !expired()) {
        try {
          const response = await options.api.getDeployment(id);
          for (const event of response.events) {
            accept(event, event === response.events.at(-1) ? response.deployment : undefined);
          }
          if (response.deployment && isFinal(response.deployment.state)) deployment = response.deployment;
        } catch (error) {
          if (!isServiceError(error) || !TRANSIENT.has(error.code)) fail(error);
          options.onNotice?.(`GetDeployment failed (${describeGrpcError(error)}); retrying.`);
        }
        if (isFinal(deployment.state)) break;
        await sleep(Math.min(pollIntervalMs, options.deadline - now()), signal);
      }
    }
    return result();
  } finally {
    clearTimeout(timer);
    clearTimeout(queuedTimer);
  }
}
