// The seam between the agent's connection (which receives commands and reports) and the
// features that touch Kubernetes (deploy/, describe/, update/).
import type { CommandProgress, CommandResult } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { Namespace, Workload } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

/** `resolvedDigest` is optional here: only the image pre-flight sets it (dispatch fills in ""). */
export type Progress = Omit<CommandProgress, "commandId" | "resolvedDigest"> & { resolvedDigest?: string };
export type Result = Omit<CommandResult, "commandId" | "resolvedDigest"> & { resolvedDigest?: string };

/** Thrown by describe look-ups; `reason` is a FailureReason value. */
export class ExecutorError extends Error {
  constructor(
    readonly reason: number,
    message: string,
  ) {
    super(message);
  }
}

/** What the command envelope says about a deploy: when it was created, and its queue deadline. */
export interface CommandTiming {
  createdAt?: Date | undefined;
  expiresAt?: Date | undefined;
}

export interface Executors {
  /** Applies a deploy command and follows the rollout to a final state; never throws. */
  deploy(
    command: import("@k8sdeploy/proto/node/k8sdeploy/v1/agent.js").DeployCommand,
    onProgress: (p: Progress) => void,
    timing?: CommandTiming,
  ): Promise<Result>;
  describeNamespaces(): Promise<Namespace[]>;
  describeWorkloads(namespace: string): Promise<Workload[]>;
  /** Updates the agent's own workload and waits for the new pod (rolls back if it never gets Ready); never throws. */
  updateAgent(
    command: import("@k8sdeploy/proto/node/k8sdeploy/v1/agent.js").UpdateAgentCommand,
    onProgress: (p: Progress) => void,
    commandId: string,
  ): Promise<Result>;
}
