// The store contract on a real Redis Cluster (3 masters + 3 replicas on loopback, started here):
// every key-routed command, the scripts (one slot each), the feed's blocking reader on its own
// connections, and the bus over sharded Pub/Sub, across two Store instances. Plus what only a
// cluster has: a master killed -9 is replaced by its replica and nothing written with WAIT is lost.
import { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { Deployment, DeploymentEvent, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { redisContractFixture, uniquePrefix } from "./redis-contract-fixture.js";
import { createRedisStore } from "./redis-store.js";
import { storeContract } from "./store.contract.js";
import type { BusMessage } from "./store.js";

// The helper lives in the repository's test/support (see redis-store.test.ts for why it is loaded
// at run time); its shape is restated here.
interface RedisCluster {
  url: string;
  masterOf(key: string): Promise<number>;
  waitHealthy(timeoutMs?: number): Promise<void>;
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}
const supportModule: string = "../../../test/support/redis-cluster.js";
const { startRedisCluster } = (await import(supportModule)) as {
  startRedisCluster(options?: { masters?: number; nodeTimeoutMs?: number }): Promise<RedisCluster>;
};

let shared: Promise<RedisCluster> | undefined;
const cluster = () => {
  shared ??= startRedisCluster();
  return shared;
};
const owned: RedisCluster[] = [];

test.after.always(async () => {
  await (await shared)?.stop();
  await Promise.all(owned.map((c) => c.stop()));
});

// Every fixture has its own prefix in a cluster that lives only for this file.
storeContract("redis-cluster", async (options) => redisContractFixture((await cluster()).url, options));

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.serial(
  "redis-cluster: a master killed -9 is replaced by its replica; everything written before WAIT returned is there",
  async (t) => {
    const own = await startRedisCluster({ nodeTimeoutMs: 1000 });
    owned.push(own);
    const keyPrefix = uniquePrefix();
    const writer = await createRedisStore(own.url, { replicaId: "writer", keyPrefix, waitReplicas: 1 });
    const reader = await createRedisStore(own.url, { replicaId: "reader", keyPrefix });
    t.teardown(async () => {
      await writer.close();
      await reader.close();
    });
    const bus: BusMessage[] = [];
    await reader.bus.subscribe((m) => bus.push(m));
    // 40 agents' queues and 40 deployments land on every master.
    const ids = Array.from({ length: 40 }, (_, i) => i);
    for (const i of ids) {
      await writer.queue.enqueue(`agt_${i}`, Command.fromPartial({ id: `cmd_${i}`, createdAt: new Date(1000) }));
      await writer.deployments.createDeployment(
        Deployment.fromPartial({ id: `dep_${String(i).padStart(4, "0")}`, agentId: `agt_${i}` }),
        DeploymentEvent.fromPartial({ seq: 1, state: DeploymentState.DEPLOYMENT_STATE_QUEUED, message: "queued" }),
      );
    }
    await writer.syncReplicas();

    const victim = await own.masterOf(`${keyPrefix}{agt_0}:queue`);
    await own.kill(victim);
    await own.waitHealthy(30_000);

    // Every queue and deployment is still there, readable from both instances.
    for (const i of ids) {
      await waitFor(async () => (await reader.queue.pendingCount(`agt_${i}`).catch(() => -1)) === 1);
      t.truthy(await reader.deployments.getDeployment(`dep_${String(i).padStart(4, "0")}`));
    }
    // The writer's client may still hold the dead master's connection for a moment (it fails at once,
    // no offline queue, and the topology refresh follows): a take that is refused leaves nothing behind.
    let taken: Awaited<ReturnType<typeof writer.queue.take>> = [];
    await waitFor(async () => {
      const got = await writer.queue
        .take("agt_0", "after-failover", { includePending: true, count: 10 })
        .catch(() => undefined);
      if (got) taken = got;
      return got !== undefined;
    });
    t.deepEqual(
      taken.map((e) => e.command.id),
      ["cmd_0"],
    );
    // The bus still crosses the cluster (node-redis resubscribes the sharded channel on the new master).
    await waitFor(async () => {
      await writer.bus.publish({ type: "queued", agentId: "agt_after" }).catch(() => {});
      return bus.some((m) => m.type === "queued" && m.agentId === "agt_after");
    });
    t.pass();
  },
);
