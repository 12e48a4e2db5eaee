import { createRedisStore } from "../../orchestrator/src/store/redis-store.js";
import { startRedisCluster } from "../../test/support/redis-cluster.js";

const c = await startRedisCluster({ nodeTimeoutMs: 1000 });
const store = await createRedisStore(c.url, {
  replicaId: "vm-1",
  waitReplicas: 1,
  log: { warn: (o, m) => console.log("WARN", m, JSON.stringify(o)) },
});
const withTimeout = <T>(p: Promise<T>, what: string) =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${what} hung`)), 5000))]);
await store.bus.subscribe(() => {});
console.log(
  "take1",
  await withTimeout(store.queue.take("agt_q", "vm-1", { includePending: true, count: 100 }), "take1").catch(String),
);
await store.queue.enqueue("agt_q", {
  id: "cmd_1",
  createdAt: new Date(),
  expiresAt: new Date(Date.now() + 60000),
  payload: undefined,
});
console.log(
  "take2",
  await withTimeout(store.queue.take("agt_q", "vm-1", { includePending: false, count: 100 }), "take2").catch(String),
);
await store.close();
await c.stop();
process.exit(0);
