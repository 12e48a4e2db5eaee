// TEST HELPER — fake Executors for the connection layer's unit tests. They touch no Kubernetes
// API: a deploy emits one progress event and then waits until the test releases it, so tests
// control exactly when a command finishes and count how often each command was executed.
import type { DeployCommand, UpdateAgentCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import {
  DeploymentState,
  FailureReason,
  type Namespace,
  type Workload,
  WorkloadKind,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { ExecutorError, type Executors, type Progress, type Result } from "../../executor.js";

export class FakeExecutors implements Executors {
  /** deploymentId → number of times deploy() was called. */
  readonly deployCalls = new Map<string, number>();
  readonly updateCalls: UpdateAgentCommand[] = [];
  private readonly releases = new Map<string, () => void>();
  /** When false, deploys finish right after their progress event. */
  holdDeploys = true;
  /** When set, describeWorkloads throws this. */
  describeError: Error | undefined;

  async deploy(command: DeployCommand, onProgress: (p: Progress) => void): Promise<Result> {
    const id = command.deploymentId;
    this.deployCalls.set(id, (this.deployCalls.get(id) ?? 0) + 1);
    const previousImages = [{ container: "web", image: "example/web:old", init: false }];
    const appliedImages = [{ container: "web", image: command.image, init: false }];
    onProgress({
      state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      message: "patched; waiting for the rollout",
      replicas: { desired: 2, updated: 0, ready: 2, available: 2 },
      previousImages,
      appliedImages,
    });
    if (this.holdDeploys) {
      await new Promise<void>((resolve) => this.releases.set(id, resolve));
    }
    onProgress({
      state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      message: "2 of 2 replicas updated",
      replicas: { desired: 2, updated: 2, ready: 2, available: 2 },
      previousImages: [],
      appliedImages: [],
    });
    return {
      state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
      message: `rolled out ${command.image}`,
      replicas: { desired: 2, updated: 2, ready: 2, available: 2 },
      previousImages,
      appliedImages,
    };
  }

  /** True once deploy() for this id is waiting to be released. */
  isHeld(deploymentId: string): boolean {
    return this.releases.has(deploymentId);
  }

  /** Lets a held deploy finish. */
  release(deploymentId: string): void {
    const r = this.releases.get(deploymentId);
    if (r === undefined) throw new Error(`deploy ${deploymentId} is not held`);
    this.releases.delete(deploymentId);
    r();
  }

  async describeNamespaces(): Promise<Namespace[]> {
    return [{ name: "default", phase: "Active", createdAt: new Date(0) }];
  }

  async describeWorkloads(namespace: string): Promise<Workload[]> {
    if (this.describeError !== undefined) throw this.describeError;
    return [
      {
        kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
        name: "web",
        namespace,
        containers: [{ container: "web", image: "example/web:1", init: false }],
        replicas: { desired: 1, updated: 1, ready: 1, available: 1 },
        lastDeploymentId: "",
        createdAt: new Date(0),
      },
    ];
  }

  async updateAgent(command: UpdateAgentCommand): Promise<Result> {
    this.updateCalls.push(command);
    return {
      state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
      message: `agent image set to ${command.image}`,
      previousImages: [],
      appliedImages: [],
    };
  }
}

export function forbidden(message: string): ExecutorError {
  return new ExecutorError(FailureReason.FAILURE_REASON_PERMISSION_DENIED, message);
}
