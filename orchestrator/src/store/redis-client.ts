// Connections of the Redis store, to one Redis or to a Redis Cluster (node-redis createClient or
// createCluster), behind one small interface: the key-routed commands the store modules use, plus
// what differs between the two (Pub/Sub vs sharded Pub/Sub, WAIT on every master, a second
// connection for blocking reads). Connection errors are logged (never thrown as events) with a
// bounded reconnect backoff.
//
// Command options, on purpose:
//  - no per-command timeout (`commandOptions.timeout: 0`). node-redis 6 applies its 5 s default only
//    while a command waits to be written, and creates an AbortSignal.timeout for every command to do
//    so; those signals live 5 s, reach V8's old generation and cost a major GC every few seconds under
//    load. A command written to a stalled Redis waits for its reply whatever the option says: callers
//    bound that themselves (agent-session.ts).
//  - `disableOfflineQueue`: while the connection is down a command fails at once (ClientOfflineError →
//    UNAVAILABLE, "retry") instead of waiting in a queue, which is what the 5 s timeout was bounding.
import { createClient, createCluster, type RedisClientType, type RedisClusterType } from "redis";
import { type RedisTarget, redisTarget } from "./redis-url.js";

/** The key-routed commands the store modules use: the same methods on a client and on a cluster. */
export type RedisCommands = Pick<
  RedisClientType,
  | "get"
  | "set"
  | "del"
  | "eval"
  | "hDel"
  | "hGet"
  | "hGetAll"
  | "hLen"
  | "hmGet"
  | "hSet"
  | "lLen"
  | "lRange"
  | "xAdd"
  | "xRange"
  | "xRevRange"
  | "xRead"
  | "zAdd"
  | "zCard"
  | "zRange"
  | "zRem"
  | "zRemRangeByLex"
>;

/** The subset of a pino-style logger the store uses. */
export interface StoreLog {
  warn(obj: object, msg: string): void;
  /** Told about every connection error (k8sdeploy_redis_errors_total), before log throttling. */
  redisError?(connection: string): void;
}

export const silentLog: StoreLog = { warn: () => {} };

/** Reconnect delay: 50 ms doubling up to 2 s, with jitter; never gives up. */
export function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** Math.min(retries, 6), 2000) + Math.floor(Math.random() * 50);
}

export interface RedisConnection {
  readonly commands: RedisCommands;
  readonly isCluster: boolean;
  readonly isReady: boolean;
  readonly isOpen: boolean;
  connect(): Promise<void>;
  /** Another connection (to every node, for a cluster) with the same options, not yet connected. */
  duplicate(label: string): RedisConnection;
  /** PUBLISH, or SPUBLISH on a cluster (the channel's shard only). */
  publish(channel: string, message: string): Promise<number>;
  /** SUBSCRIBE, or SSUBSCRIBE on a cluster; resubscribed by node-redis after reconnects. */
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  /** Called when the connection (any node) is ready again after it was lost. */
  onReconnected(listener: () => void): void;
  /** WAIT `replicas` `timeoutMs` on every master: the fewest replicas that acknowledged. */
  waitReplicas(replicas: number, timeoutMs: number): Promise<number>;
  ping(): Promise<boolean>;
  /** Waits for pending replies (at most `ms`), then disconnects. */
  close(ms?: number): Promise<void>;
  destroy(): void;
}

/**
 * Attaches an error listener (an unhandled 'error' event would crash the process) that logs at
 * warn level, at most once per distinct message every 10 s so that a Redis outage does not
 * flood the log. The URL is never logged (it may carry a password).
 */
function logErrors(emitter: { on(event: "error", fn: (err: unknown) => void): unknown }, log: StoreLog, label: string) {
  const lastLogged = new Map<string, number>();
  emitter.on("error", (err: unknown) => {
    log.redisError?.(label);
    const message = errorMessage(err);
    const now = Date.now();
    if ((lastLogged.get(message) ?? 0) > now - 10_000) return;
    lastLogged.set(message, now);
    log.warn({ connection: label, err: message }, "redis connection error");
  });
}

const COMMAND_OPTIONS = { timeout: 0 } as const;

/** Closes gracefully when possible (pending replies are awaited, at most `ms`), else destroys. */
async function closeGracefully(
  conn: { close(): Promise<unknown>; destroy(): void; isOpen: boolean; isReady: boolean },
  ms: number,
) {
  if (!conn.isOpen) return;
  if (conn.isReady) {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), ms);
    });
    try {
      await Promise.race([conn.close(), timedOut]);
    } catch {
      // fall through to destroy
    } finally {
      clearTimeout(timer);
    }
  }
  if (conn.isOpen) conn.destroy();
}

class SingleConnection implements RedisConnection {
  readonly isCluster = false;
  private readonly reconnected = new Set<() => void>();
  private wasReady = false;

  constructor(
    private readonly client: RedisClientType,
    private readonly log: StoreLog,
    label: string,
  ) {
    logErrors(client, log, label);
    client.on("ready", () => {
      if (this.wasReady) for (const l of this.reconnected) l();
      this.wasReady = true;
    });
  }

  get commands(): RedisCommands {
    return this.client;
  }
  get isReady() {
    return this.client.isReady;
  }
  get isOpen() {
    return this.client.isOpen;
  }
  async connect() {
    await this.client.connect();
  }
  duplicate(label: string): RedisConnection {
    return new SingleConnection(this.client.duplicate() as RedisClientType, this.log, label);
  }
  publish(channel: string, message: string) {
    return this.client.publish(channel, message);
  }
  subscribe(channel: string, listener: (message: string) => void) {
    return this.client.subscribe(channel, listener);
  }
  onReconnected(listener: () => void) {
    this.reconnected.add(listener);
  }
  async waitReplicas(replicas: number, timeoutMs: number) {
    return (await this.client.wait(replicas, timeoutMs)) as number;
  }
  async ping() {
    return (await this.client.ping()) === "PONG";
  }
  close(ms = 2000) {
    return closeGracefully(this.client, ms);
  }
  destroy() {
    if (this.client.isOpen) this.client.destroy();
  }
}

class ClusterConnection implements RedisConnection {
  readonly isCluster = true;
  private readonly reconnected = new Set<() => void>();
  private ready = false;

  constructor(
    private readonly cluster: RedisClusterType,
    private readonly log: StoreLog,
    label: string,
  ) {
    logErrors(cluster, log, label);
    cluster.on("node-ready", () => {
      if (this.ready) for (const l of this.reconnected) l();
    });
  }

  get commands(): RedisCommands {
    // Same methods and signatures as a client for key-routed commands (node-redis routes each by its
    // first key); the cluster's generic types just do not line up with the client's.
    return this.cluster as unknown as RedisCommands;
  }
  get isReady() {
    return this.cluster.isReady;
  }
  get isOpen() {
    return this.cluster.isOpen;
  }
  async connect() {
    await this.cluster.connect();
    this.ready = true;
  }
  duplicate(label: string): RedisConnection {
    return new ClusterConnection(this.cluster.duplicate() as unknown as RedisClusterType, this.log, label);
  }
  publish(channel: string, message: string) {
    return this.cluster.sPublish(channel, message) as Promise<number>;
  }
  subscribe(channel: string, listener: (message: string) => void) {
    return this.cluster.sSubscribe(channel, listener);
  }
  onReconnected(listener: () => void) {
    this.reconnected.add(listener);
  }
  async waitReplicas(replicas: number, timeoutMs: number) {
    // WAIT counts the writes made on the connection it is sent on: node-redis keeps one connection
    // per node, so a WAIT on each master covers every write this process made before it. A master
    // the topology shows without replicas (its replica was just promoted, say) is skipped: WAIT
    // there could only time out, on every call, until a replica is added again.
    const shards = new Map<string, { master: RedisClusterType["masters"][number]; replicas: number }>();
    for (const shard of this.cluster.slots) {
      if (shard && !shards.has(shard.master.id)) {
        shards.set(shard.master.id, { master: shard.master, replicas: shard.replicas?.length ?? 0 });
      }
    }
    let unreplicated = 0;
    const acked = await Promise.all(
      [...shards.values()].map(async ({ master, replicas: known }) => {
        if (known === 0) {
          unreplicated++;
          return replicas;
        }
        const client = await this.cluster.nodeClient(master);
        return (await client.wait(Math.min(replicas, known), timeoutMs)) as number;
      }),
    );
    if (unreplicated > 0) this.warnUnreplicated(unreplicated);
    return acked.length ? Math.min(...acked) : 0;
  }

  private lastUnreplicatedWarning = 0;

  private warnUnreplicated(masters: number) {
    const now = Date.now();
    if (now - this.lastUnreplicatedWarning < 60_000) return;
    this.lastUnreplicatedWarning = now;
    this.log.warn(
      { masters },
      "Redis Cluster masters without a replica: writes there are not replicated until one is added (CLUSTER REPLICATE)",
    );
  }
  async ping() {
    const replies = await Promise.all(
      this.cluster.masters.map(async (master) => (await this.cluster.nodeClient(master)).ping()),
    );
    return replies.length > 0 && replies.every((r) => r === "PONG");
  }
  close(ms = 2000) {
    return closeGracefully(this.cluster, ms);
  }
  destroy() {
    if (this.cluster.isOpen) this.cluster.destroy();
  }
}

/** A connection to the Redis (or Redis Cluster) that `url` names; not yet connected. */
export function newConnection(url: string, name: string, log: StoreLog): RedisConnection {
  const target: RedisTarget = redisTarget(url);
  const common = { reconnectStrategy: reconnectDelay, connectTimeout: 5000 };
  if (target.kind === "single") {
    // rediss:// turns TLS on by itself.
    const client = createClient({
      url: target.url,
      name,
      socket: common,
      disableOfflineQueue: true,
      commandOptions: COMMAND_OPTIONS,
    });
    return new SingleConnection(client as RedisClientType, log, "main");
  }
  const cluster = createCluster({
    rootNodes: target.nodes.map((n) => ({ socket: { host: n.host, port: n.port } })),
    // Re-read the topology 1 s (node-redis: 5 s) after a node is lost: a failed-over master's slots
    // are served by its promoted replica again as soon as the cluster has promoted it.
    topologyRefreshOnReconnectionAttemptStrategy: 1000,
    defaults: {
      name,
      username: target.username,
      password: target.password,
      socket: target.tls ? { ...common, tls: true as const } : common,
      disableOfflineQueue: true,
    },
    commandOptions: COMMAND_OPTIONS,
  });
  return new ClusterConnection(cluster as unknown as RedisClusterType, log, "main");
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves `fallback` if `promise` has not settled after `ms` (or rejects). When the timer fires
 * it still lets pending I/O run once (setImmediate comes after the poll phase), so a reply that
 * arrived during an event-loop stall wins over the timeout.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<T>((resolve) => {
    timer = setTimeout(() => setImmediate(() => resolve(fallback)), ms);
  });
  try {
    return await Promise.race([promise.catch(() => fallback), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
