// Prometheus metrics served on GET /metrics. `metrics` is the process-wide instance; tests and
// embedders that want isolation can call createMetrics() and pass its registry to the HTTP server.
import { type DeploymentState, deploymentStateToJSON } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type IncreaseDataWithExemplar,
  type LabelValues,
  Registry,
} from "prom-client";

export interface Metrics extends OperationsMetrics {
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
    ...createOperationsMetrics(registry),
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

// ---------------------------------------------------------------------------------------------
// Operations metrics: RPCs on both transports, deployment latencies, queues and agents, Redis,
// webhooks. Every label has a fixed or bounded set of values (README "Metrics" lists them):
//  - method/service: the contract's methods only (unknown paths are 404/UNIMPLEMENTED, not counted);
//  - code: the 17 gRPC status names;
//  - agent: at most QUEUE_TOP_AGENTS agent ids (those with the oldest waiting command);
//  - version: agent-reported, so sanitised (versionLabel) and capped at MAX_VERSION_LABELS values.
// Gauges that need a look at the store or the hub are computed only when scraped (collect()),
// from sources the app registers with setSources(); nothing is done per message or per deploy
// beyond a counter increment or a histogram observation.

/** Agents that get their own `agent` label on the per-agent queue gauges. */
export const QUEUE_TOP_AGENTS = 10;
/** Distinct `version` label values kept; further versions count as "other". */
export const MAX_VERSION_LABELS = 20;

/** What the per-scrape gauges read. Set by the app (setSources); absent sources export nothing. */
export interface MetricSources {
  /** Versions of the agent streams this replica holds (one entry per stream). */
  streamVersions?: () => Iterable<string>;
  /** Fleet-wide agents and queues (cached by the caller: every replica computes the same). */
  fleet?: () => Promise<FleetSnapshot>;
  /** Deliveries waiting to be sent or retried. */
  webhookBacklog?: () => Promise<number>;
}

export interface FleetSnapshot {
  /** Agents by connection state (connected | disconnected | never_connected | revoked) and version. */
  agents: { state: string; version: string; count: number }[];
  /** Over every non-revoked agent. */
  waiting: number;
  inFlight: number;
  /** Age of the oldest command never handed to an agent; undefined when none waits. */
  oldestWaitingSeconds: number | undefined;
  /** The QUEUE_TOP_AGENTS agents with the oldest waiting commands (then the most commands). */
  top: { agentId: string; waiting: number; inFlight: number; oldestWaitingSeconds: number }[];
}

type RpcLabels = "transport" | "service" | "method" | "code";

export interface OperationsMetrics {
  /** Finished RPCs; label transport = grpc | connect, code = gRPC status name (OK, UNAVAILABLE, …). */
  readonly rpcHandled: Counter<RpcLabels>;
  /** Handling time of unary RPCs (streams are counted in rpcHandled only: their length is their life). */
  readonly rpcDuration: Histogram<RpcLabels>;
  /** Created → delivered to the agent (its ack). */
  readonly deploymentDelivery: Histogram;
  /** Delivered → final state, by final state (only deployments the agent received). */
  readonly deploymentRun: Histogram<"state">;
  /** Created → final state, by final state. */
  readonly deploymentDuration: Histogram<"state">;
  /** Redis connection errors (socket errors, failed reconnects), by connection (main | feed | bus). */
  readonly redisErrors: Counter<"connection">;
  /** Webhook delivery attempts; result = delivered | http_error | timeout | network_error | refused. */
  readonly webhookAttempts: Counter<"format" | "result">;
  /** Deliveries that ended; outcome = delivered | failed (gave up). */
  readonly webhookDeliveries: Counter<"format" | "outcome">;
  /** Registers what the per-scrape gauges read (replaces earlier sources). */
  setSources(sources: MetricSources): void;
}

const RPC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DELIVERY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const ROLLOUT_BUCKETS = [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600];

function createOperationsMetrics(registry: Registry): OperationsMetrics {
  let sources: MetricSources = {};
  const registers = [registry];
  // A store that fails or is slow leaves these gauges out of one scrape instead of failing it.
  const fleet = () => orNothing(sources.fleet);
  new Gauge({
    name: "k8sdeploy_agent_streams",
    help: "Agent streams held by this replica, by agent version.",
    labelNames: ["version"] as const,
    registers,
    collect() {
      this.reset();
      if (!sources.streamVersions) return;
      const counts = new VersionCounts();
      for (const v of sources.streamVersions()) counts.add(v);
      for (const [version, n] of counts.entries()) this.set({ version }, n);
    },
  });
  new Gauge({
    name: "k8sdeploy_agents",
    help: "Registered agents by connection state (connected, disconnected, never_connected, revoked) and last reported version.",
    labelNames: ["state", "version"] as const,
    registers,
    async collect() {
      const snapshot = await fleet();
      this.reset();
      for (const a of snapshot?.agents ?? []) this.set({ state: a.state, version: a.version }, a.count);
    },
  });
  new Gauge({
    name: "k8sdeploy_queue_commands",
    help: "Unfinished commands over all agents: waiting (never handed to the agent) or in_flight (handed out, no result yet).",
    labelNames: ["state"] as const,
    registers,
    async collect() {
      const snapshot = await fleet();
      this.reset();
      if (!snapshot) return;
      this.set({ state: "waiting" }, snapshot.waiting);
      this.set({ state: "in_flight" }, snapshot.inFlight);
    },
  });
  new Gauge({
    name: "k8sdeploy_queue_oldest_waiting_seconds",
    help: "Age of the oldest command that no agent has received yet, over all agents (0 when none waits).",
    registers,
    async collect() {
      const snapshot = await fleet();
      this.reset();
      if (snapshot) this.set(snapshot.oldestWaitingSeconds ?? 0);
    },
  });
  new Gauge({
    name: "k8sdeploy_agent_queue_commands",
    help: `Unfinished commands of the ${QUEUE_TOP_AGENTS} agents with the oldest waiting commands, by state (waiting, in_flight).`,
    labelNames: ["agent", "state"] as const,
    registers,
    async collect() {
      const snapshot = await fleet();
      this.reset();
      for (const a of snapshot?.top ?? []) {
        this.set({ agent: a.agentId, state: "waiting" }, a.waiting);
        this.set({ agent: a.agentId, state: "in_flight" }, a.inFlight);
      }
    },
  });
  new Gauge({
    name: "k8sdeploy_agent_queue_oldest_waiting_seconds",
    help: `Age of the oldest waiting command of each of the ${QUEUE_TOP_AGENTS} agents with the oldest ones.`,
    labelNames: ["agent"] as const,
    registers,
    async collect() {
      const snapshot = await fleet();
      this.reset();
      for (const a of snapshot?.top ?? []) this.set({ agent: a.agentId }, a.oldestWaitingSeconds);
    },
  });
  new Gauge({
    name: "k8sdeploy_webhook_backlog",
    help: "Webhook deliveries waiting to be sent or retried.",
    registers,
    async collect() {
      const n = await orNothing(sources.webhookBacklog);
      this.reset();
      if (n !== undefined) this.set(n);
    },
  });
  return {
    rpcHandled: new Counter({
      name: "k8sdeploy_rpc_handled_total",
      help: "RPCs finished, by transport (grpc, connect), service, method and gRPC status code.",
      labelNames: ["transport", "service", "method", "code"] as const,
      registers,
    }),
    rpcDuration: new Histogram({
      name: "k8sdeploy_rpc_duration_seconds",
      help: "Time to answer unary RPCs, by transport, service, method and gRPC status code.",
      labelNames: ["transport", "service", "method", "code"] as const,
      buckets: RPC_BUCKETS,
      registers,
    }),
    deploymentDelivery: new Histogram({
      name: "k8sdeploy_deployment_delivery_seconds",
      help: "From a deployment's creation until its agent acknowledged the command (queue wait, including offline time).",
      buckets: DELIVERY_BUCKETS,
      registers,
    }),
    deploymentRun: new Histogram({
      name: "k8sdeploy_deployment_run_seconds",
      help: "From delivery to the agent until the final state, by final state.",
      labelNames: ["state"] as const,
      buckets: ROLLOUT_BUCKETS,
      registers,
    }),
    deploymentDuration: new Histogram({
      name: "k8sdeploy_deployment_duration_seconds",
      help: "From a deployment's creation until its final state, by final state.",
      labelNames: ["state"] as const,
      buckets: [...DELIVERY_BUCKETS.slice(0, 5), ...ROLLOUT_BUCKETS],
      registers,
    }),
    redisErrors: new Counter({
      name: "k8sdeploy_redis_errors_total",
      help: "Redis connection errors (socket errors, failed reconnects), by connection.",
      labelNames: ["connection"] as const,
      registers,
    }),
    webhookAttempts: new Counter({
      name: "k8sdeploy_webhook_attempts_total",
      help: "Webhook delivery attempts, by format and result (delivered, http_error, timeout, network_error, refused).",
      labelNames: ["format", "result"] as const,
      registers,
    }),
    webhookDeliveries: new Counter({
      name: "k8sdeploy_webhook_deliveries_total",
      help: "Webhook deliveries that ended, by format and outcome (delivered, failed: attempts used up or not retryable).",
      labelNames: ["format", "outcome"] as const,
      registers,
    }),
    setSources: (next) => {
      sources = next;
    },
  };
}

const SOURCE_TIMEOUT_MS = 3000;

async function orNothing<T>(source: (() => Promise<T>) | undefined): Promise<T | undefined> {
  if (!source) return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      source(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), SOURCE_TIMEOUT_MS);
      }),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A version reported by an agent as a label value: a semver-looking string of at most 40
 * characters, "unknown" when empty, "other" for anything else (agents choose this string).
 */
export function versionLabel(version: string): string {
  if (version === "") return "unknown";
  return version.length <= 40 && /^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$/.test(version) ? version : "other";
}

/** Counts by versionLabel, with at most MAX_VERSION_LABELS distinct values (the rest: "other"). */
export class VersionCounts {
  private readonly counts = new Map<string, number>();
  add(version: string, n = 1): void {
    let label = versionLabel(version);
    if (!this.counts.has(label) && this.counts.size >= MAX_VERSION_LABELS) label = "other";
    this.counts.set(label, (this.counts.get(label) ?? 0) + n);
  }
  entries(): IterableIterator<[string, number]> {
    return this.counts.entries();
  }
}

/** The process-wide metrics. */
export const metrics: Metrics = createMetrics();
