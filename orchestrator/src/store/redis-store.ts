// Redis Store: durable, shared by every orchestrator replica, on one Redis or on a Redis Cluster
// (redis-url.ts). See redis-keys.ts for the key layout; each concern lives in its own module
// (agents/keys, deployments, feed, queue, bus). Connections: one for commands (one per node on a
// cluster), plus (lazily) one blocking feed reader and one Pub/Sub subscriber per Store instance.
// Connection errors are logged, never thrown as events; while Redis is unreachable commands fail at
// once (UNAVAILABLE to callers) and node-redis reconnects by itself.
import { redisAgentStore, redisKeyStore } from "./redis-agents-keys.js";
import { RedisBus } from "./redis-bus.js";
import { newConnection, type StoreLog, silentLog, withTimeout } from "./redis-client.js";
import { RedisDeployments } from "./redis-deployments.js";
import { RedisFeed } from "./redis-feed.js";
import { DEFAULT_KEY_PREFIX, redisKeys } from "./redis-keys.js";
import { RedisQueue } from "./redis-queue.js";
import { tryLease } from "./redis-script.js";
import { redisOnceStore, redisTrustPolicyStore } from "./redis-trust.js";
import { RedisWebhooks } from "./redis-webhooks.js";
import type { Store } from "./store.js";

export type { StoreLog } from "./redis-client.js";
export { InvalidFeedCursorError } from "./redis-feed.js";

export interface RedisStoreOptions {
  /** This replica's id: names its connections (CLIENT LIST) for operators. */
  replicaId: string;
  log?: StoreLog | undefined;
  /** Prefix of every key and of the bus channel. Default "k8sd:". */
  keyPrefix?: string | undefined;
  /** Replicas each write must reach before syncReplicas() resolves (Redis WAIT). Default 0. */
  waitReplicas?: number | undefined;
  /** How long a finished deployment is kept (seconds). Default 30 days. */
  retentionSeconds?: number | undefined;
}

const PING_TIMEOUT_MS = 2000;
/** WAIT's own timeout: a replica that takes longer is logged and the caller goes on. */
export const WAIT_TIMEOUT_MS = 2000;
export const DEFAULT_RETENTION_SECONDS = 30 * 86_400;

/** Connects (waiting, with retries, until Redis answers) and returns the store. */
export async function createRedisStore(url: string, options: RedisStoreOptions): Promise<Store> {
  const log = options.log ?? silentLog;
  const keys = redisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
  const name = `k8sd-${options.replicaId}`.replace(/[^A-Za-z0-9_.:-]/g, "_");
  const connection = newConnection(url, name, log);
  await connection.connect();
  const client = connection.commands;

  const feed = new RedisFeed(connection, keys.feed, log);
  const bus = new RedisBus(connection, keys.busChannel, log);
  const waitReplicas = options.waitReplicas ?? 0;
  const sync = new WaitCoalescer(() => connection.waitReplicas(waitReplicas, WAIT_TIMEOUT_MS));
  let closing: Promise<void> | undefined;
  let lastWaitWarning = 0;

  return {
    trust: redisTrustPolicyStore(client, keys),
    once: redisOnceStore(client, keys),
    agents: redisAgentStore(client, keys),
    keys: redisKeyStore(client, keys),
    deployments: new RedisDeployments(client, keys, feed, log, options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS),
    queue: new RedisQueue(client, keys, log),
    bus,
    webhooks: new RedisWebhooks(client, keys.prefix),
    tryLease: async (leaseName, holder, ttlMs) =>
      (await tryLease.run(client, [keys.lease(leaseName)], [holder, String(Math.max(1, Math.round(ttlMs)))])) === 1,
    ping: async () => {
      if (!connection.isReady) return false;
      return await withTimeout(connection.ping(), PING_TIMEOUT_MS, false);
    },
    syncReplicas: async () => {
      if (waitReplicas <= 0) return;
      const acked = await sync.run();
      const now = Date.now();
      if (acked < waitReplicas && now - lastWaitWarning > 10_000) {
        lastWaitWarning = now;
        log.warn(
          { wanted: waitReplicas, acknowledged: acked, timeoutMs: WAIT_TIMEOUT_MS },
          "a write reached fewer Redis replicas than K8SDEPLOY_REDIS_WAIT_REPLICAS in time; a failover now could lose it",
        );
      }
    },
    close: () => {
      closing ??= (async () => {
        await feed.close();
        await bus.close();
        await connection.close();
      })();
      return closing;
    },
  };
}

/**
 * One WAIT at a time: callers that arrive while one is in flight share the next one (which covers
 * every write made before it was sent), so concurrent Deploys cost one WAIT per round trip, not
 * one each. (WAIT blocks the connection it is sent on until the replicas answer.)
 */
class WaitCoalescer {
  private inFlight: Promise<number> | undefined;
  private next: Promise<number> | undefined;

  constructor(private readonly wait: () => Promise<number>) {}

  run(): Promise<number> {
    if (!this.inFlight) {
      this.inFlight = this.wait().finally(() => {
        this.inFlight = undefined;
      });
      return this.inFlight;
    }
    this.next ??= this.inFlight
      .catch(() => 0)
      .then(() => {
        this.next = undefined;
        return this.run();
      });
    return this.next;
  }
}
