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
import { Code, failedPrecondition, invalidArgument, notFound, permissionDenied, RpcError } from "../rpc/rpc-error.js";
import type { KeyRecord, Store, TrustPolicyRecord } from "../store/store.js";
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

/** A deploy key or a trust policy: bound to one agent, with namespace and workload allowlists. */
interface Scope {
  id: string;
  agentId: string;
  namespaces: string[];
  workloads: string[];
}

const scopeLabel = (scope: Scope) => (scope.id.startsWith("tp_") ? "trust policy" : "deploy key");

function scopeProblem(scope: Scope, target: Target): string | undefined {
  if (scope.namespaces.length > 0 && !scope.namespaces.includes(target.namespace)) {
    return `namespace "${target.namespace}" is not allowed for ${scopeLabel(scope)} ${scope.id} (allowed: ${scope.namespaces.join(", ")})`;
  }
  if (scope.workloads.length > 0 && !scope.workloads.includes(target.workload)) {
    return `workload "${target.workload}" is not allowed for ${scopeLabel(scope)} ${scope.id} (allowed: ${scope.workloads.join(", ")})`;
  }
  return undefined;
}

function checkScope(scope: Scope, target: Target): void {
  const problem = scopeProblem(scope, target);
  if (problem) throw permissionDenied(problem);
}

/**
 * The trust policy a Deploy with an ID token goes through: the token's policies whose allowlists
 * fit the target. Several on one agent: the oldest. On several agents the target does not say
 * which cluster is meant, so the caller must make the policies distinct (environment, ref).
 */
function policyForDeploy(policies: TrustPolicyRecord[], target: Target): TrustPolicyRecord {
  const fitting = policies.filter((p) => scopeProblem(p, target) === undefined);
  const [first] = fitting;
  if (!first) {
    throw permissionDenied(policies.map((p) => scopeProblem(p, target)).join("; "));
  }
  const agents = new Set(fitting.map((p) => p.agentId));
  if (agents.size > 1) {
    throw failedPrecondition(
      `this OIDC token matches trust policies of several agents (${fitting.map((p) => `${p.id} → ${p.agentId}`).join(", ")}) that all allow ${target.namespace}/${target.workload}: ` +
        "make them distinct (e.g. by environment or ref) so that one job deploys through one agent",
    );
  }
  return first;
}

/** Who did it, for timelines and logs. */
function callerLabel(caller: Caller): string {
  if (caller.kind === "admin") return "an admin";
  if (caller.kind === "key") return `deploy key ${caller.key.id}`;
  return `${caller.claims.repository}@${caller.claims.ref || "?"} (OIDC, trust policy ${caller.policies.map((p) => p.id).join("/")})`;
}

export class DeployService {
  /** `key <id>` / `policy <id>` → when this process last recorded its use (see dueForTouch). */
  private readonly touchedAt = new Map<string, number>();

  constructor(private readonly deps: DeployServiceDeps) {}

  deploy = async (request: DeployRequest, ctx: CallContext): Promise<DeployResponse> => {
    const caller = await this.deps.auth.caller(ctx.authorization);
    if (caller.kind === "admin") {
      throw permissionDenied("Deploy needs a deploy key (kdk_…): it decides the agent; admins use RollbackDeployment");
    }
    const valid = validateDeployRequest(request);
    const now = new Date();
    // The caller is gone (deadline passed, cancelled) before anything was stored: do nothing.
    if (ctx.signal.aborted)
      throw new RpcError(Code.CANCELLED, "the call ended before the deploy was accepted; nothing was done");
    // Admission checked the caller's deadline before the store lookups above; a stalled store can
    // have used it up since. (grpc-js ends the call only at `grpc-timeout`, which may be later.)
    if (ctx.deadline !== undefined && now.getTime() >= ctx.deadline) {
      throw new RpcError(
        Code.DEADLINE_EXCEEDED,
        "the caller's deadline passed before the deploy could be stored; nothing was done",
      );
    }
    let initial: { deployment: Deployment; event: DeploymentEvent };
    let scope: string | undefined;
    let via: Record<string, unknown>;
    if (caller.kind === "key") {
      checkScope(caller.key, valid);
      this.touchKey(caller.key, now);
      scope = valid.idempotencyKey ? `${caller.key.id}:${valid.idempotencyKey}` : undefined;
      initial = newDeployment(
        newDeploymentId(),
        caller.key.agentId,
        caller.key.id,
        valid,
        now,
        this.queueDeadline(valid, now),
      );
      via = { keyId: caller.key.id };
    } else {
      const policy = policyForDeploy(caller.policies, valid);
      this.touchPolicy(policy, now);
      scope = valid.idempotencyKey ? `${policy.id}:${valid.idempotencyKey}` : undefined;
      initial = newDeployment(newDeploymentId(), policy.agentId, "", valid, now, this.queueDeadline(valid, now), "", {
        policyId: policy.id,
        claims: caller.claims,
      });
      via = {
        trustPolicyId: policy.id,
        oidc: {
          repository: caller.claims.repository,
          ref: caller.claims.ref,
          environment: caller.claims.environment,
          workflowRef: caller.claims.workflowRef,
          actor: caller.claims.actor,
          runId: caller.claims.runId,
          tokenId: caller.claims.tokenId,
        },
      };
    }
    const result = await this.submit(initial, scope);
    this.deps.log.info(
      {
        deploymentId: result.deployment.id,
        agentId: result.deployment.agentId,
        ...via,
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
    if (!this.dueForTouch(`key ${key.id}`, key.lastUsedAt, now)) return;
    this.deps.store.keys.updateKey(key.id, { lastUsedAt: now }).catch((err: unknown) => {
      this.deps.log.debug({ err, keyId: key.id }, "recording when a deploy key was last used failed");
    });
  }

  private touchPolicy(policy: TrustPolicyRecord, now: Date): void {
    if (!this.dueForTouch(`policy ${policy.id}`, policy.lastUsedAt, now)) return;
    this.deps.store.trust.updatePolicy(policy.id, { lastUsedAt: now }).catch((err: unknown) => {
      this.deps.log.debug({ err, trustPolicyId: policy.id }, "recording when a trust policy was last used failed");
    });
  }

  /**
   * Whether `lastUsedAt` of a key or policy is worth writing: at most once per record and
   * LAST_USED_RESOLUTION_MS in this process, however hot it is (concurrent Deploys all read the
   * same stale lastUsedAt, and their writes would only contend for the same record).
   */
  private dueForTouch(id: string, lastUsedAt: Date | undefined, now: Date): boolean {
    if (lastUsedAt && now.getTime() - lastUsedAt.getTime() < LAST_USED_RESOLUTION_MS) return false;
    const touched = this.touchedAt.get(id);
    if (touched !== undefined && now.getTime() - touched < LAST_USED_RESOLUTION_MS) return false;
    this.touchedAt.set(id, now.getTime());
    if (this.touchedAt.size > 10_000) {
      for (const [other, at] of this.touchedAt)
        if (now.getTime() - at >= LAST_USED_RESOLUTION_MS) this.touchedAt.delete(other);
    }
    return true;
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

  /**
   * A deploy key reads only what it could have deployed: its agent, inside its allowlists; an ID
   * token what one of its trust policies could have.
   */
  private async readable(id: string, caller: Caller): Promise<Deployment> {
    if (id === "") throw invalidArgument("id: required (the deployment id returned by Deploy)");
    const deployment = await this.deps.store.deployments.getDeployment(id);
    const covers = (scope: Scope) =>
      deployment !== undefined && scope.agentId === deployment.agentId && scopeProblem(scope, deployment) === undefined;
    if (
      !deployment ||
      (caller.kind === "key" && !covers(caller.key)) ||
      (caller.kind === "oidc" && !caller.policies.some(covers))
    ) {
      throw notFound(`deployment ${id} not found`);
    }
    return deployment;
  }

  cancelDeployment = async (request: CancelDeploymentRequest, ctx: CallContext): Promise<CancelDeploymentResponse> => {
    const caller = await this.deps.auth.caller(ctx.authorization);
    const actor =
      caller.kind === "admin"
        ? "admin"
        : caller.kind === "key"
          ? caller.key.id
          : `${caller.claims.repository} (OIDC, trust policy ${caller.policies.map((p) => p.id).join("/")})`;
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
    const by = callerLabel(caller);
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
