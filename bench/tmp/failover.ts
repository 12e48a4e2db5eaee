import { createRedisStore } from "../../orchestrator/src/store/redis-store.js";
import { startRedisCluster } from "../../test/support/redis-cluster.js";

const c = await startRedisCluster({ nodeTimeoutMs: 1000 });
console.log("cluster up", c.url);
const store = await createRedisStore(c.url, {
  replicaId: "x",
  waitReplicas: 1,
  log: { warn: (o, m) => console.log("WARN", m, JSON.stringify(o)) },
});
await store.queue.enqueue("agt_0", { id: "cmd_0", createdAt: new Date(), expiresAt: undefined, payload: undefined });
await store.syncReplicas();
const victim = await c.masterOf("k8sd:{agt_0}:queue");
console.log("killing", victim);
const t0 = Date.now();
await c.kill(victim);
for (let i = 0; i < 100; i++) {
  const r = await store.queue.pendingCount("agt_0").then(
    (n) => `ok ${n}`,
    (e: Error) => `err ${e.constructor.name} ${e.message}`,
  );
  console.log(Date.now() - t0, r);
  if (r.startsWith("ok")) break;
  await new Promise((res) => setTimeout(res, 500));
}
await store.close();
await c.stop();
process.exit(0);
