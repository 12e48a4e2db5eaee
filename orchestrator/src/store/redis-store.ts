// Redis Store: durable, shared by every orchestrator replica. See redis-keys.ts for the key
// layout; each concern lives in its own module (agents/keys, deployments, feed, queue, bus).
// Connections: one for commands, plus (lazily) one blocking feed reader and one Pub/Sub
// subscriber per Store instance. Connection errors are logged, never thrown as events; while
// Redis is unreachable node-redis reconnects and holds commands until it is back.
import { redisAgentStore, redisKeyStore } from "./redis-agents-keys.js";
import { RedisBus } from "./redis-bus.js";
import { newClient, type StoreLog, shutdownClient, silentLog, withTimeout } from "./redis-client.js";
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
}

const PING_TIMEOUT_MS = 2000;

/** Connects (waiting, with retries, until Redis answers) and returns the store. */
export async function createRedisStore(url: string, options: RedisStoreOptions): Promise<Store> {
  const log = options.log ?? silentLog;
  const keys = redisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
  const name = `k8sd-${options.replicaId}`.replace(/[^A-Za-z0-9_.:-]/g, "_");
  const client = newClient(url, name, log);
  await client.connect();

  const feed = new RedisFeed(client, keys.feed, log);
  const bus = new RedisBus(client, keys.busChannel, log);
  let closing: Promise<void> | undefined;

  return {
    trust: redisTrustPolicyStore(client, keys),
    once: redisOnceStore(client, keys),
    agents: redisAgentStore(client, keys),
    keys: redisKeyStore(client, keys),
    deployments: new RedisDeployments(client, keys, feed, log),
    queue: new RedisQueue(client, keys, log),
    bus,
    webhooks: new RedisWebhooks(client, keys.prefix),
    tryLease: async (leaseName, holder, ttlMs) =>
      (await tryLease.run(client, [keys.lease(leaseName)], [holder, String(Math.max(1, Math.round(ttlMs)))])) === 1,
    ping: async () => {
      if (!client.isReady) return false;
      return await withTimeout(
        client.ping().then((reply) => reply === "PONG"),
        PING_TIMEOUT_MS,
        false,
      );
    },
    close: () => {
      closing ??= (async () => {
        await feed.close();
        await bus.close();
        await shutdownClient(client);
      })();
      return closing;
    },
  };
}
