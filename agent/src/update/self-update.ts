// UpdateAgentCommand: move the agent's own Deployment (container "agent") to a new image, only
// when the user opted in, and make a broken image undo itself. The running agent patches its
// Deployment (rolling with surge: its own pod keeps running until a new one is Ready), watches the
// Deployment's status with `get` only (the Role names this one Deployment), and, if the rollout has
// not completed within the command's ready timeout, restores the previous image (ROLLED_BACK,
// AGENT_NOT_READY). A new pod is Ready when the new agent is connected to the orchestrator (its
// readiness probe); the Deployment controller then retires the old pod, i.e. this process.
//
// Resumable: the update is recorded on the Deployment (annotation k8sdeploy.dev/agent-update), so
// a redelivery of the same command — to a restarted agent, or to the new agent after the handover
// — follows the same update instead of starting another.
import type { UpdateAgentCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import {
  type ContainerImage,
  DeploymentState,
  FailureReason,
  WorkloadKind,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { AppsV1Api, V1Deployment } from "@kubernetes/client-node";
import { ANNOTATION_CHANGE_CAUSE } from "../deploy/annotations.js";
import { applyImagePatch } from "../deploy/patch.js";
import { rolloutStatus } from "../deploy/progress.js";
import { selectContainers } from "../deploy/select-containers.js";
import { imageProblem } from "../deploy/validate.js";
import { getWorkload, patchWorkload, workloadOp } from "../deploy/workload.js";
import type { Executors, Progress, Result } from "../executor.js";
import { createClients, toFailure } from "../kube.js";

export const AGENT_CONTAINER = "agent";
export const ANNOTATION_AGENT_VERSION = "k8sdeploy.dev/agent-version";
/** JSON {id, previousImage, image, version, startedAt, outcome?}: the agent update in progress or last done. */
export const ANNOTATION_AGENT_UPDATE = "k8sdeploy.dev/agent-update";

export const DEFAULT_READY_TIMEOUT_SECONDS = 180;
const POLL_MS = 1000;

export interface SelfUpdateOptions {
  /** The user opted in (K8SDEPLOY_AUTO_UPDATE=true). */
  enabled: boolean;
  /** Namespace and name of the agent's own Deployment. */
  namespace: string;
  deploymentName: string;
  /** How often the Deployment's status is read while waiting (default 1000 ms). */
  pollMs?: number;
}

interface UpdateRecord {
  id: string;
  previousImage: string;
  image: string;
  version: string;
  startedAt: string;
  outcome?: "succeeded" | "rolled-back";
}

/** Tracks the update running in this process, so that main.ts can let it finish after a handover. */
export class SelfUpdateState {
  private running: Promise<Result> | undefined;
  get inProgress(): Promise<Result> | undefined {
    return this.running;
  }
  track(p: Promise<Result>): Promise<Result> {
    this.running = p;
    void p.finally(() => {
      if (this.running === p) this.running = undefined;
    });
    return p;
  }
}

export function createUpdateExecutor(
  kc: import("@kubernetes/client-node").KubeConfig,
  opts: SelfUpdateOptions,
  state = new SelfUpdateState(),
): Executors["updateAgent"] {
  const { apps } = createClients(kc);
  return (command, onProgress = () => {}, commandId = "") =>
    state.track(update(apps, opts, command, onProgress, commandId));
}

const DEPLOYMENT = WorkloadKind.WORKLOAD_KIND_DEPLOYMENT;

function fail(reason: FailureReason, message: string, extra: Partial<Result> = {}): Result {
  return {
    state: DeploymentState.DEPLOYMENT_STATE_FAILED,
    failure: { reason, message },
    message,
    previousImages: [],
    appliedImages: [],
    ...extra,
  };
}

function readRecord(d: V1Deployment): UpdateRecord | undefined {
  const raw = d.metadata?.annotations?.[ANNOTATION_AGENT_UPDATE];
  if (!raw) return undefined;
  try {
    const r = JSON.parse(raw) as UpdateRecord;
    return typeof r.id === "string" && typeof r.previousImage === "string" ? r : undefined;
  } catch {
    return undefined;
  }
}

async function update(
  apps: AppsV1Api,
  opts: SelfUpdateOptions,
  command: UpdateAgentCommand,
  onProgress: (p: Progress) => void,
  commandId: string,
): Promise<Result> {
  if (!opts.enabled) {
    return fail(
      FailureReason.FAILURE_REASON_INVALID_COMMAND,
      "auto-update is disabled on this agent; set K8SDEPLOY_AUTO_UPDATE=true to allow it",
    );
  }
  const problem = imageProblem(command.image);
  if (problem) return fail(FailureReason.FAILURE_REASON_INVALID_COMMAND, problem);
  const { namespace, deploymentName: name } = opts;
  const where = `deployment "${name}" in namespace "${namespace}"`;
  const timeoutSeconds = command.readyTimeoutSeconds || DEFAULT_READY_TIMEOUT_SECONDS;
  const version = command.version ? ` (version ${command.version})` : "";
  const say = (
    message: string,
    replicas?: Progress["replicas"],
    images?: { previous: ContainerImage[]; applied: ContainerImage[] },
  ) => {
    try {
      onProgress({
        state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
        message,
        replicas,
        previousImages: images?.previous ?? [],
        appliedImages: images?.applied ?? [],
      });
    } catch {
      // Reporting must not break the update.
    }
  };

  let verb = "get";
  try {
    const current = (await getWorkload(apps, DEPLOYMENT, namespace, name)) as V1Deployment;
    const selected = selectContainers(current.spec?.template?.spec, [AGENT_CONTAINER], command.image, where);
    const record = readRecord(current);
    const resumed = commandId !== "" && record?.id === commandId;
    const previousImage = resumed ? record.previousImage : (selected[0]?.image ?? "");
    const previousImages = selected.map((c) => ({ ...c, image: previousImage }));
    const appliedImages = selected.map((c) => ({ ...c, image: command.image }));
    const images = { previousImages, appliedImages };

    if (resumed && record.outcome === "rolled-back") {
      const message = `the update to ${command.image}${version} was already rolled back to ${previousImage}: the new agent pod did not become Ready`;
      return {
        state: DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
        failure: { reason: FailureReason.FAILURE_REASON_AGENT_NOT_READY, message },
        message,
        ...images,
      };
    }
    const started = resumed ? Date.parse(record.startedAt) || Date.now() : Date.now();
    const deadline = started + timeoutSeconds * 1000;

    if (!resumed) {
      if (selected.every((c) => c.image === command.image) && rolloutStatus(DEPLOYMENT, current).done) {
        return {
          state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
          message: `the agent (${where}) already runs ${command.image}`,
          ...images,
        };
      }
      verb = "patch";
      const rec: UpdateRecord = {
        id: commandId,
        previousImage,
        image: command.image,
        version: command.version,
        startedAt: new Date(started).toISOString(),
      };
      // Surge, never unavailability: a Recreate strategy would stop this agent before its
      // successor is Ready, leaving no one to roll back.
      const surgeSafe = keepsAvailability(current);
      if (!surgeSafe) {
        await patchWorkload(apps, DEPLOYMENT, namespace, name, {
          spec: {
            strategy: {
              $retainKeys: ["type", "rollingUpdate"],
              type: "RollingUpdate",
              rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
            },
          },
        });
      }
      await applyImagePatch(apps, DEPLOYMENT, namespace, name, {
        images: appliedImages,
        workloadAnnotations: {
          [ANNOTATION_CHANGE_CAUSE]: `k8sdeploy agent update to ${command.image}${version}`,
          [ANNOTATION_AGENT_VERSION]: command.version || null,
          [ANNOTATION_AGENT_UPDATE]: JSON.stringify(rec),
        },
      });
      say(
        `patched ${where}: agent ${previousImage} → ${command.image}${version}${surgeSafe ? "" : " (strategy set to RollingUpdate maxSurge 1, maxUnavailable 0)"}; waiting up to ${timeoutSeconds} s for the new agent pod to become Ready`,
        undefined,
        { previous: previousImages, applied: appliedImages },
      );
    } else {
      say(`resuming the agent update to ${command.image}${version}; waiting for the new agent pod to become Ready`);
    }

    verb = "get";
    const outcome = await waitForRollout(apps, namespace, name, deadline, opts.pollMs ?? POLL_MS, (m, r) => say(m, r));
    if (outcome.done) {
      await annotate(apps, namespace, name, {
        id: commandId,
        previousImage,
        image: command.image,
        version: command.version,
        startedAt: new Date(started).toISOString(),
        outcome: "succeeded",
      });
      return {
        state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
        message: `the agent (${where}) runs ${command.image}${version}: the new agent pod is Ready`,
        replicas: outcome.replicas,
        ...images,
      };
    }

    // Not Ready in time: restore the previous image, and wait (bounded) for that rollout.
    const why = `the new agent pod did not become Ready within ${timeoutSeconds} s${outcome.reason ? ` (${outcome.reason})` : ""}`;
    say(`${why}; restoring ${previousImage}`, outcome.replicas);
    verb = "patch";
    await applyImagePatch(apps, DEPLOYMENT, namespace, name, {
      images: previousImages,
      workloadAnnotations: {
        [ANNOTATION_CHANGE_CAUSE]: `k8sdeploy agent update to ${command.image} rolled back: ${why}`,
        [ANNOTATION_AGENT_VERSION]: null,
        [ANNOTATION_AGENT_UPDATE]: JSON.stringify({
          id: commandId,
          previousImage,
          image: command.image,
          version: command.version,
          startedAt: new Date(started).toISOString(),
          outcome: "rolled-back",
        } satisfies UpdateRecord),
      },
    });
    verb = "get";
    const back = await waitForRollout(apps, namespace, name, Date.now() + 120_000, opts.pollMs ?? POLL_MS, () => {});
    const message = `${why}; rolled back to ${previousImage}${back.done ? "" : " (that rollout is still in progress)"}`;
    return {
      state: DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
      failure: { reason: FailureReason.FAILURE_REASON_AGENT_NOT_READY, message: why },
      message,
      replicas: back.replicas,
      ...images,
    };
  } catch (err) {
    const f = toFailure(err, workloadOp(DEPLOYMENT, verb, namespace, name));
    return fail(f.reason, f.message);
  }
}

/** True when a rolling update of the Deployment never takes a replica away before its successor is up. */
export function keepsAvailability(d: V1Deployment): boolean {
  const strategy = d.spec?.strategy;
  if (strategy?.type === "Recreate") return false;
  const replicas = d.spec?.replicas ?? 1;
  const raw = strategy?.rollingUpdate?.maxUnavailable ?? "25%";
  const unavailable =
    typeof raw === "string" && raw.endsWith("%")
      ? Math.floor((Number(raw.slice(0, -1)) * replicas) / 100)
      : Number(raw);
  return unavailable === 0;
}

async function annotate(apps: AppsV1Api, namespace: string, name: string, record: UpdateRecord): Promise<void> {
  await patchWorkload(apps, DEPLOYMENT, namespace, name, {
    metadata: { annotations: { [ANNOTATION_AGENT_UPDATE]: JSON.stringify(record) } },
  }).catch(() => undefined);
}

/** Reads the Deployment until its rollout is complete or the deadline passes (the Role allows `get` only). */
async function waitForRollout(
  apps: AppsV1Api,
  namespace: string,
  name: string,
  deadline: number,
  pollMs: number,
  onChange: (message: string, replicas: Progress["replicas"]) => void,
): Promise<{ done: boolean; replicas?: Progress["replicas"]; reason?: string }> {
  let last = "";
  for (;;) {
    const d = await getWorkload(apps, DEPLOYMENT, namespace, name);
    const s = rolloutStatus(DEPLOYMENT, d);
    if (s.done) return { done: true, replicas: s.replicas };
    if (s.message !== last) {
      last = s.message;
      onChange(s.message, s.replicas);
    }
    const reason = s.progressDeadlineExceeded ?? s.replicaFailure;
    if (Date.now() >= deadline) return { done: false, replicas: s.replicas, reason: reason ?? s.message };
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
}
