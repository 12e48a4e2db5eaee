// Trust policies and one-time markers in Redis. Policies are records like agents and keys (one
// JSON string each plus a creation-ordered index); a marker is `SET <once key> 1 NX PX <ttl>`, so
// exactly one replica wins a claim and Redis forgets it when the token would have expired anyway.
import { RecordTable } from "./redis-agents-keys.js";
import type { RedisCommands } from "./redis-client.js";
import type { RedisKeys } from "./redis-keys.js";
import type { OnceStore, TrustPolicyRecord, TrustPolicyStore } from "./store.js";

export function redisTrustPolicyStore(client: RedisCommands, keys: RedisKeys): TrustPolicyStore {
  const table = new RecordTable<TrustPolicyRecord>(client, keys.trustPolicy, keys.trustPolicyIndex);
  return {
    createPolicy: (policy) => table.create(policy),
    getPolicy: (id) => table.get(id),
    listPolicies: async (agentId) => {
      const all = await table.list();
      return agentId ? all.filter((p) => p.agentId === agentId) : all;
    },
    updatePolicy: (id, patch) => table.update(id, patch),
  };
}

export function redisOnceStore(client: RedisCommands, keys: RedisKeys): OnceStore {
  return {
    claimOnce: async (id, ttlMs) => {
      const reply = await client.set(keys.once(id), "1", {
        condition: "NX",
        expiration: { type: "PX", value: Math.max(1, Math.ceil(ttlMs)) },
      });
      return reply === "OK";
    },
  };
}
