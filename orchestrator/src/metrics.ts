// Prometheus metrics served on GET /metrics. `metrics` is the process-wide instance; tests and
// embedders that want isolation can call createMetrics() and pass its registry to the HTTP server.
import { type DeploymentState, deploymentStateToJSON } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type IncreaseDataWithExemplar,
  type LabelValues,
  Registry,
} from "prom-client";

export interface Metrics {
  readonly registry: Registry;
  /** Agents holding a stream to this replica. */
  readonly agentsConnected: Gauge;
  /** Commands written to agent streams. */
  readonly commandsDelivered: Counter;
  /** Deployments accepted (Deploy and rollbacks). */
  readonly deploymentsCreated: Counter;
  /**
   * Deployments that reached a final state; label `state` = succeeded | failed | rolled_back |
   * timed_out. `inc({ state })` also takes a DeploymentState number and names it.
   */
  readonly deploymentsFinished: Counter<"state">;
  /**
   * Agent messages ignored because they broke the rules; label `reason` = foreign_command |
   * unknown_state | backwards_state | not_a_result_state | unknown_command.
   */
  readonly agentMessagesRefused: Counter<"reason">;
  /** Deployments ended by the orchestrator without being applied; label `state` = expired | superseded. */
  readonly deploymentsEndedUnapplied: Counter<"state">;
  /**
   * Failed authentications on either port; label `kind` = admin | deploy_key | agent (by the
   * shape of the presented credential) | missing (none, or not `Bearer <token>`).
   */
  readonly authFailures: Counter<"kind">;
  /** Calls refused because their client address failed to authenticate too often. */
  readonly authRateLimited: Counter;
}

export interface CreateMetricsOptions {
  /** Include Node's default process metrics (default true). */
  defaultMetrics?: boolean;
}

export function createMetrics(options: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    agentsConnected: new Gauge({
      name: "k8sdeploy_agents_connected",
      help: "Agents holding a stream to this replica.",
      registers: [registry],
    }),
    commandsDelivered: new Counter({
      name: "k8sdeploy_commands_delivered_total",
      help: "Commands written to agent streams by this replica.",
      registers: [registry],
    }),
    deploymentsCreated: new Counter({
      name: "k8sdeploy_deployments_created_total",
      help: "Deployments accepted by this replica.",
      registers: [registry],
    }),
    deploymentsFinished: new DeploymentStateCounter({
      name: "k8sdeploy_deployments_finished_total",
      help: "Deployments that reached a final state, by state.",
      labelNames: ["state"] as const,
      registers: [registry],
    }),
    agentMessagesRefused: new Counter({
      name: "k8sdeploy_agent_messages_refused_total",
      help: "Agent messages ignored because they broke the protocol's rules (another agent's command, a state that does not exist or moves backwards), by reason.",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    deploymentsEndedUnapplied: new Counter({
      name: "k8sdeploy_deployments_ended_unapplied_total",
      help: "Deployments the orchestrator ended without sending them (queue deadline passed, a newer deployment of the workload succeeded), by state.",
      labelNames: ["state"] as const,
      registers: [registry],
    }),
    authFailures: new Counter({
      name: "k8sdeploy_auth_failures_total",
      help: "Failed authentications, by the kind of credential presented.",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    authRateLimited: new Counter({
      name: "k8sdeploy_auth_rate_limited_total",
      help: "Calls refused with RESOURCE_EXHAUSTED because their address failed to authenticate too often.",
      registers: [registry],
    }),
  };
}

/** `DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK` (6) → "rolled_back". */
export function deploymentStateLabel(state: DeploymentState | string): string {
  return typeof state === "number"
    ? deploymentStateToJSON(state)
        .replace(/^DEPLOYMENT_STATE_/, "")
        .toLowerCase()
    : state;
}

/** A Counter whose `state` label accepts DeploymentState numbers too (stored as their names). */
class DeploymentStateCounter extends Counter<"state"> {
  constructor(configuration: CounterConfiguration<"state">) {
    super(configuration);
    // prom-client assigns `inc` per instance in its constructor, so wrap that (not the prototype).
    const inc = this.inc.bind(this) as (arg?: unknown, value?: number) => void;
    this.inc = ((arg?: LabelValues<"state"> | number | IncreaseDataWithExemplar<"state">, value?: number) => {
      if (typeof arg === "object" && "state" in arg && arg.state !== undefined) {
        inc({ ...arg, state: deploymentStateLabel(arg.state as DeploymentState | string) }, value);
      } else {
        inc(arg, value);
      }
    }) as Counter<"state">["inc"];
  }
}

/** The process-wide metrics. */
export const metrics: Metrics = createMetrics();
