// DeployService: what CI calls with a deploy key. Deploy queues and returns at once; Get and
// Watch read the deployment and its timeline from the store, so any replica can answer.

import { MAX_CANCEL_REASON_LENGTH } from "@k8sdeploy/proto/contract/limits.js";
import type {
  CancelDeploymentRequest,
  CancelDeploymentResponse,
  DeployRequest,
  DeployResponse,
  GetDeploymentRequest,
  GetDeploymentResponse,
  WatchDeploymentRequest,
  WatchDeploymentResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import type { Deployment, DeploymentEvent } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { Logger } from "pino";
import type { Authenticator, Caller } from "../auth/authenticate.js";
import { newDeploymentId } from "../ids.js";
import type { Metrics } from "../metrics.js";
import { AsyncQueue } from "../rpc/async-queue.js";
import type { CallContext } from "../rpc/handler.js";
import { Code, failedPrecondition, invalidArgument, notFound, permissionDenied, RpcError } from "../rpc/rpc-error.js";
import type { KeyRecord, Store } from "../store/store.js";
import {
  asStoreUpdate,
  cancelRule,
  deployCommandOf,
  isFinal,
  newDeployment,
  stateName,
  type Verdict,
} from "./lifecycle.js";
import { type ValidDeploy, validateDeployRequest } from "./validate-deploy.js";

export interface DeployServiceDeps {
  store: Store;
  auth: Authenticator;
  log: Logger;
  metrics: Metrics;
  /** Queue timeout of a Deploy that names none. */
  defaultQueueTimeoutSeconds: number;
}

/** `lastUsedAt` is coarse: written at most once a minute per key, and never fails a deploy. */
const LAST_USED_RESOLUTION_MS = 60_000;

type Target = Pick<ValidDeploy, "namespace" | "workload">;

function scopeProblem(key: KeyRecord, target: Target): string | undefined {
  if (key.namespaces.length > 0 && !key.namespaces.includes(target.namespace)) {
    return `namespace "${target.namespace}" is not allowed for deploy key ${key.id} (allowed: ${key.namespaces.join(", ")})`;
  }
  if (key.workloads.length > 0 && !key.workloads.includes(target.workload)) {
    return `workload "${target.workload}" is not allowed for deploy key ${key.id} (allowed: ${key.workloads.join(", ")})`;
  }
  return undefined;
}

function checkScope(key: KeyRecord, target: Target): void {
  const problem = scopeProblem(key, target);
  if (problem) throw permissionDenied(problem);
}

export class DeployService {
  /** Key id → when this process last recorded its use: one write per key and minute, however hot. */
  private readonly keyTouchedAt = new Map<string, number>();

  constructor(private readonly deps: DeployServiceDeps) {}

  deploy = async (request: DeployRequest, ctx: CallContext): Promise<DeployResponse> => {
    const caller = await this.deps.auth.caller(ctx.authorization);
    if (caller.kind !== "key") {
      throw permissionDenied("Deploy needs a deploy key (kdk_…): it decides the agent; admins use RollbackDeployment");
    }
    const valid = validateDeployRequest(request);
    checkScope(caller.key, valid);
    const now = new Date();
    // The caller is gone (deadline passed, cancelled) before anything was stored: do nothing.
    if (ctx.signal.aborted)
      throw new RpcError(Code.CANCELLED, "the call ended before the deploy was accepted; nothing was done");
    this.touchKey(caller.key, now);
    const scope = valid.idempotencyKey ? `${caller.key.id}:${valid.idempotencyKey}` : undefined;
    const result = await this.submit(
      newDeployment(newDeploymentId(), caller.key.agentId, caller.key.id, valid, now, this.queueDeadline(valid, now)),
      scope,
    );
    this.deps.log.info(
      {
        deploymentId: result.deployment.id,
        agentId: result.deployment.agentId,
        keyId: caller.key.id,
        namespace: valid.namespace,
        workload: valid.workload,
        image: valid.image,
        origin: valid.origin,
        created: result.created,
      },
      "deploy accepted",
    );
    return result;
  };

  /** When a deployment created `now` expires unapplied. */
  queueDeadline(request: Pick<ValidDeploy, "queueTimeoutSeconds">, now: Date): Date {
    const seconds = request.queueTimeoutSeconds || this.deps.defaultQueueTimeoutSeconds;
    return new Date(now.getTime() + seconds * 1000);
  }

  /** Best effort and coarse: a hot key must never fail or slow down its deploys. */
  private touchKey(key: KeyRecord, now: Date): void {
    if (key.lastUsedAt && now.getTime() - key.lastUsedAt.getTime() < LAST_USED_RESOLUTION_MS) return;
    const touched = this.keyTouchedAt.get(key.id);
    if (touched !== undefined && now.getTime() - touched < LAST_USED_RESOLUTION_MS) return;
    this.keyTouchedAt.set(key.id, now.getTime());
    if (this.keyTouchedAt.size > 10_000) {
      for (const [id, at] of this.keyTouchedAt)
        if (now.getTime() - at >= LAST_USED_RESOLUTION_MS) this.keyTouchedAt.delete(id);
    }
    this.deps.store.keys.updateKey(key.id, { lastUsedAt: now }).catch((err: unknown) => {
      this.deps.log.debug({ err, keyId: key.id }, "recording when a deploy key was last used failed");
    });
  }

  /** Stores a new deployment and queues its command (shared with RollbackDeployment). */
  async submit(
    initial: { deployment: Deployment; event: DeploymentEvent },
    idempotencyScope?: string,
  ): Promise<{ deployment: Deployment; created: boolean }> {
    const { store } = this.deps;
    const { deployment, created } = await store.deployments.createDeployment(
      initial.deployment,
      initial.event,
      idempotencyScope,
    );
    // An idempotent retry of a still-queued deployment re-queues it: enqueue ignores a command id
    // that is already queued, and this repairs a crash between storing and queueing.
    if (created || deployment.state === initial.deployment.state) {
      // Sent together, after the record exists: the wake-up reaches this replica's own stream of the
      // agent at once (the bus hands local listeners their messages without a Redis round trip), so
      // the stream's read of the queue follows the enqueue in the same write.
      // The wake-up is best effort (a lost one is made up by the hub's sweep): once the command is
      // queued the deploy is accepted, whatever happens to it.
      const queued = store.queue.enqueue(deployment.agentId, {
        id: deployment.id,
        createdAt: deployment.createdAt,
        expiresAt: deployment.queueDeadline,
        payload: { $case: "deploy", value: deployCommandOf(deployment) },
      });
      const woken = store.bus.publish({ type: "queued", agentId: deployment.agentId }).catch((err: unknown) => {
        this.deps.log.debug({ err, agentId: deployment.agentId }, "waking the agent's stream failed; the sweep will");
      });
      await queued;
      await woken;
    }
    // Answer only once the queued command is on the replicas (a failover must not lose it).
    await store.syncReplicas();
    if (created) this.deps.metrics.deploymentsCreated.inc();
    return { deployment, created };
  }

  /** A deploy key reads only what it could have deployed: its agent, inside its allowlists. */
  private async readable(id: string, caller: Caller): Promise<Deployment> {
    if (id === "") throw invalidArgument("id: required (the deployment id returned by Deploy)");
    const deployment = await this.deps.store.deployments.getDeployment(id);
    if (
      !deployment ||
      (caller.kind === "key" &&
        (caller.key.agentId !== deployment.agentId || scopeProblem(caller.key, deployment) !== undefined))
    ) {
      throw notFound(`deployment ${id} not found`);
    }
    return deployment;
  }

  cancelDeployment = async (request: CancelDeploymentRequest, ctx: CallContext): Promise<CancelDeploymentResponse> => {
    const caller = await this.deps.auth.caller(ctx.authorization);
    if (request.reason.length > MAX_CANCEL_REASON_LENGTH) {
      throw invalidArgument(`reason: at most ${MAX_CANCEL_REASON_LENGTH} characters, got ${request.reason.length}`);
    }
    const deployment = await this.readable(request.id, caller);
    if (isFinal(deployment.state)) {
      throw failedPrecondition(`deployment ${deployment.id} is ${stateName(deployment.state)} already`);
    }
    const { store } = this.deps;
    // Withdraw first: only a command no stream was ever handed can be cancelled truthfully.
    const outcome = await store.queue.withdraw(deployment.agentId, deployment.id);
    if (outcome === "sent") {
      throw failedPrecondition(
        `deployment ${deployment.id} was already sent to agent ${deployment.agentId} (${stateName(deployment.state)}) and may be applied; wait for its outcome and roll it back if needed`,
      );
    }
    const by = caller.kind === "admin" ? "an admin" : `deploy key ${caller.key.id}`;
    const seen: { verdict?: Verdict } = {};
    const ended = await store.deployments.appendEvent(
      deployment.id,
      asStoreUpdate(cancelRule(new Date(), by, request.reason.trim()), seen),
    );
    if (!ended) {
      const now = await store.deployments.getDeployment(deployment.id);
      throw failedPrecondition(
        `deployment ${deployment.id} is ${stateName(now?.state ?? deployment.state)}; only a queued deployment can be cancelled`,
      );
    }
    this.deps.metrics.deploymentsFinished.inc({ state: ended.deployment.state });
    this.deps.log.info(
      { deploymentId: deployment.id, agentId: deployment.agentId, by, reason: request.reason },
      "deployment cancelled",
    );
    return { deployment: ended.deployment };
  };

  getDeployment = async (request: GetDeploymentRequest, ctx: CallContext): Promise<GetDeploymentResponse> => {
    const caller = await this.deps.auth.caller(ctx.authorization);
    const deployment = await this.readable(request.id, caller);
    return { deployment, events: await this.deps.store.deployments.listEvents(deployment.id, 0) };
  };

  watchDeployment = (request: WatchDeploymentRequest, ctx: CallContext): AsyncIterable<WatchDeploymentResponse> =>
    this.watch(request, ctx);

  private async *watch(request: WatchDeploymentRequest, ctx: CallContext): AsyncGenerator<WatchDeploymentResponse> {
    const caller = await this.deps.auth.caller(ctx.authorization);
    const initial = await this.readable(request.id, caller);
    const { store } = this.deps;
    // Subscribe before reading the history so nothing falls between the two; dedupe by seq.
    const live = new AsyncQueue<{ deployment: Deployment; event: DeploymentEvent }>(ctx.signal);
    const subscription = await store.deployments.followFeed(undefined, (entry) => {
      if (entry.deployment.id === initial.id) live.push(entry);
    });
    try {
      let lastSeq = request.afterSeq;
      // Read the record first: the history read next contains every event up to its state.
      let current = (await store.deployments.getDeployment(initial.id)) ?? initial;
      const history = await store.deployments.listEvents(initial.id, lastSeq);
      for (const event of history) {
        lastSeq = event.seq;
        // Replayed events carry the deployment as it is now; only the events differ.
        yield { event, deployment: current };
      }
      if (isFinal(current.state) && history.length === 0) {
        // Resuming after the final event: nothing more will come.
        return;
      }
      if (history.some((e) => isFinal(e.state))) return;
      for await (const entry of live) {
        if (entry.event.seq <= lastSeq) continue;
        lastSeq = entry.event.seq;
        current = entry.deployment;
        yield entry;
        if (isFinal(current.state)) return;
      }
    } finally {
      subscription.close();
      live.end();
    }
  }
}
