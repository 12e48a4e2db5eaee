// UpdateAgentCommand: point the agent's own Deployment (container "agent") at a new image, only
// when the user opted in. Does not wait: the rollout replaces this very process.

import type { UpdateAgentCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState, FailureReason, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { KubeConfig } from "@kubernetes/client-node";
import { ANNOTATION_CHANGE_CAUSE } from "../deploy/annotations.js";
import { applyImagePatch } from "../deploy/patch.js";
import { selectContainers } from "../deploy/select-containers.js";
import { imageProblem } from "../deploy/validate.js";
import { getWorkload, workloadOp } from "../deploy/workload.js";
import type { Executors, Result } from "../executor.js";
import { createClients, toFailure } from "../kube.js";

export const AGENT_CONTAINER = "agent";
export const ANNOTATION_AGENT_VERSION = "k8sdeploy.dev/agent-version";

export interface SelfUpdateOptions {
  /** The user opted in (K8SDEPLOY_AUTO_UPDATE=true). */
  enabled: boolean;
  /** Namespace and name of the agent's own Deployment. */
  namespace: string;
  deploymentName: string;
}

export function createUpdateExecutor(kc: KubeConfig, opts: SelfUpdateOptions): Executors["updateAgent"] {
  const { apps } = createClients(kc);
  const DEPLOYMENT = WorkloadKind.WORKLOAD_KIND_DEPLOYMENT;
  const fail = (reason: FailureReason, message: string, extra: Partial<Result> = {}): Result => ({
    state: DeploymentState.DEPLOYMENT_STATE_FAILED,
    failure: { reason, message },
    message,
    previousImages: [],
    appliedImages: [],
    ...extra,
  });

  return async (command: UpdateAgentCommand): Promise<Result> => {
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
    let verb = "get";
    try {
      const current = await getWorkload(apps, DEPLOYMENT, namespace, name);
      const previousImages = selectContainers(current.spec?.template?.spec, [AGENT_CONTAINER], command.image, where);
      const appliedImages = previousImages.map((c) => ({ ...c, image: command.image }));
      if (previousImages.every((c) => c.image === command.image)) {
        return {
          state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
          message: `the agent (${where}) already runs ${command.image}`,
          previousImages,
          appliedImages,
        };
      }
      const version = command.version ? ` (version ${command.version})` : "";
      verb = "patch";
      await applyImagePatch(apps, DEPLOYMENT, namespace, name, {
        images: appliedImages,
        workloadAnnotations: {
          [ANNOTATION_CHANGE_CAUSE]: `k8sdeploy agent update to ${command.image}${version}`,
          [ANNOTATION_AGENT_VERSION]: command.version || null,
        },
      });
      return {
        state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
        message: `patched ${where} to ${command.image}${version}; the new agent replaces this one as the rollout proceeds`,
        previousImages,
        appliedImages,
      };
    } catch (err) {
      const f = toFailure(err, workloadOp(DEPLOYMENT, verb, namespace, name));
      return fail(f.reason, f.message);
    }
  };
}
