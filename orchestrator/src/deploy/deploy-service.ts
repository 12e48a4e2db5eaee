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
import { audit, outcomeOf, reasonOf } from "../audit/audit.js";
import type { Authenticator, Caller } from "../auth/authenticate.js";
import { newDeploymentId } from "../ids.js";
import type { Metrics } from "../metrics.js";
import { AsyncQueue } from "../rpc/async-queue.js";
import type { CallContext } from "../rpc/handler.js";
import { failedPrecondition, invalidArgument, notFound, permissionDenied } from "../rpc/rpc-error.js";
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
import type { Outcomes } from "./outcome.js";
import { type ValidDeploy, validateDeployRequest } from "./validate-deploy.js";

export interface DeployServiceDeps {
  store: Store;
  auth: Authenticator;
  log: Logger;
  metrics: Metrics;
  /** Queue timeout of a Deploy that names none. */
  defaultQueueTimeoutSeconds: number;
  outcomes: Outcomes;
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
  constructor(private readonly deps: DeployServiceDeps) {}

  deploy = async (request: DeployRequest, ctx: CallContext): Promise<DeployResponse> => {
    const caller = await this.deps.auth.caller(ctx.authorization);
    if (caller.kind !== "key") {
      throw permissionDenied("Deploy needs a deploy key (kdk_…): it decides the agent; admins use RollbackDeployment");
    }
    const valid = validateDeployRequest(request);
    checkScope(caller.key, valid);
    const now = new Date();
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
      await store.queue.enqueue(deployment.agentId, {
        id: deployment.id,
        createdAt: deployment.createdAt,
        expiresAt: deployment.queueDeadline,
        payload: { $case: "deploy", value: deployCommandOf(deployment) },
      });
      await store.bus.publish({ type: "queued", agentId: deployment.agentId });
    }
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
    const actor = caller.kind === "admin" ? "admin" : caller.key.id;
    const entry = {
      event: "deployment.cancel",
      actor,
      peer: ctx.peer,
      deploymentId: request.id,
      reason: request.reason,
    };
    try {
      const response = await this.cancel(request, caller);
      audit(this.deps.log, { ...entry, outcome: "ok" });
      return response;
    } catch (err) {
      audit(this.deps.log, { ...entry, outcome: outcomeOf(err), refusal: reasonOf(err) });
      throw err;
    }
  };

  private async cancel(request: CancelDeploymentRequest, caller: Caller): Promise<CancelDeploymentResponse> {
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
    this.deps.outcomes.ended(ended.deployment);
    return { deployment: ended.deployment };
  }

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
