// Turns a received Command into a Job for the tracker, calling the Kubernetes executors.
import type { Command, DescribeReply } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState, type Failure, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { ExecutorError, type Executors, type Result } from "../executor.js";
import type { FinalMessage, Job } from "./command-tracker.js";
import type { KeyedSerializer } from "./keyed-serializer.js";

export interface DispatchOptions {
  /** K8SDEPLOY_AUTO_UPDATE: update_agent commands are refused unless the user opted in. */
  autoUpdate: boolean;
  agentVersion: string;
  /** Serializes deploys per workload (see KeyedSerializer). */
  workloads: KeyedSerializer;
}

export function jobFor(command: Command, executors: Executors, options: DispatchOptions): Job {
  const id = command.id;
  const payload = command.payload;
  switch (payload?.$case) {
    case "deploy":
      return async (onProgress) => {
        try {
          const d = payload.value;
          const key = `${d.namespace}/${d.kind}/${d.workload}`;
          const timing = { createdAt: command.createdAt, expiresAt: command.expiresAt };
          return result(
            id,
            await options.workloads.run(key, () =>
              executors.deploy(d, (p) => onProgress({ ...p, resolvedDigest: p.resolvedDigest ?? "" }), timing),
            ),
          );
        } catch (error) {
          // Executors promise never to throw; if one does, report instead of crashing.
          return failed(id, FailureReason.FAILURE_REASON_KUBERNETES_API, `deploy failed: ${messageOf(error)}`);
        }
      };
    case "describeNamespaces":
      return async () => {
        try {
          return reply(id, { namespaces: await executors.describeNamespaces() });
        } catch (error) {
          return reply(id, { error: failureOf(error) });
        }
      };
    case "describeWorkloads":
      return async () => {
        try {
          return reply(id, { workloads: await executors.describeWorkloads(payload.value.namespace) });
        } catch (error) {
          return reply(id, { error: failureOf(error) });
        }
      };
    case "updateAgent":
      return async (onProgress) => {
        if (!options.autoUpdate) {
          return failed(
            id,
            FailureReason.FAILURE_REASON_INVALID_COMMAND,
            "remote agent updates are disabled on this agent (set K8SDEPLOY_AUTO_UPDATE=true to allow them)",
          );
        }
        try {
          return result(
            id,
            await executors.updateAgent(
              payload.value,
              (p) => onProgress({ ...p, resolvedDigest: p.resolvedDigest ?? "" }),
              id,
            ),
          );
        } catch (error) {
          return failed(id, FailureReason.FAILURE_REASON_KUBERNETES_API, `agent update failed: ${messageOf(error)}`);
        }
      };
    default:
      return async () =>
        failed(
          id,
          FailureReason.FAILURE_REASON_INVALID_COMMAND,
          `unknown or empty command (agent ${options.agentVersion} may be older than the orchestrator)`,
        );
  }
}

function result(commandId: string, r: Result): FinalMessage {
  return { $case: "result", value: { ...r, resolvedDigest: r.resolvedDigest ?? "", commandId } };
}

function reply(commandId: string, r: Partial<Omit<DescribeReply, "commandId">>): FinalMessage {
  return { $case: "describeReply", value: { namespaces: [], workloads: [], ...r, commandId } };
}

function failed(commandId: string, reason: FailureReason, message: string): FinalMessage {
  return {
    $case: "result",
    value: {
      commandId,
      state: DeploymentState.DEPLOYMENT_STATE_FAILED,
      failure: { reason, message },
      message,
      previousImages: [],
      appliedImages: [],
      resolvedDigest: "",
    },
  };
}

function failureOf(error: unknown): Failure {
  if (error instanceof ExecutorError) return { reason: error.reason, message: error.message };
  return { reason: FailureReason.FAILURE_REASON_KUBERNETES_API, message: messageOf(error) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
