// Admin RPCs over deployments: list with filters and pages, a live feed, and roll back.

import { parseImageReference } from "@k8sdeploy/proto/contract/image-ref.js";
import type {
  ListDeploymentsRequest,
  ListDeploymentsResponse,
  RollbackDeploymentRequest,
  RollbackDeploymentResponse,
  WatchDeploymentsRequest,
  WatchDeploymentsResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { ChangeKind, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { AdminAgents } from "../agents/admin-agents.js";
import { newDeploymentId } from "../ids.js";
import { AsyncQueue } from "../rpc/async-queue.js";
import type { CallContext } from "../rpc/handler.js";
import { failedPrecondition, invalidArgument, notFound } from "../rpc/rpc-error.js";
import { InvalidPageTokenError, matchesFilter } from "../store/pagination.js";
import type { FeedEntry, Store } from "../store/store.js";
import type { DeployService } from "./deploy-service.js";
import { isFinal, newDeployment } from "./lifecycle.js";
import type { ValidDeploy } from "./validate-deploy.js";

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;

export class AdminDeployments {
  constructor(
    private readonly store: Store,
    private readonly deployService: DeployService,
    private readonly agents: AdminAgents,
  ) {}

  listDeployments = async (request: ListDeploymentsRequest): Promise<ListDeploymentsResponse> => {
    if (request.pageSize > MAX_PAGE_SIZE) throw invalidArgument(`page_size: at most ${MAX_PAGE_SIZE}`);
    const filter = { agentId: request.agentId, namespace: request.namespace, states: request.states };
    try {
      return await this.store.deployments.listDeployments(
        filter,
        request.pageSize || DEFAULT_PAGE_SIZE,
        request.pageToken,
      );
    } catch (err) {
      if (err instanceof InvalidPageTokenError) throw invalidArgument(err.message);
      throw err;
    }
  };

  watchDeployments = (request: WatchDeploymentsRequest, ctx: CallContext): AsyncIterable<WatchDeploymentsResponse> =>
    this.watch(request, ctx);

  private async *watch(request: WatchDeploymentsRequest, ctx: CallContext): AsyncGenerator<WatchDeploymentsResponse> {
    const filter = { agentId: request.agentId, namespace: request.namespace };
    const queue = new AsyncQueue<FeedEntry>(ctx.signal);
    const subscription = await this.store.deployments.followFeed(request.cursor || undefined, (entry) => {
      if (matchesFilter(entry.deployment, filter)) queue.push(entry);
    });
    try {
      for await (const entry of queue) yield entry;
    } finally {
      subscription.close();
    }
  }

  rollbackDeployment = async (request: RollbackDeploymentRequest): Promise<RollbackDeploymentResponse> => {
    if (request.id === "") throw invalidArgument("id: required (the deployment to roll back)");
    const original = await this.store.deployments.getDeployment(request.id);
    if (!original) throw notFound(`deployment ${request.id} not found`);
    if (original.changeKind === ChangeKind.CHANGE_KIND_AGENT_UPDATE) {
      throw failedPrecondition(
        `${original.id} is an agent update: a failed one rolls itself back; install another version with \`k8sdeploy agent update ${original.agentId} --image …\``,
      );
    }
    if (!isFinal(original.state)) {
      throw failedPrecondition(`deployment ${original.id} is still running; roll back once it has finished`);
    }
    if (original.state === DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK) {
      throw failedPrecondition(`deployment ${original.id} was already rolled back by the agent`);
    }
    // The images come from the original's own agent: agent reports apply only to that agent's
    // deployments, and the rollback goes to the same agent. They are checked again anyway.
    for (const p of original.previousImages) {
      try {
        parseImageReference(p.image);
      } catch {
        throw failedPrecondition(`deployment ${original.id} recorded a previous image that is not an image reference`);
      }
    }
    const images = new Set(original.previousImages.map((p) => p.image));
    const image = [...images][0];
    if (images.size !== 1 || image === undefined) {
      throw failedPrecondition(
        images.size === 0
          ? `deployment ${original.id} recorded no previous images (it never changed the workload)`
          : `deployment ${original.id} changed containers that had different images; deploy each one explicitly`,
      );
    }
    await this.agents.active(original.agentId);
    const now = new Date();
    const valid: ValidDeploy = {
      namespace: original.namespace,
      kind: original.kind,
      workload: original.workload,
      containers: original.previousImages.map((p) => p.container),
      image,
      timeoutSeconds: original.timeoutSeconds,
      rollbackOnFailure: false,
      idempotencyKey: "",
      origin: {
        repository: original.origin?.repository ?? "",
        sha: "",
        ref: "",
        actor: "dashboard",
        runUrl: "",
        workflow: `rollback of ${original.id}`,
      },
      queueTimeoutSeconds: 0,
    };
    const { deployment } = await this.deployService.submit(
      newDeployment(
        newDeploymentId(),
        original.agentId,
        "",
        valid,
        now,
        this.deployService.queueDeadline(valid, now),
        original.id,
      ),
    );
    return { deployment };
  };
}
