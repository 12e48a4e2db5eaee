// The store contract against a real redis-server (started here on a free port, in a temporary
// directory), plus what only Redis has: durability across a crash, several replicas, hash tags,
// reconnection, and a process that exits once the store is closed.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { Deployment, DeploymentEvent, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test, { type ExecutionContext } from "ava";
import { createClient } from "redis";
import { redisContractFixture, uniquePrefix } from "./redis-contract-fixture.js";
import { createRedisStore } from "./redis-store.js";
import { storeContract } from "./store.contract.js";
import type { BusMessage, FeedEntry, Store } from "./store.js";

// The helper lives in the repository's test/support (shared by every package's tests), outside
// this project's rootDir: a static import would pull it into the orchestrator's tsc program
// (TS6059), so it is loaded at run time (tsx) and its shape is restated here.
interface RedisServer {
  url: string;
  port: number;
  dir: string;
  pid: number;
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  restart(): Promise<void>;
}
const supportModule: string = "../../../test/support/redis-server.js";
const { startRedisServer } = (await import(supportModule)) as {
  startRedisServer(options: { dir?: string; appendonly?: boolean }): Promise<RedisServer>;
};

// One server for the contract tests; every fixture gets its own key prefix, so tests run
// concurrently without seeing each other's data. K8SDEPLOY_REDIS_URL points them at an
// existing server instead (the Redis-only tests below always start their own).
let shared: RedisServer | undefined;
const sharedUrl = async () => {
  const external = process.env.K8SDEPLOY_REDIS_URL;
  if (external) return external;
  shared ??= await startRedisServer({ appendonly: true });
  return shared.url;
};
const servers: RedisServer[] = [];

test.before(async () => {
  await sharedUrl();
});

test.after.always(async () => {
  await shared?.stop("SIGKILL");
  await Promise.all(servers.map((s) => s.stop("SIGKILL")));
});

/** Deletes a test's keys (matters when K8SDEPLOY_REDIS_URL points at a server that outlives us). */
async function dropPrefix(url: string, prefix: string): Promise<void> {
  const raw = createClient({ url });
  raw.on("error", () => {});
  await raw.connect();
  try {
    for await (const batch of raw.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (batch.length > 0) await raw.unlink(batch);
    }
  } finally {
    raw.destroy();
  }
}

storeContract("redis", async (options) => {
  const url = await sharedUrl();
  return redisContractFixture(url, options, (prefix) => dropPrefix(url, prefix));
});

async function ownServer(): Promise<RedisServer> {
  const server = await startRedisServer({ appendonly: true });
  servers.push(server);
  return server;
}

function command(id: string): Command {
  return Command.fromPartial({
    id,
    createdAt: new Date(1_000),
    payload: { $case: "describeNamespaces", value: {} },
  });
}

function deployment(id: string): Deployment {
  return Deployment.fromPartial({
    id,
    agentId: "agt_a",
    namespace: "web",
    workload: "frontend",
    image: "app:1",
    state: DeploymentState.DEPLOYMENT_STATE_QUEUED,
    createdAt: new Date(1_000),
  });
}

function event(message: string, state = DeploymentState.DEPLOYMENT_STATE_QUEUED): DeploymentEvent {
  return DeploymentEvent.fromPartial({ time: new Date(2_000), state, message });
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("redis: commands, deployments and events survive kill -9 of redis-server (AOF)", async (t) => {
  const server = await ownServer();
  const before = await createRedisStore(server.url, { replicaId: "before" });
  for (const id of ["cmd_1", "cmd_2", "cmd_3"]) await before.queue.enqueue("agt_a", command(id));
  t.deepEqual(
    (await before.queue.take("agt_a", "conn_1", { includePending: false, count: 1 })).map((e) => e.command.id),
    ["cmd_1"],
  );
  await before.deployments.createDeployment(deployment("dep_0001"), event("queued"), "key_1/abc");
  await before.deployments.appendEvent("dep_0001", (current) => ({
    deployment: { ...current, state: DeploymentState.DEPLOYMENT_STATE_DELIVERED, message: "delivered" },
    event: event("delivered", DeploymentState.DEPLOYMENT_STATE_DELIVERED),
  }));
  await before.agents.createAgent({ id: "agt_a", name: "a", createdAt: new Date(5_000), tokens: [] });

  await server.stop("SIGKILL");
  t.false(await before.ping());
  await before.close(); // must not hang while Redis is down
  await server.restart();

  const after = await createRedisStore(server.url, { replicaId: "after" });
  t.teardown(() => after.close());
  t.is(await after.queue.pendingCount("agt_a"), 3);
  t.deepEqual(
    (await after.queue.take("agt_a", "conn_2", { includePending: true, count: 10 })).map((e) => [
      e.command.id,
      e.deliveries,
      Command.toJSON(e.command),
    ]),
    [
      ["cmd_1", 1, Command.toJSON(command("cmd_1"))],
      ["cmd_2", 0, Command.toJSON(command("cmd_2"))],
      ["cmd_3", 0, Command.toJSON(command("cmd_3"))],
    ],
  );
  const stored = await after.deployments.getDeployment("dep_0001");
  t.is(stored?.state, DeploymentState.DEPLOYMENT_STATE_DELIVERED);
  t.is(stored?.message, "delivered");
  t.deepEqual(
    (await after.deployments.listEvents("dep_0001", 0)).map((e) => [e.seq, e.message]),
    [
      [1, "queued"],
      [2, "delivered"],
    ],
  );
  t.deepEqual(
    (await after.deployments.listDeployments({}, 10, "")).deployments.map((d) => d.id),
    ["dep_0001"],
  );
  const retried = await after.deployments.createDeployment(deployment("dep_0002"), event("queued"), "key_1/abc");
  t.false(retried.created);
  t.is(retried.deployment.id, "dep_0001");
  t.deepEqual((await after.agents.getAgent("agt_a"))?.createdAt, new Date(5_000));
  // The feed survived too: replay from the start has both changes.
  const replayed: FeedEntry[] = [];
  const sub = await after.deployments.followFeed("0-0", (e) => replayed.push(e));
  await waitFor(() => replayed.length >= 2);
  t.deepEqual(
    replayed.map((e) => e.event.seq),
    [1, 2],
  );
  sub.close();
});

/** Two stores (replicas "a" and "b") on the shared server under a fresh prefix, dropped after the test. */
async function twoReplicas(t: ExecutionContext): Promise<[Store, Store]> {
  const url = await sharedUrl();
  const keyPrefix = uniquePrefix();
  const a = await createRedisStore(url, { replicaId: "a", keyPrefix });
  const b = await createRedisStore(url, { replicaId: "b", keyPrefix });
  t.teardown(async () => {
    await a.close();
    await b.close();
    await dropPrefix(url, keyPrefix);
  });
  return [a, b];
}

test("redis: a command taken by replica A and not acknowledged is handed to replica B with includePending", async (t) => {
  const [a, b] = await twoReplicas(t);
  await a.queue.enqueue("agt_x", command("cmd_1"));
  await b.queue.enqueue("agt_x", command("cmd_1")); // the same command from another replica: stored once
  t.is(await a.queue.pendingCount("agt_x"), 1);
  const takenByA = await a.queue.take("agt_x", "conn_a", { includePending: false, count: 10 });
  t.deepEqual(
    takenByA.map((e) => [e.command.id, e.deliveries]),
    [["cmd_1", 0]],
  );
  t.deepEqual(await b.queue.take("agt_x", "conn_b", { includePending: false, count: 10 }), []);
  const takenByB = await b.queue.take("agt_x", "conn_b", { includePending: true, count: 10 });
  t.deepEqual(
    takenByB.map((e) => [e.command.id, e.deliveries]),
    [["cmd_1", 1]],
  );
  await b.queue.ack("agt_x", "cmd_1");
  t.is(await a.queue.pendingCount("agt_x"), 0);
  t.deepEqual(await a.queue.take("agt_x", "conn_a", { includePending: true, count: 10 }), []);
});

test("redis: appends alternating between two replicas each build on the other's write (no lost or duplicate event)", async (t) => {
  const [a, b] = await twoReplicas(t);
  // A remembers what it wrote (create, then each append); B's writes in between make that stale.
  await a.deployments.createDeployment(deployment("dep_0001"), event("queued"));
  const seen: number[] = [];
  for (let i = 0; i < 6; i++) {
    const writer = i % 2 === 0 ? a : b;
    const applied = await writer.deployments.appendEvent("dep_0001", (current, count) => {
      seen.push(count);
      return { deployment: { ...current, message: `step ${i}` }, event: event(`step ${i}`) };
    });
    t.is(applied?.event.seq, i + 2);
    t.is(applied?.deployment.message, `step ${i}`);
  }
  const events = await b.deployments.listEvents("dep_0001", 0);
  t.deepEqual(
    events.map((e) => [e.seq, e.message]),
    [[1, "queued"], ...Array.from({ length: 6 }, (_, i) => [i + 2, `step ${i}`])],
  );
  // Every update ran on the latest count (a stale starting point is retried, never written).
  t.deepEqual(
    seen.filter((c, i) => seen.indexOf(c) === i),
    [1, 2, 3, 4, 5, 6],
  );
  t.is((await a.deployments.getDeployment("dep_0001"))?.message, "step 5");
});

test("redis: key layout — prefixed keys, one hash tag per agent queue and per deployment", async (t) => {
  const url = await sharedUrl();
  const keyPrefix = uniquePrefix();
  const store = await createRedisStore(url, { replicaId: "layout", keyPrefix });
  const raw = createClient({ url });
  raw.on("error", () => {});
  await raw.connect();
  t.teardown(async () => {
    await store.close();
    raw.destroy();
    await dropPrefix(url, keyPrefix);
  });
  await store.queue.enqueue("agt_layout", command("cmd_1"));
  await store.queue.enqueue("agt_layout", command("cmd_2"));
  await store.queue.take("agt_layout", "conn", { includePending: true, count: 10 });
  await store.queue.ack("agt_layout", "cmd_1");
  await store.deployments.createDeployment(deployment("dep_0001"), event("queued"), "scope");
  await store.agents.createAgent({ id: "agt_layout", name: "l", createdAt: new Date(), tokens: [] });

  const keys: string[] = [];
  for await (const batch of raw.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 100 })) keys.push(...batch);
  t.true(keys.every((k) => k.startsWith("k8sd:")));
  const agentKeys = keys.filter((k) => k.includes("agt_layout") && !k.includes(":agent:")).sort();
  t.deepEqual(agentKeys, [`${keyPrefix}{agt_layout}:inflight`, `${keyPrefix}{agt_layout}:queue`]);
  const depKeys = keys.filter((k) => k.includes("dep_0001")).sort();
  t.deepEqual(depKeys, [`${keyPrefix}dep:{dep_0001}`, `${keyPrefix}dep:{dep_0001}:events`]);
  // Same hash slot per group (what Redis Cluster needs for the scripts).
  const slot = (k: string) => raw.sendCommand(["CLUSTER", "KEYSLOT", k]).catch(() => undefined);
  if ((await slot("x")) !== undefined) {
    t.is(await slot(agentKeys[0] ?? ""), await slot(agentKeys[1] ?? ""));
    t.is(await slot(depKeys[0] ?? ""), await slot(depKeys[1] ?? ""));
  }
  t.is(await raw.type(`${keyPrefix}{agt_layout}:queue`), "stream");
  t.is(await raw.type(`${keyPrefix}feed`), "stream");
  t.is(await raw.type(`${keyPrefix}deps`), "zset");
  t.is(await raw.get(`${keyPrefix}idem:scope`), "dep_0001");
});

test("redis: a queue whose stream and consumer group vanished is recreated on the next take", async (t) => {
  const url = await sharedUrl();
  const keyPrefix = uniquePrefix();
  const store = await createRedisStore(url, { replicaId: "nogroup", keyPrefix });
  const raw = createClient({ url });
  raw.on("error", () => {});
  await raw.connect();
  t.teardown(async () => {
    await store.close();
    raw.destroy();
    await dropPrefix(url, keyPrefix);
  });
  await store.queue.enqueue("agt_g", command("cmd_1"));
  t.is((await store.queue.take("agt_g", "c", { includePending: true, count: 10 })).length, 1);
  await raw.del([`${keyPrefix}{agt_g}:queue`, `${keyPrefix}{agt_g}:inflight`]);
  await store.queue.enqueue("agt_g", command("cmd_2"));
  t.deepEqual(
    (await store.queue.take("agt_g", "c", { includePending: true, count: 10 })).map((e) => e.command.id),
    ["cmd_2"],
  );
  await store.queue.ack("agt_g", "cmd_2");
  t.is(await store.queue.pendingCount("agt_g"), 0);
});

test("redis: a running store survives a Redis restart (reconnects; queue, feed and bus work again)", async (t) => {
  const server = await ownServer();
  const store = await createRedisStore(server.url, { replicaId: "survivor" });
  const observer = await createRedisStore(server.url, { replicaId: "observer" });
  t.teardown(async () => {
    await store.close();
    await observer.close();
  });
  const feed: FeedEntry[] = [];
  const bus: BusMessage[] = [];
  await store.deployments.followFeed(undefined, (e) => feed.push(e));
  await store.bus.subscribe((m) => bus.push(m));
  await store.queue.enqueue("agt_a", command("cmd_1"));
  await store.deployments.createDeployment(deployment("dep_0001"), event("queued"));
  await waitFor(() => feed.length >= 1);

  await server.stop("SIGKILL");
  await waitFor(async () => !(await store.ping()));
  await server.restart();
  // Both reconnect on their own; until one has, its commands fail fast (ClientOfflineError).
  await waitFor(async () => (await store.ping()) && (await observer.ping()));

  t.is(await store.queue.pendingCount("agt_a"), 1);
  await store.queue.enqueue("agt_a", command("cmd_2"));
  t.deepEqual(
    (await store.queue.take("agt_a", "conn", { includePending: true, count: 10 })).map((e) => e.command.id),
    ["cmd_1", "cmd_2"],
  );
  const appended = await store.deployments.appendEvent("dep_0001", (current) => ({
    deployment: current,
    event: event("after restart"),
  }));
  t.is(appended?.event.seq, 2);
  await observer.deployments.appendEvent("dep_0001", (current) => ({
    deployment: current,
    event: event("from the other replica"),
  }));
  await waitFor(() => feed.length >= 3);
  t.deepEqual(
    feed.map((e) => [e.event.seq, e.event.message]),
    [
      [1, "queued"],
      [2, "after restart"],
      [3, "from the other replica"],
    ],
  );
  // The subscriber connection resubscribed by itself, and told its listeners that messages may
  // have been lost meanwhile.
  await waitFor(async () => {
    await observer.bus.publish({ type: "queued", agentId: "agt_a" });
    return bus.some((m) => m.type === "queued");
  });
  t.deepEqual(bus[0], { type: "resync" });
  t.deepEqual(
    bus.find((m) => m.type === "queued"),
    { type: "queued", agentId: "agt_a" },
  );
});

test("redis: ping is false while Redis is unreachable", async (t) => {
  const server = await ownServer();
  const store = await createRedisStore(server.url, { replicaId: "pinger" });
  t.teardown(() => store.close());
  t.true(await store.ping());
  await server.stop("SIGTERM");
  await waitFor(async () => !(await store.ping()));
  t.false(await store.ping());
  await server.restart();
  await waitFor(() => store.ping());
  t.true(await store.ping());
});

test("redis: a process that closes its store exits by itself", async (t) => {
  const url = await sharedUrl();
  const storeModule = fileURLToPath(new URL("./redis-store.ts", import.meta.url));
  const keyPrefix = uniquePrefix();
  t.teardown(() => dropPrefix(url, keyPrefix));
  const script = `
    const { createRedisStore } = await import(${JSON.stringify(storeModule)});
    const a = await createRedisStore(${JSON.stringify(url)}, { replicaId: "exit-a", keyPrefix: ${JSON.stringify(keyPrefix)} });
    await a.deployments.followFeed(undefined, () => {});
    await a.bus.subscribe(() => {});
    await a.queue.enqueue("agt_a", { id: "cmd_1", createdAt: new Date(), payload: undefined });
    await a.queue.take("agt_a", "c", { includePending: true, count: 1 });
    await a.deployments.listDeployments({}, 10, "");
    await a.ping();
    await a.close();
    console.log("closed");
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => {
    output += d;
  });
  child.stderr.on("data", (d) => {
    output += d;
  });
  const started = Date.now();
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve(null);
    }, 60_000);
    child.once("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.is(code, 0, output);
  t.true(output.includes("closed"), output);
  t.true(Date.now() - started < 60_000);
});
