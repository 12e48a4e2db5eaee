// Test helper: a real Redis Cluster on loopback — `masters` redis-server masters with one replica
// each (cluster mode, AOF fsynced on every write), joined by `redis-cli --cluster create`. Each node
// is a test/support/redis-server.ts server in its own directory, stopped by pid. Ports are taken
// below the kernel's ephemeral range, with their cluster-bus port (+10000) free too.
import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type RedisServer, startRedisServer } from "./redis-server.js";

const run = promisify(execFile);

export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:p1,…` with every node as a seed. */
  url: string;
  nodes: RedisServer[];
  /** redis-cli against one node. */
  cli(port: number, args: string[]): Promise<string>;
  /** The port of the master serving `key`'s slot. */
  masterOf(key: string): Promise<number>;
  /** Waits until every slot is served by a reachable master and the cluster state is ok. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** kill -9 of one node (by port); it stays down. */
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  masters?: number;
  /** cluster-node-timeout: how soon a silent master is failed over (default 1000 ms). */
  nodeTimeoutMs?: number;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const port = 12_000 + Math.floor(Math.random() * 8000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error("no free port pair for a cluster node");
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const nodeTimeout = options.nodeTimeoutMs ?? 1000;
  const root = await mkdtemp(join(tmpdir(), "k8sd-redis-cluster-"));
  const taken = new Set<number>();
  const nodes: RedisServer[] = [];
  const down = new Set<number>();
  const up = () => nodes.filter((n) => !down.has(n.port));
  const cli = async (port: number, args: string[]) =>
    (await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: 30_000 })).stdout;
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < masters * 2; i++) ports.push(await clusterPort(taken));
    nodes.push(
      ...(await Promise.all(
        ports.map(async (port, i) =>
          startRedisServer({
            port,
            dir: await mkdtemp(join(root, `node-${i}-`)),
            appendonly: true,
            extraArgs: [
              "--cluster-enabled",
              "yes",
              "--cluster-config-file",
              "nodes.conf",
              "--cluster-node-timeout",
              String(nodeTimeout),
              // A replica fails over however long it was out of touch (the test kills masters at once).
              "--cluster-replica-validity-factor",
              "0",
              // Replicas get their first full copy at once, not after the default 5 s delay.
              "--repl-diskless-sync-delay",
              "0",
            ],
          }),
        ),
      )),
    );
    await run(
      "redis-cli",
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "1", "--cluster-yes"],
      { timeout: 60_000 },
    );
    const cluster: RedisCluster = {
      url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`,
      nodes,
      cli,
      async masterOf(key) {
        const slot = Number((await cli(ports[0]!, ["CLUSTER", "KEYSLOT", key])).trim());
        for (const { port } of up()) {
          const shards = await cli(port, ["CLUSTER", "SLOTS"]).catch(() => "");
          if (shards === "") continue;
          // redis-cli prints CLUSTER SLOTS as lines: start, end, master ip, master port, id, …
          const lines = shards.split("\n").map((l) => l.trim());
          for (let i = 0; i + 3 < lines.length; i++) {
            const start = Number(lines[i]);
            const end = Number(lines[i + 1]);
            if (lines[i + 2] === "127.0.0.1" && Number.isInteger(start) && slot >= start && slot <= end) {
              return Number(lines[i + 3]);
            }
          }
        }
        throw new Error(`no master found for slot ${slot}`);
      },
      async waitHealthy(timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const alive = up();
          const infos = await Promise.all(alive.map((n) => cli(n.port, ["CLUSTER", "INFO"]).catch(() => "")));
          if (infos.length > 0 && infos.every((i) => /cluster_state:ok/.test(i) && /cluster_slots_ok:16384/.test(i))) {
            return;
          }
          if (Date.now() > deadline) throw new Error(`the Redis Cluster did not become healthy:\n${infos.join("\n")}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      },
      async kill(port) {
        down.add(port);
        await nodes.find((n) => n.port === port)?.stop("SIGKILL");
      },
      stop,
    };
    await cluster.waitHealthy();
    // Replicas are attached and in sync before anyone relies on WAIT.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const roles = await Promise.all(ports.map((p) => cli(p, ["INFO", "replication"])));
      const masterRoles = roles.filter((r) => /role:master/.test(r));
      // Online: the initial copy is done and the replica acknowledges writes (what WAIT counts).
      if (masterRoles.length === masters && masterRoles.every((r) => /slave0:.*state=online/.test(r))) break;
      if (Date.now() > deadline) throw new Error("the cluster's replicas did not attach in time");
      await new Promise((r) => setTimeout(r, 200));
    }
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}
