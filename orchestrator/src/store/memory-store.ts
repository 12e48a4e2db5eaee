// In-memory Store: the embedded default for `npm start` and a single replica. Nothing survives
// a restart; use the Redis store for durability and for several replicas. Bounded like the Redis
// store: a finished deployment (record, events, idempotency key) is dropped `retentionSeconds` after
// it ended, and at most `maxFinishedDeployments` finished ones are kept (oldest ending first); queued
// and running deployments are never dropped. The feed keeps the last 10 000 changes, as in Redis.
import { EventEmitter } from "node:events";
import { type Command, Command as CommandMessage } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { Deployment, DeploymentEvent, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { MemoryOnce, MemoryTrustPolicies } from "./memory-trust.js";
import { MemoryWebhooks } from "./memory-webhooks.js";
import { decodePageToken, encodePageToken, matchesFilter } from "./pagination.js";
import type {
  AgentRecord,
  BusMessage,
  CommandQueue,
  DeploymentFilter,
  DeploymentPage,
  DeploymentUpdate,
  FeedEntry,
  KeyRecord,
  QueueEntry,
  QueueStats,
  Store,
  Subscription,
  WithdrawOutcome,
} from "./store.js";

const FEED_LIMIT = 10_000;

export interface MemoryStoreOptions {
  /** How long a finished deployment is kept after it ended. Default 30 days. */
  retentionSeconds?: number;
  /** Finished deployments kept at most. Default 10 000. */
  maxFinishedDeployments?: number;
  /** Clock (tests). */
  now?: () => number;
}

/** Final states (SUCCEEDED … EXPIRED come last in the enum). */
const isFinished = (d: Deployment) => d.state >= DeploymentState.DEPLOYMENT_STATE_SUCCEEDED;

// Copies in and out, so that nobody changes what is stored. The generated fromPartial copies every
// message and list (several times faster than structuredClone, which dominated a busy replica's
// profile); Dates are shared, and nothing changes a Date in place.
const copyDeployment = (d: Deployment): Deployment => Deployment.fromPartial(d);
const copyEvent = (e: DeploymentEvent): DeploymentEvent => DeploymentEvent.fromPartial(e);
const copyCommand = (c: Command): Command => CommandMessage.fromPartial(c);
/** Deep copy of a plain record (agents, keys): objects, arrays, Dates and primitives only. */
function copyRecord<T>(value: T): T {
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (Array.isArray(value)) return value.map(copyRecord) as T;
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = copyRecord(v);
  return out as T;
}
const copyEntry = (e: FeedEntry): FeedEntry => ({
  cursor: e.cursor,
  deployment: copyDeployment(e.deployment),
  event: copyEvent(e.event),
});

/** A listener's failure is its own: it must not fail the writer or starve other listeners. */
function isolate(call: () => void): void {
  try {
    call();
  } catch {
    // ignored, as in the Redis store (which logs it)
  }
}

class MemoryQueue implements CommandQueue {
  private readonly queues = new Map<
    string,
    Map<string, { command: Command; consumer?: string; deliveries: number; queuedAt: number }>
  >();
  /** `<agentId> <commandId>` → expiresAt (ms), like the Redis store's deadline index. */
  private readonly deadlines = new Map<string, number>();

  private queueOf(agentId: string) {
    let q = this.queues.get(agentId);
    if (!q) {
      q = new Map();
      this.queues.set(agentId, q);
    }
    return q;
  }

  async enqueue(agentId: string, command: Command): Promise<void> {
    const q = this.queueOf(agentId);
    if (q.has(command.id)) return;
    q.set(command.id, { command: copyCommand(command), deliveries: 0, queuedAt: Date.now() });
    if (command.expiresAt) this.deadlines.set(`${agentId} ${command.id}`, command.expiresAt.getTime());
  }

  async take(agentId: string, consumer: string, options: { includePending: boolean; count: number }) {
    const out: QueueEntry[] = [];
    for (const entry of this.queueOf(agentId).values()) {
      if (out.length >= options.count) break;
      if (entry.consumer !== undefined && !options.includePending) continue;
      out.push({ command: copyCommand(entry.command), deliveries: entry.deliveries });
      entry.consumer = consumer;
      entry.deliveries += 1;
    }
    return out;
  }

  async ack(agentId: string, commandId: string): Promise<boolean> {
    this.deadlines.delete(`${agentId} ${commandId}`);
    return this.queueOf(agentId).delete(commandId);
  }

  async withdraw(agentId: string, commandId: string): Promise<WithdrawOutcome> {
    const q = this.queueOf(agentId);
    const entry = q.get(commandId);
    if (!entry) return "unknown";
    if (entry.consumer !== undefined) return "sent";
    q.delete(commandId);
    this.deadlines.delete(`${agentId} ${commandId}`);
    return "withdrawn";
  }

  async list(agentId: string, limit: number): Promise<Command[]> {
    const out: Command[] = [];
    for (const entry of this.queueOf(agentId).values()) {
      if (out.length >= limit) break;
      out.push(copyCommand(entry.command));
    }
    return out;
  }

  async takeDue(now: Date, limit: number): Promise<{ agentId: string; commandId: string }[]> {
    const due = [...this.deadlines.entries()]
      .filter(([, at]) => at <= now.getTime())
      .sort((a, b) => a[1] - b[1])
      .slice(0, limit);
    return due.map(([member]) => {
      this.deadlines.delete(member);
      const [agentId = "", commandId = ""] = member.split(" ");
      return { agentId, commandId };
    });
  }

  async pendingCount(agentId: string): Promise<number> {
    return this.queueOf(agentId).size;
  }

  async stats(agentIds: readonly string[]): Promise<QueueStats[]> {
    return agentIds.map((agentId) => {
      const stats: QueueStats = { agentId, waiting: 0, inFlight: 0, oldestWaitingSince: undefined };
      for (const entry of this.queues.get(agentId)?.values() ?? []) {
        if (entry.consumer !== undefined) {
          stats.inFlight += 1;
          continue;
        }
        stats.waiting += 1;
        // Entries keep insertion order: the first waiting one is the oldest.
        stats.oldestWaitingSince ??= new Date(entry.queuedAt);
      }
      return stats;
    });
  }
}

export class MemoryStore implements Store {
  private readonly retentionMs: number;
  private readonly maxFinished: number;
  private readonly now: () => number;
  /** Finished deployment id → when it ended, in the order they ended (Map keeps insertion order). */
  private readonly finishedAt = new Map<string, number>();
  /** Deployment id → its idempotency scope, to drop both together. */
  private readonly scopeOf = new Map<string, string>();
  private readonly agentMap = new Map<string, AgentRecord>();
  private readonly keyMap = new Map<string, KeyRecord>();
  private readonly deploymentMap = new Map<string, Deployment>();
  private readonly eventMap = new Map<string, DeploymentEvent[]>();
  private readonly idempotency = new Map<string, string>();
  private readonly feed: FeedEntry[] = [];
  private feedCounter = 0;
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  readonly queue = new MemoryQueue();
  readonly webhooks = new MemoryWebhooks();
  readonly trust = new MemoryTrustPolicies();
  readonly once = new MemoryOnce();

  constructor(options: MemoryStoreOptions = {}) {
    this.retentionMs = (options.retentionSeconds ?? 30 * 86_400) * 1000;
    this.maxFinished = options.maxFinishedDeployments ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Drops finished deployments past the retention or beyond the count, oldest ending first. */
  private evict(): void {
    const cutoff = this.now() - this.retentionMs;
    for (const [id, at] of this.finishedAt) {
      if (this.finishedAt.size <= this.maxFinished && at > cutoff) break;
      this.finishedAt.delete(id);
      this.deploymentMap.delete(id);
      this.eventMap.delete(id);
      const scope = this.scopeOf.get(id);
      if (scope !== undefined && this.idempotency.get(scope) === id) this.idempotency.delete(scope);
      this.scopeOf.delete(id);
    }
  }

  readonly agents = {
    createAgent: async (agent: AgentRecord) => {
      this.agentMap.set(agent.id, copyRecord(agent));
    },
    getAgent: async (id: string) => copyRecord(this.agentMap.get(id)),
    listAgents: async () =>
      [...this.agentMap.values()]
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
        .map((a) => copyRecord(a)),
    updateAgent: async (id: string, patch: Partial<Omit<AgentRecord, "id">>) => {
      const current = this.agentMap.get(id);
      if (!current) return undefined;
      const next: typeof current = { ...current, ...copyRecord(patch) };
      this.agentMap.set(id, next);
      return copyRecord(next);
    },
    touchAgent: async (id: string, connectionId: string, lastSeenAt: Date) => {
      const current = this.agentMap.get(id);
      if (current?.connectionId !== connectionId) return false;
      current.lastSeenAt = new Date(lastSeenAt);
      return true;
    },
    releaseAgent: async (id: string, connectionId: string, lastSeenAt: Date) => {
      const current = this.agentMap.get(id);
      if (current?.connectionId !== connectionId) return false;
      this.agentMap.set(id, {
        ...current,
        connectionId: undefined,
        replicaId: undefined,
        lastSeenAt: new Date(lastSeenAt),
      });
      return true;
    },
  };

  readonly keys = {
    createKey: async (key: KeyRecord) => {
      this.keyMap.set(key.id, copyRecord(key));
    },
    getKey: async (id: string) => copyRecord(this.keyMap.get(id)),
    listKeys: async (agentId?: string) =>
      [...this.keyMap.values()]
        .filter((k) => agentId === undefined || agentId === "" || k.agentId === agentId)
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
        .map((k) => copyRecord(k)),
    updateKey: async (id: string, patch: Partial<Omit<KeyRecord, "id">>) => {
      const current = this.keyMap.get(id);
      if (!current) return undefined;
      const next: typeof current = { ...current, ...copyRecord(patch) };
      this.keyMap.set(id, next);
      return copyRecord(next);
    },
  };

  readonly deployments = {
    createDeployment: async (deployment: Deployment, firstEvent: DeploymentEvent, idempotencyScope?: string) => {
      this.evict();
      if (idempotencyScope) {
        const existing = this.idempotency.get(idempotencyScope);
        const found = existing === undefined ? undefined : this.deploymentMap.get(existing);
        if (found) return { deployment: copyDeployment(found), created: false };
        this.idempotency.set(idempotencyScope, deployment.id);
        this.scopeOf.set(deployment.id, idempotencyScope);
      }
      const event = { ...firstEvent, seq: 1 };
      this.deploymentMap.set(deployment.id, copyDeployment(deployment));
      this.eventMap.set(deployment.id, [copyEvent(event)]);
      this.publishFeed(deployment, event);
      return { deployment: copyDeployment(deployment), created: true };
    },
    getDeployment: async (id: string) => {
      this.evict();
      const d = this.deploymentMap.get(id);
      return d && copyDeployment(d);
    },
    appendEvent: async (id: string, update: DeploymentUpdate) => {
      this.evict();
      const current = this.deploymentMap.get(id);
      const events = this.eventMap.get(id);
      if (!current || !events) return undefined;
      const next = update(copyDeployment(current), events.length);
      if (!next) return undefined;
      const event: DeploymentEvent = { ...next.event, seq: events.length + 1 };
      this.deploymentMap.set(id, copyDeployment(next.deployment));
      events.push(copyEvent(event));
      if (isFinished(next.deployment) && !this.finishedAt.has(id)) this.finishedAt.set(id, this.now());
      this.publishFeed(next.deployment, event);
      return { deployment: copyDeployment(next.deployment), event: copyEvent(event) };
    },
    listEvents: async (id: string, afterSeq: number) => {
      this.evict();
      return (this.eventMap.get(id) ?? []).filter((e) => e.seq > afterSeq).map(copyEvent);
    },
    listDeployments: async (filter: DeploymentFilter, pageSize: number, pageToken: string): Promise<DeploymentPage> => {
      this.evict();
      const after = decodePageToken(pageToken);
      const sorted = [...this.deploymentMap.values()]
        .filter((d) => matchesFilter(d, filter))
        .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
        .filter((d) => after === undefined || d.id < after);
      const page = sorted.slice(0, pageSize);
      const last = page.at(-1);
      return {
        deployments: page.map(copyDeployment),
        nextPageToken: sorted.length > pageSize && last ? encodePageToken(last.id) : "",
      };
    },
    followFeed: async (
      afterCursor: string | undefined,
      listener: (entry: FeedEntry) => void,
    ): Promise<Subscription> => {
      if (afterCursor !== undefined) {
        const after = Number(afterCursor);
        for (const entry of this.feed) {
          if (Number(entry.cursor) > after) isolate(() => listener(copyEntry(entry)));
        }
      }
      const handler = (entry: FeedEntry) => isolate(() => listener(copyEntry(entry)));
      this.emitter.on("feed", handler);
      return { close: () => this.emitter.off("feed", handler) };
    },
  };

  readonly bus = {
    publish: async (message: BusMessage) => {
      this.emitter.emit("bus", message);
    },
    subscribe: async (listener: (message: BusMessage) => void): Promise<Subscription> => {
      const handler = (message: BusMessage) => isolate(() => listener(message));
      this.emitter.on("bus", handler);
      return { close: () => this.emitter.off("bus", handler) };
    },
  };

  private publishFeed(deployment: Deployment, event: DeploymentEvent): void {
    this.feedCounter += 1;
    const entry: FeedEntry = {
      cursor: String(this.feedCounter),
      deployment: copyDeployment(deployment),
      event: copyEvent(event),
    };
    this.feed.push(entry);
    // Trimmed in batches (about FEED_LIMIT kept, as Redis's MAXLEN ~): one splice per thousand entries.
    if (this.feed.length > FEED_LIMIT + 1000) this.feed.splice(0, this.feed.length - FEED_LIMIT);
    this.emitter.emit("feed", entry);
  }

  private readonly leases = new Map<string, { holder: string; until: number }>();

  async tryLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const lease = this.leases.get(name);
    if (lease && lease.until > now && lease.holder !== holder) return false;
    this.leases.set(name, { holder, until: now + ttlMs });
    return true;
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async syncReplicas(): Promise<void> {}

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}
