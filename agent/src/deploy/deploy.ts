// The deploy command: validate, read the workload, choose containers, patch (once per deployment
// id), follow the rollout, roll back on failure when asked. Never throws.

import { DEFAULT_TIMEOUT_SECONDS } from "@k8sdeploy/proto/contract/limits.js";
import type { DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import {
  type ContainerImage,
  DeploymentState,
  type Failure,
  FailureReason,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { KubeConfig } from "@kubernetes/client-node";
import type { CommandTiming, Executors, Progress, Result } from "../executor.js";
import { createClients, httpStatus, type KubeClients, toFailure } from "../kube.js";
import { createPreflight, type Preflight, type PreflightOptions } from "../registry/preflight.js";
import {
  ANNOTATION_DEPLOYMENT_CREATED_AT,
  ANNOTATION_DEPLOYMENT_ID,
  ANNOTATION_PREVIOUS_IMAGES,
  ANNOTATION_PREVIOUS_TEMPLATE_DEPLOYMENT_ID,
  ANNOTATION_ROLLED_BACK,
  parsePreviousImages,
  parseRolledBack,
} from "./annotations.js";
import { applyImagePatch, deployPatch } from "./patch.js";
import { rolloutStatus } from "./progress.js";
import { reasonName, rollback } from "./rollback.js";
import { followRollout } from "./rollout.js";
import { selectContainers } from "./select-containers.js";
import { validateDeployCommand } from "./validate.js";
import { getWorkload, podTemplate, type WorkloadObject, workloadLabel, workloadOp } from "./workload.js";

export interface DeployExecutorOptions {
  /** Server-side timeout of each watch request; the watches are re-established after it. Default 240. */
  watchTimeoutSeconds?: number;
  /** Bound for waiting on a rollback's rollout. Default: the command's timeout, clamped to 30…300 s. */
  rollbackTimeoutSeconds?: number;
  /** Image pre-flight (registry/preflight.ts): mode, the agent's registry secret, TLS, timeouts. */
  preflight?: PreflightOptions;
}

/** Failures of the rollout itself, which a rollback can undo. */
const ROLLBACK_REASONS: ReadonlySet<FailureReason> = new Set([
  FailureReason.FAILURE_REASON_IMAGE_PULL,
  FailureReason.FAILURE_REASON_CRASH_LOOP,
  FailureReason.FAILURE_REASON_PROGRESS_DEADLINE_EXCEEDED,
  FailureReason.FAILURE_REASON_TIMEOUT,
]);

const MAX_PATCH_ATTEMPTS = 5;

/** Clock skew allowed between the orchestrator (which set the queue deadline) and this agent. */
export const DEADLINE_SKEW_MS = 30_000;

export function createDeployExecutor(kc: KubeConfig, options: DeployExecutorOptions = {}): Executors["deploy"] {
  const clients = createClients(kc);
  const preflight = createPreflight(options.preflight);
  return async (command, onProgress, timing = {}) => {
    // The digest the pre-flight resolved goes on the result too, whatever the outcome.
    let resolvedDigest: string | undefined;
    const emit = (p: Progress) => {
      if (p.resolvedDigest) resolvedDigest = p.resolvedDigest;
      try {
        onProgress(p);
      } catch {
        // A reporting problem must not break the deploy.
      }
    };
    try {
      const result = await deploy(clients, command, emit, options, timing, preflight);
      return { ...result, resolvedDigest: result.resolvedDigest || resolvedDigest || "" };
    } catch (err) {
      return failed({
        reason: FailureReason.FAILURE_REASON_KUBERNETES_API,
        message: `deployment ${command.deploymentId}: unexpected error: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  };
}

function failed(failure: Failure, extra: Partial<Result> = {}): Result {
  return {
    state: DeploymentState.DEPLOYMENT_STATE_FAILED,
    failure,
    message: failure.message,
    previousImages: [],
    appliedImages: [],
    ...extra,
  };
}

async function deploy(
  clients: KubeClients,
  requested: DeployCommand,
  emit: (p: Progress) => void,
  options: DeployExecutorOptions,
  timing: CommandTiming,
  preflight: Preflight,
): Promise<Result> {
  const problem = validateDeployCommand(requested);
  if (problem) return failed({ reason: FailureReason.FAILURE_REASON_INVALID_COMMAND, message: problem });
  // Image pre-flight before anything is patched; `command.image` may come back pinned by digest.
  const checked = await preflight(clients, requested, emit);
  if (!checked.ok) return checked.result;
  const command = checked.command;

  const { kind, namespace, workload: name, deploymentId: id } = command;
  const where = `${workloadLabel(kind, name)} in namespace "${namespace}"`;
  const timeoutSeconds = command.timeoutSeconds || DEFAULT_TIMEOUT_SECONDS;
  const deadline = Date.now() + timeoutSeconds * 1000;

  // Read, select, patch; again on a conflict (the workload changed between read and patch).
  let obj: WorkloadObject | undefined;
  let previous: ContainerImage[] = [];
  let previousTemplateId: string | undefined;
  let resumed = false;
  for (let attempt = 1; !obj; attempt++) {
    let current: WorkloadObject;
    try {
      current = await getWorkload(clients.apps, kind, namespace, name);
    } catch (err) {
      return failed(toFailure(err, workloadOp(kind, "get", namespace, name)));
    }
    const annotations = current.metadata?.annotations ?? {};
    if (annotations[ANNOTATION_DEPLOYMENT_ID] === id) {
      // Redelivered command: it was applied already; do not patch again, report on it.
      resumed = true;
      previous = parsePreviousImages(annotations[ANNOTATION_PREVIOUS_IMAGES]) ?? [];
      previousTemplateId = annotations[ANNOTATION_PREVIOUS_TEMPLATE_DEPLOYMENT_ID];
      const rolledBack = parseRolledBack(annotations[ANNOTATION_ROLLED_BACK]);
      if (rolledBack?.deploymentId === id) {
        return {
          state: DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
          failure: rolledBack.failure,
          message: `deployment ${id} was already applied to ${where} and rolled back after ${reasonName(rolledBack.failure.reason)}: ${rolledBack.failure.message}`,
          replicas: rolloutStatus(kind, current).replicas,
          previousImages: previous,
          appliedImages: previous.map((c) => ({ ...c, image: command.image })),
        };
      }
      obj = current;
      break;
    }
    const unapplied = refuseUnapplied(id, where, annotations, timing);
    if (unapplied) return unapplied;
    try {
      previous = selectContainers(podTemplate(current)?.spec, command.containers, command.image, where);
    } catch (err) {
      return failed(toFailure(err, workloadOp(kind, "get", namespace, name)));
    }
    previousTemplateId = podTemplate(current)?.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID];
    try {
      obj = await applyImagePatch(
        clients.apps,
        kind,
        namespace,
        name,
        deployPatch(command, previous, previousTemplateId, current.metadata?.resourceVersion, timing.createdAt),
      );
    } catch (err) {
      if (httpStatus(err) === 409 && attempt < MAX_PATCH_ATTEMPTS) continue;
      return failed(toFailure(err, workloadOp(kind, "patch", namespace, name)), { previousImages: previous });
    }
  }

  const previousImages = previous;
  const appliedImages = previous.map((c) => ({ ...c, image: command.image }));
  const images = { previousImages, appliedImages };
  const started = rolloutStatus(kind, obj);
  emit({
    state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
    message: resumed
      ? `deployment ${id} was already applied to ${where}; following its rollout`
      : `patched ${where}: ${changesText(previousImages, command.image)}; waiting for the rollout`,
    replicas: started.replicas,
    previousImages,
    appliedImages,
  });

  const progress = (message: string, replicas?: Progress["replicas"]) =>
    emit({
      state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      message,
      replicas,
      previousImages: [],
      appliedImages: [],
    });

  const outcome = await followRollout({
    kc: clients.kc,
    kind,
    namespace,
    name,
    selector: obj.spec?.selector,
    deploymentId: id,
    deadline,
    timeoutSeconds,
    onProgress: (s) => progress(s.message, s.replicas),
    watchTimeoutSeconds: options.watchTimeoutSeconds,
  });

  if (outcome.result === "succeeded") {
    return {
      state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
      message: `${where} runs ${command.image}: ${outcome.status.message}`,
      replicas: outcome.status.replicas,
      ...images,
    };
  }

  const failure = outcome.failure;
  if (command.rollbackOnFailure && ROLLBACK_REASONS.has(failure.reason)) {
    if (previousImages.length === 0) {
      return failed(failure, {
        message: `${failure.message}; not rolled back: the previous images are unknown (annotation ${ANNOTATION_PREVIOUS_IMAGES} is missing)`,
        replicas: outcome.status?.replicas,
        ...images,
      });
    }
    const rb = await rollback({
      clients,
      kind,
      namespace,
      name,
      selector: obj.spec?.selector,
      deploymentId: id,
      previous: previousImages,
      previousTemplateDeploymentId: previousTemplateId,
      failure,
      timeoutSeconds: options.rollbackTimeoutSeconds ?? Math.min(Math.max(timeoutSeconds, 30), 300),
      onProgress: (message, s) => progress(message, s?.replicas),
      watchTimeoutSeconds: options.watchTimeoutSeconds,
    });
    if (rb.ok) {
      return {
        state: DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
        failure,
        message: rb.message,
        replicas: rb.status?.replicas,
        ...images,
      };
    }
    return failed(rb.failure, { replicas: rb.status?.replicas ?? outcome.status?.replicas, ...images });
  }
  return {
    state:
      outcome.result === "timed-out"
        ? DeploymentState.DEPLOYMENT_STATE_TIMED_OUT
        : DeploymentState.DEPLOYMENT_STATE_FAILED,
    failure,
    message: failure.message,
    replicas: outcome.status?.replicas,
    ...images,
  };
}

/**
 * A deploy that was not applied yet must not be: past its queue deadline (EXPIRED), or older than
 * the deploy the workload records (SUPERSEDED: applying it would revert newer images, e.g. when
 * an old command is redelivered after an agent restart). Creation order is time, then id.
 */
function refuseUnapplied(
  id: string,
  where: string,
  annotations: Record<string, string>,
  timing: CommandTiming,
): Result | undefined {
  const unchanged = "; the workload was not changed";
  if (timing.expiresAt && Date.now() > timing.expiresAt.getTime() + DEADLINE_SKEW_MS) {
    return {
      state: DeploymentState.DEPLOYMENT_STATE_EXPIRED,
      failure: {
        reason: FailureReason.FAILURE_REASON_QUEUE_DEADLINE_EXCEEDED,
        message: `deployment ${id} reached the agent after its queue deadline ${timing.expiresAt.toISOString()}${unchanged}`,
      },
      message: `deployment ${id} expired before it could start${unchanged}`,
      previousImages: [],
      appliedImages: [],
    };
  }
  const recordedId = annotations[ANNOTATION_DEPLOYMENT_ID];
  const recordedAt = Date.parse(annotations[ANNOTATION_DEPLOYMENT_CREATED_AT] ?? "");
  const createdAt = timing.createdAt?.getTime();
  if (recordedId === undefined || Number.isNaN(recordedAt) || createdAt === undefined) return undefined;
  if (createdAt < recordedAt || (createdAt === recordedAt && id < recordedId)) {
    const message = `not applied: ${where} already runs the newer deployment ${recordedId} (created ${new Date(recordedAt).toISOString()}); deployment ${id} is older${unchanged}`;
    return {
      state: DeploymentState.DEPLOYMENT_STATE_SUPERSEDED,
      failure: { reason: FailureReason.FAILURE_REASON_SUPERSEDED, message },
      message,
      previousImages: [],
      appliedImages: [],
    };
  }
  return undefined;
}

/** `web: ghcr.io/acme/web:1 → ghcr.io/acme/web:2, init container migrate: … → …` */
function changesText(previous: readonly ContainerImage[], image: string): string {
  return previous.map((c) => `${c.init ? "init container " : ""}${c.container}: ${c.image} → ${image}`).join(", ");
}
