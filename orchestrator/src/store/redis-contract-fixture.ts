// The store contract's fixture for a Redis store (one server or a cluster): stores under a key prefix
// of their own, a peer replica on demand, all closed at cleanup (then `afterClose`, e.g. dropping
// the prefix on a server shared by several test files).
import { randomBytes } from "node:crypto";
import { createRedisStore } from "./redis-store.js";
import type { ContractOptions, StoreFixture } from "./store.contract.js";
import type { Store } from "./store.js";

export const uniquePrefix = (): string => `k8sd:test-${randomBytes(6).toString("hex")}:`;

export async function redisContractFixture(
  url: string,
  options: ContractOptions | undefined,
  afterClose?: (keyPrefix: string) => Promise<void>,
): Promise<StoreFixture> {
  const keyPrefix = uniquePrefix();
  const stores: Store[] = [];
  const open = async (replicaId: string) => {
    const store = await createRedisStore(url, { replicaId, keyPrefix, retentionSeconds: options?.retentionSeconds });
    stores.push(store);
    return store;
  };
  const store = await open("replica-a");
  return {
    store,
    peer: () => open(`replica-${stores.length}`),
    cleanup: async () => {
      await Promise.all(stores.map((s) => s.close()));
      await afterClose?.(keyPrefix);
    },
  };
}
