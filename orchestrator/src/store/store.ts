// The orchestrator's storage, behind one small interface with two implementations:
// Redis (production, durable, shared by replicas) and memory (the embedded default).
// Both must pass the contract tests in store.contract.ts.
import type { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { Deployment, DeploymentEvent } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

/** A secret (agent token or deploy key) as stored: never the secret itself. */
export interface StoredSecret {
  /** Hex SHA-256 of the secret part. */
  hash: string;
  /** First characters of the full token, shown to admins so they can recognise it. */
  prefix: string;
  /** After this instant the secret no longer authenticates (token rotation grace). */
  expiresAt?: Date | undefined;
}

/** What an agent said about itself in its last hello. */
export interface AgentHello {
  version: string;
  arch: string;
  kubernetesVersion: string;
  autoUpdateEnabled: boolean;
  capabilities: number[];
  instance: string;
  /** Namespace and Deployment the agent runs as (for agent updates); absent from older records. */
  namespace?: string | undefined;
  agentDeployment?: string | undefined;
}

export interface AgentRecord {
  id: string;
  name: string;
  createdAt: Date;
  revokedAt?: Date | undefined;
  /** At most two live tokens: the current one first, then one in its rotation grace period. */
  tokens: StoredSecret[];
  hello?: AgentHello | undefined;
  lastSeenAt?: Date | undefined;
  connectedSince?: Date | undefined;
  /** Replica and connection holding the agent's stream; empty when disconnected. */
  replicaId?: string | undefined;
  connectionId?: string | undefined;
  /** The latest agent-update record (a Deployment of CHANGE_KIND_AGENT_UPDATE). */
  lastUpdateId?: string | undefined;
  /** Release version the release channel last updated this agent to automatically (one attempt each). */
  autoUpdatedTo?: string | undefined;
}

export interface KeyRecord {
  id: string;
  name: string;
  agentId: string;
  namespaces: string[];
  workloads: string[];
  secret: StoredSecret;
  createdAt: Date;
  lastUsedAt?: Date | undefined;
  revokedAt?: Date | undefined;
}

export interface DeploymentFilter {
  agentId?: string | undefined;
  namespace?: string | undefined;
  states?: number[] | undefined;
}

export interface DeploymentPage {
  deployments: Deployment[];
  /** Empty when there is no further page. */
  nextPageToken: string;
}

/** One change of one deployment, as published on the feed. */
export interface FeedEntry {
  /** Opaque, increasing position in the feed; pass it back to resume after this entry. */
  cursor: string;
  deployment: Deployment;
  event: DeploymentEvent;
}

export interface QueueEntry {
  command: Command;
  /** Times this command was handed out before (0 on first delivery). */
  deliveries: number;
}

/** Messages between replicas. Delivery is best effort: the durable state is in the store. */
export type BusMessage =
  /** A command was queued for this agent: the replica holding its stream should read the queue. */
  | { type: "queued"; agentId: string }
  /** A newer connection of the agent started (or the agent was revoked): others must close theirs. */
  | { type: "agent-connected"; agentId: string; connectionId: string }
  | { type: "agent-revoked"; agentId: string }
  /** The agent's tokens changed: streams opened with a token no longer valid must close. */
  | { type: "agent-token-rotated"; agentId: string }
  /** An agent answered a describe command. `payload` is a base64 DescribeReply. */
  | { type: "reply"; commandId: string; payload: string }
  /**
   * Local only, never published: this instance's subscription was lost and is back, so messages
   * sent meanwhile may be missing; listeners re-read what they depend on.
   */
  | { type: "resync" };

export interface Subscription {
  close(): void;
}

export interface AgentStore {
  createAgent(agent: AgentRecord): Promise<void>;
  getAgent(id: string): Promise<AgentRecord | undefined>;
  /** Oldest first. */
  listAgents(): Promise<AgentRecord[]>;
  /** Applies the patch (undefined values clear fields) and returns the result, or undefined if missing. */
  updateAgent(id: string, patch: Partial<Omit<AgentRecord, "id">>): Promise<AgentRecord | undefined>;
  /**
   * Sets lastSeenAt, only while the record names `connectionId` (the stream of that connection is
   * the one being heard from). One cheap write: agents call it on heartbeats. False when the record
   * is missing or held by another connection.
   */
  touchAgent(id: string, connectionId: string, lastSeenAt: Date): Promise<boolean>;
  /**
   * The stream of `connectionId` ended: clears connectionId and replicaId and sets lastSeenAt, only
   * while the record still names that connection (a newer connection elsewhere keeps its record).
   * False when it did not.
   */
  releaseAgent(id: string, connectionId: string, lastSeenAt: Date): Promise<boolean>;
}

export interface KeyStore {
  createKey(key: KeyRecord): Promise<void>;
  getKey(id: string): Promise<KeyRecord | undefined>;
  /** Oldest first; only the agent's keys when agentId is given. */
  listKeys(agentId?: string): Promise<KeyRecord[]>;
  updateKey(id: string, patch: Partial<Omit<KeyRecord, "id">>): Promise<KeyRecord | undefined>;
}

export type DeploymentUpdate = (
  current: Deployment,
  eventCount: number,
) => { deployment: Deployment; event: Omit<DeploymentEvent, "seq"> } | undefined;

export interface DeploymentStore {
  /**
   * Stores a new deployment together with its first event (seq 1), atomically with the
   * idempotency key when one is given: if `idempotencyScope` was already used, nothing is
   * written and the earlier deployment is returned with created=false.
   */
  createDeployment(
    deployment: Deployment,
    firstEvent: DeploymentEvent,
    idempotencyScope?: string,
  ): Promise<{ deployment: Deployment; created: boolean }>;
  getDeployment(id: string): Promise<Deployment | undefined>;
  /**
   * Appends an event (its seq is assigned here) and applies `update` to the deployment, as one
   * atomic step that is safe against concurrent writers. `update` gets the current record and its
   * number of events (it may run again on a concurrent change, so it must have no side effects).
   * Returns undefined when the deployment does not exist or `update` returns undefined (the event
   * is then dropped, e.g. after a final state).
   */
  appendEvent(
    id: string,
    update: DeploymentUpdate,
  ): Promise<{ deployment: Deployment; event: DeploymentEvent } | undefined>;
  /** Events with seq > afterSeq, oldest first. */
  listEvents(id: string, afterSeq: number): Promise<DeploymentEvent[]>;
  /** Newest first. */
  listDeployments(filter: DeploymentFilter, pageSize: number, pageToken: string): Promise<DeploymentPage>;
  /**
   * Calls `listener` for every feed entry after `afterCursor` (undefined: only entries appended
   * from now on), in order, then live. Each created deployment and each appended event is one entry.
   */
  followFeed(afterCursor: string | undefined, listener: (entry: FeedEntry) => void): Promise<Subscription>;
}

/** Durable per-agent command queue: at-least-once delivery, removed only when acknowledged. */
export interface CommandQueue {
  /** Adds a command (ignored when its id is queued already); one with `expiresAt` is also indexed by deadline. */
  enqueue(agentId: string, command: Command): Promise<void>;
  /**
   * Hands `consumer` the agent's commands: with `includePending`, first every command already
   * handed out to any consumer and not yet acknowledged (reconnect, dead replica), then new ones.
   */
  take(agentId: string, consumer: string, options: { includePending: boolean; count: number }): Promise<QueueEntry[]>;
  /** Removes a command for good. Returns false when the agent has no such command. */
  ack(agentId: string, commandId: string): Promise<boolean>;
  /**
   * Removes a command only if it was never handed out (atomically with take): "withdrawn"; a
   * command handed out to a stream stays: "sent"; "unknown" when the agent has no such command.
   */
  withdraw(agentId: string, commandId: string): Promise<WithdrawOutcome>;
  /** The agent's unacknowledged commands, oldest first (at most `limit`). */
  list(agentId: string, limit: number): Promise<Command[]>;
  /**
   * Takes (removes from the deadline index, each entry for one caller only) up to `limit`
   * commands whose `expiresAt` is at or before `now`. The commands themselves stay queued.
   */
  takeDue(now: Date, limit: number): Promise<{ agentId: string; commandId: string }[]>;
  /** Commands queued and not yet acknowledged. */
  pendingCount(agentId: string): Promise<number>;
  /** Queue statistics of each agent, in the order given (metrics; one round trip for all). */
  stats(agentIds: readonly string[]): Promise<QueueStats[]>;
}

/** What the metrics export about one agent's queue. */
export interface QueueStats {
  agentId: string;
  /** Commands never handed to a stream. */
  waiting: number;
  /** Commands handed out and not yet acknowledged (running on the agent, or lost with a stream). */
  inFlight: number;
  /** When the oldest waiting command was queued; undefined when none waits. */
  oldestWaitingSince: Date | undefined;
}

export type WithdrawOutcome = "withdrawn" | "sent" | "unknown";

export interface Bus {
  publish(message: BusMessage): Promise<void>;
  subscribe(listener: (message: BusMessage) => void): Promise<Subscription>;
}

// ---------------------------------------------------------------- GitHub OIDC trust (issue 11)

/** Which GitHub Actions ID tokens may deploy through an agent (see TrustPolicy in admin.proto). */
export interface TrustPolicyRecord {
  id: string;
  name: string;
  agentId: string;
  issuer: string;
  audience: string;
  /** `owner/name`, compared case-insensitively. */
  repository: string;
  /** Empty: any. */
  repositoryId: string;
  /** Empty: any; exact, or a prefix ending in `*`. */
  ref: string;
  /** Empty: any. */
  environment: string;
  /** Empty: any; exact, or a prefix ending in `*`. */
  workflowRef: string;
  namespaces: string[];
  workloads: string[];
  createdAt: Date;
  lastUsedAt?: Date | undefined;
  deletedAt?: Date | undefined;
}

export interface TrustPolicyStore {
  createPolicy(policy: TrustPolicyRecord): Promise<void>;
  getPolicy(id: string): Promise<TrustPolicyRecord | undefined>;
  /** Oldest first; only the agent's policies when agentId is given. */
  listPolicies(agentId?: string): Promise<TrustPolicyRecord[]>;
  updatePolicy(id: string, patch: Partial<Omit<TrustPolicyRecord, "id">>): Promise<TrustPolicyRecord | undefined>;
}

/** One-time markers, e.g. the `jti` of an ID token: shared by every replica. */
export interface OnceStore {
  /**
   * True for the first caller that claims `id` within `ttlMs`, false for every later one until the
   * marker expires (atomic across replicas: Redis SET NX PX). `ttlMs` is at least 1.
   */
  claimOnce(id: string, ttlMs: number): Promise<boolean>;
}

export interface Store {
  /** GitHub OIDC trust policies (issue 11). */
  readonly trust: TrustPolicyStore;
  /** One-time markers (ID token ids). */
  readonly once: OnceStore;
  readonly agents: AgentStore;
  readonly keys: KeyStore;
  readonly deployments: DeploymentStore;
  readonly queue: CommandQueue;
  readonly bus: Bus;
  readonly webhooks: WebhookStore;
  /**
   * A lease shared by every replica, for work only one of them should do at a time (the agent
   * release rollout): true when `holder` holds `name` now — acquired because nobody held it, or
   * renewed because `holder` already did. It lapses `ttlMs` after the last successful call.
   */
  tryLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** True when the store is reachable (health endpoint). */
  ping(): Promise<boolean>;
  /**
   * Resolves once the writes this instance made so far are on as many replicas as the store was
   * configured to wait for (Redis WAIT): called before answering a Deploy and before acknowledging
   * an agent's result, so that a failover loses nothing acknowledged. At once without replicas; a
   * replica that does not answer in time is logged, not thrown.
   */
  syncReplicas(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Webhooks and their deliveries (notify/). Deliveries form a durable queue shared by every
// replica: a delivery is claimed atomically for a lease, so two replicas never send it at once,
// and a replica that dies mid-attempt only delays it until the lease ends.

export type WebhookFormatName = "generic" | "slack" | "discord";

export interface WebhookRecord {
  id: string;
  agentId: string;
  name: string;
  format: WebhookFormatName;
  /** The URL, sealed (notify/sealed-secret.ts): Slack and Discord URLs are credentials. */
  sealedUrl: string;
  /** Scheme and host only, for display. */
  urlPreview: string;
  /** The signing secret, sealed; "" for formats that are not signed. */
  sealedSecret: string;
  secretPrefix: string;
  /** Final DeploymentState values it reports; empty: all of them. */
  states: number[];
  createdAt: Date;
}

export type DeliveryState = "pending" | "delivered" | "failed";

export interface DeliveryRecord {
  id: string;
  webhookId: string;
  agentId: string;
  deploymentId: string;
  deploymentState: number;
  format: WebhookFormatName;
  state: DeliveryState;
  attempts: number;
  createdAt: Date;
  /** Pending only: when it is due. */
  nextAttemptAt?: Date | undefined;
  lastAttemptAt?: Date | undefined;
  deliveredAt?: Date | undefined;
  /** 0 when the last attempt got no HTTP answer. */
  lastHttpStatus: number;
  lastError: string;
}

/** A delivery handed to one sender until its lease ends (or it is completed). */
export interface ClaimedDelivery {
  delivery: DeliveryRecord;
  /** The request body, rendered when it was queued: every attempt sends the same bytes. */
  body: string;
  /** Proof of the claim for completeDelivery. */
  claim: string;
}

/** Finished deliveries kept for the delivery log (the oldest finished ones are dropped). */
export const DELIVERY_LOG_LIMIT = 1000;

export interface WebhookStore {
  createWebhook(webhook: WebhookRecord): Promise<void>;
  getWebhook(id: string): Promise<WebhookRecord | undefined>;
  /** Oldest first; only the agent's when agentId is given. */
  listWebhooks(agentId?: string): Promise<WebhookRecord[]>;
  /** False when there was no such webhook. */
  deleteWebhook(id: string): Promise<boolean>;
  /**
   * Queues pending deliveries, each due at its nextAttemptAt (ids not already stored), with their
   * bodies; then drops the oldest finished deliveries beyond DELIVERY_LOG_LIMIT.
   */
  enqueueDeliveries(deliveries: { delivery: DeliveryRecord; body: string }[]): Promise<void>;
  /**
   * Atomically claims up to `limit` pending deliveries due at `now` (oldest due first) for
   * `leaseMs`: no other claim returns them before the lease ends or they are completed.
   */
  claimDue(now: Date, limit: number, leaseMs: number): Promise<ClaimedDelivery[]>;
  /**
   * Stores the delivery after an attempt: still `pending` (due again at nextAttemptAt) or final.
   * False, and nothing written, when `claim` is no longer the delivery's current claim.
   */
  completeDelivery(claim: string, delivery: DeliveryRecord): Promise<boolean>;
  getDelivery(id: string): Promise<DeliveryRecord | undefined>;
  /** Newest first (by createdAt), at most `limit`. */
  listDeliveries(filter: { webhookId?: string; deploymentId?: string }, limit: number): Promise<DeliveryRecord[]>;
  /** Deliveries still pending. */
  pendingDeliveries(): Promise<number>;
}
