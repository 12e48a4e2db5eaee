// The system under test: a real `k8sdeploy serve` process (the built CLI) on the memory store or on
// a private redis-server, with the production defaults (log level info, AOF everysec).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "redis";
import { type Orchestrator, startOrchestrator } from "../../test/support/orchestrator.js";
import { type RedisServer, startRedisServer } from "../../test/support/redis-server.js";
import { repoRoot } from "../../test/support/tools.js";
import { sutNode } from "./processes.js";

export type StoreKind = "memory" | "redis";

export const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123456789";

export interface Sut {
  orchestrator: Orchestrator;
  address: string;
  pid: number;
  redis: RedisServer | undefined;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  return await startRedisServer({ appendonly: true, appendfsync: "everysec" });
}

export interface SutOptions {
  store: StoreKind;
  /** Reuse this Redis (else a fresh one is started for a Redis store). */
  redis?: RedisServer;
  grpcPort?: number;
  env?: Record<string, string | undefined>;
  nodeArgs?: string[];
}

export async function startSut(options: SutOptions): Promise<Sut> {
  const redis = options.store === "redis" ? (options.redis ?? (await startRedis())) : undefined;
  // The single-file bundle the orchestrator image ships, when it is built; else the tsc output.
  // BENCH_ORCHESTRATOR_BUNDLE=<file>: another build (A/B runs of two variants in one session).
  const bundle =
    process.env.BENCH_ORCHESTRATOR_BUNDLE ?? join(repoRoot, "orchestrator", "dist", "bundle", "k8sdeploy.mjs");
  const orchestrator = await startOrchestrator({
    node: sutNode(),
    script: existsSync(bundle) ? bundle : undefined,
    env: {
      K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN,
      K8SDEPLOY_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
      K8SDEPLOY_GRPC_LISTEN: `127.0.0.1:${options.grpcPort ?? 0}`,
      ...(redis ? { K8SDEPLOY_REDIS_URL: redis.url } : {}),
      ...options.env,
    },
    // BENCH_CPU_PROFILE=<dir>: a V8 CPU profile of every orchestrator process (see lib/profile.ts).
    // BENCH_NODE_ARGS="--flag …": more Node flags for every orchestrator process (A/B runs).
    nodeArgs: [
      ...(options.nodeArgs ?? []),
      ...(process.env.BENCH_NODE_ARGS?.split(" ").filter((a) => a !== "") ?? []),
      ...(process.env.BENCH_CPU_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`] : []),
    ],
    timeoutMs: 60_000,
  });
  return {
    orchestrator,
    address: orchestrator.grpcAddress,
    pid: orchestrator.process.pid ?? -1,
    redis,
    async stop(signal = "SIGTERM") {
      await orchestrator.stop(signal, 20_000);
      if (!options.redis) await redis?.stop("SIGKILL");
    },
  };
}

/** Total calls per Redis command (INFO commandstats). */
export async function commandStats(url: string): Promise<Record<string, number>> {
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  try {
    const info = await client.info("commandstats");
    const out: Record<string, number> = {};
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
    return out;
  } finally {
    client.destroy();
  }
}

export function commandDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}
