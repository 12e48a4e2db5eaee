// Agent updates: an UpdateAgentCommand for an agent's own Deployment, recorded as a Deployment of
// kind CHANGE_KIND_AGENT_UPDATE. Reusing the Deployment record (instead of a new record type)
// gives an update the same timeline, storage (memory and Redis), feed, WatchDeployment(s),
// ListDeployments filters and dashboard pages as a deploy, with no second copy of any of them;
// the agent reports on it with the same ack/progress/result messages, keyed by the record's id.

import { parseImageReference } from "@k8sdeploy/proto/contract/image-ref.js";
import type { UpdateAgentRequest } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import {
  ChangeKind,
  type Deployment,
  DeploymentState,
  WorkloadKind,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { isFinal, newDeployment } from "../deploy/lifecycle.js";
import type { ValidDeploy } from "../deploy/validate-deploy.js";
import { newDeploymentId } from "../ids.js";
import { failedPrecondition, invalidArgument } from "../rpc/rpc-error.js";
import type { AgentRecord, Store } from "../store/store.js";
import { isConnected, offlineMessage } from "./connection-state.js";
import type { ReleaseChannel } from "./release-channel.js";

export interface AgentUpdateOptions {
  /** How long the new agent pod may take to become Ready (sent to the agent). */
  readySeconds: number;
  /** At most this many agent updates in flight, across replicas. */
  concurrency: number;
}

const RUNNING_STATES = [
  DeploymentState.DEPLOYMENT_STATE_QUEUED,
  DeploymentState.DEPLOYMENT_STATE_DELIVERED,
  DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
];

const QUEUE_DEADLINE_MS = 10 * 60_000;

const isAgentUpdate = (d: Deployment) => d.changeKind === ChangeKind.CHANGE_KIND_AGENT_UPDATE;

export class AgentUpdates {
  constructor(
    private readonly store: Store,
    readonly channel: ReleaseChannel,
    private readonly options: AgentUpdateOptions,
  ) {}

  /** Deployments (deploys and agent updates) not yet final, of one agent or of all. */
  async running(agentId?: string): Promise<Deployment[]> {
    const page = await this.store.deployments.listDeployments({ agentId, states: RUNNING_STATES }, 500, "");
    return page.deployments.filter((d) => !isFinal(d.state));
  }

  async inFlight(): Promise<number> {
    return (await this.running()).filter(isAgentUpdate).length;
  }

  /** Why this agent cannot be updated now, or undefined. */
  async obstacle(agent: AgentRecord): Promise<string | undefined> {
    if (agent.revokedAt) return `agent ${agent.id} was revoked`;
    if (!agent.hello?.autoUpdateEnabled) {
      return `agent ${agent.id} has not opted in to remote updates; set K8SDEPLOY_AUTO_UPDATE=true on it (overlay auto-update)`;
    }
    if (!isConnected(agent)) return offlineMessage(agent);
    const busy = await this.running(agent.id);
    const update = busy.find(isAgentUpdate);
    if (update) return `agent ${agent.id} is already being updated (${update.id})`;
    if (busy.length > 0) {
      return `agent ${agent.id} has ${busy.length === 1 ? "a deploy" : `${busy.length} deploys`} running (${busy[0]!.id}); agents are never updated during a deploy — try again when it has finished`;
    }
    const inFlight = await this.inFlight();
    if (inFlight >= this.options.concurrency) {
      return `${inFlight} agent update(s) are running already (K8SDEPLOY_AGENT_UPDATE_CONCURRENCY=${this.options.concurrency}); try again when one has finished`;
    }
    return undefined;
  }

  /** Checks the preconditions (FAILED_PRECONDITION naming the obstacle), records and queues the update. */
  async start(agent: AgentRecord, request: Pick<UpdateAgentRequest, "image">, actor: string): Promise<Deployment> {
    const release = this.channel.current();
    const image = request.image || release?.image || "";
    if (image === "") {
      throw invalidArgument(
        "image: required when the orchestrator has no agent release (K8SDEPLOY_AGENT_RELEASE_VERSION/_IMAGE or _FILE)",
      );
    }
    try {
      parseImageReference(image);
    } catch (err) {
      throw invalidArgument(`image: ${(err as Error).message}`);
    }
    const problem = await this.obstacle(agent);
    if (problem) throw failedPrecondition(problem);
    const version = release && image === release.image ? release.version : "";
    const now = new Date();
    const id = newDeploymentId();
    const namespace = agent.hello?.namespace || "k8sdeploy";
    const workload = agent.hello?.agentDeployment || "k8sdeploy-agent";
    const message = `agent update to ${version ? `${version} (${image})` : image} queued for agent ${agent.id}`;
    const target: ValidDeploy = {
      namespace,
      kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
      workload,
      containers: ["agent"],
      image,
      timeoutSeconds: this.options.readySeconds,
      rollbackOnFailure: true,
      idempotencyKey: "",
      origin: { repository: "", sha: "", ref: "", actor: "", runUrl: "", workflow: `agent update (${actor})` },
      pinDigest: false,
      queueTimeoutSeconds: 0,
    };
    // The agent is connected now; an update it has not started in 10 minutes expires instead of
    // being applied much later.
    const queued = newDeployment(id, agent.id, "", target, now, new Date(now.getTime() + QUEUE_DEADLINE_MS));
    const deployment: Deployment = {
      ...queued.deployment,
      message,
      changeKind: ChangeKind.CHANGE_KIND_AGENT_UPDATE,
      agentVersion: version,
    };
    const { deployment: stored } = await this.store.deployments.createDeployment(deployment, {
      ...queued.event,
      message,
    });
    await this.store.agents.updateAgent(agent.id, { lastUpdateId: id });
    await this.store.queue.enqueue(agent.id, {
      id,
      createdAt: now,
      expiresAt: deployment.queueDeadline,
      payload: {
        $case: "updateAgent",
        value: { image, version, readyTimeoutSeconds: this.options.readySeconds },
      },
    });
    await this.store.bus.publish({ type: "queued", agentId: agent.id });
    return stored;
  }
}
