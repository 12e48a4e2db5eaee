// Assembles the Kubernetes-facing features into the Executors the connection uses.
import type { KubeConfig } from "@kubernetes/client-node";
import { createDeployExecutor, type DeployExecutorOptions } from "./deploy/deploy.js";
import { describeNamespaces } from "./describe/namespaces.js";
import { describeWorkloads } from "./describe/workloads.js";
import type { Executors } from "./executor.js";
import { createClients } from "./kube.js";
import { createUpdateExecutor, type SelfUpdateOptions, SelfUpdateState } from "./update/self-update.js";

export interface ExecutorsOptions {
  /** Self-update: opt-in flag and the agent's own Deployment. */
  selfUpdate: SelfUpdateOptions;
  deploy?: DeployExecutorOptions;
  /** Shared with main.ts: the self-update running in this process, if any. */
  selfUpdateState?: SelfUpdateState;
}

export function createExecutors(kc: KubeConfig, options: ExecutorsOptions): Executors {
  const { apps, core } = createClients(kc);
  return {
    deploy: createDeployExecutor(kc, options.deploy),
    describeNamespaces: () => describeNamespaces(core),
    describeWorkloads: (namespace) => describeWorkloads(apps, namespace),
    updateAgent: createUpdateExecutor(kc, options.selfUpdate, options.selfUpdateState ?? new SelfUpdateState()),
  };
}
