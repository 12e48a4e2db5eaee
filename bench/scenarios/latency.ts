// Rows "Deploy accepted → command at a connected agent, 200/s" (memory and Redis store).
// One simulated agent runs inside this process, so the Deploy's start and the command's arrival are
// read from one clock. Deploys are sent open-loop at a fixed rate (a late send does not delay the
// next one), each to its own workload so nothing is superseded. Floor, same run and same rate: the
// p50 unary RTT of a bare grpc-js Deploy stub plus the p50 RTT of one XADD to the same kind of Redis.
import { createClient } from "redis";
import type { RedisServer } from "../../test/support/redis-server.js";
import { createAgents, DeployCaller, deployRequest } from "../lib/clients.js";
import { sleep, startBareServer, until } from "../lib/processes.js";
import { type Row, row } from "../lib/report.js";
import { round, type Summary, summarize } from "../lib/stats.js";
import { ADMIN_TOKEN, type StoreKind, startRedis, startSut } from "../lib/sut.js";
import { SimAgent } from "../sim/sim-agent.js";

export interface LatencyOptions {
  rate: number;
  seconds: number;
  warmupSeconds: number;
}

/** Calls `fn(i)` at `rate` per second for `seconds`, open loop; resolves when every call settled. */
async function openLoop(rate: number, seconds: number, fn: (i: number) => Promise<void>): Promise<void> {
  const total = Math.round(rate * seconds);
  const gap = 1000 / rate;
  const start = performance.now();
  const calls: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = start + i * gap - performance.now();
    if (wait >= 1) await sleep(wait);
    calls.push(fn(i));
  }
  await Promise.allSettled(calls);
}

export interface Floor {
  unary: Summary;
  xadd: Summary;
  /** unary p50 + XADD p50 (ms). */
  p50: number;
  p99: number;
}

export async function measureFloor(options: LatencyOptions, redis?: RedisServer): Promise<Floor> {
  const bare = await startBareServer();
  const ownRedis = redis ?? (await startRedis());
  try {
    const caller = new DeployCaller(`127.0.0.1:${bare.port}`);
    const unary: number[] = [];
    await openLoop(options.rate, options.warmupSeconds, async (i) => {
      await caller.deploy("kdk_x", deployRequest(`w${i}`, "registry.example/app:1"));
    });
    await openLoop(options.rate, options.seconds, async (i) => {
      const t0 = performance.now();
      await caller.deploy("kdk_x", deployRequest(`w${i}`, "registry.example/app:1"));
      unary.push(performance.now() - t0);
    });
    caller.close();
    const client = createClient({ url: ownRedis.url });
    client.on("error", () => {});
    await client.connect();
    const xadd: number[] = [];
    await openLoop(options.rate, options.seconds, async (i) => {
      const t0 = performance.now();
      await client.xAdd("bench:floor", "*", { id: `c${i}`, cmd: "x".repeat(200) });
      xadd.push(performance.now() - t0);
    });
    await client.del("bench:floor");
    client.destroy();
    const u = summarize(unary);
    const x = summarize(xadd);
    return { unary: u, xadd: x, p50: u.p50 + x.p50, p99: u.p99 + x.p99 };
  } finally {
    await bare.stop();
    if (!redis) await ownRedis.stop("SIGKILL");
  }
}

export async function runLatency(store: StoreKind, options: LatencyOptions, floor: Floor): Promise<Row> {
  const sut = await startSut({ store });
  try {
    const [agent] = await createAgents(sut.address, ADMIN_TOKEN, 1);
    const sentAt = new Map<string, number>();
    const receivedAt = new Map<string, number>();
    let measuring = false;
    const latencies: number[] = [];
    const settle = (id: string) => {
      const s = sentAt.get(id);
      const r = receivedAt.get(id);
      if (s === undefined || r === undefined) return;
      sentAt.delete(id);
      receivedAt.delete(id);
      if (measuring) latencies.push(r - s);
    };
    let welcomed = false;
    const sim = new SimAgent(agent!.id, agent!.token, sut.address, "complete", {
      welcome: () => {
        welcomed = true;
      },
      command: (_a, command) => {
        receivedAt.set(command.id, performance.now());
        settle(command.id);
      },
    });
    sim.start();
    await until(() => welcomed, "the simulated agent to connect", 30_000);
    const caller = new DeployCaller(sut.address);
    let errors = 0;
    const one = async (i: number) => {
      const t0 = performance.now();
      try {
        const res = await caller.deploy(agent!.key, deployRequest(`w${i}`, `registry.example/app:${i}`));
        sentAt.set(res.deployment!.id, t0);
        settle(res.deployment!.id);
      } catch {
        errors++;
      }
    };
    await openLoop(options.rate, options.warmupSeconds, one);
    measuring = true;
    await openLoop(options.rate, options.seconds, one);
    await sleep(500);
    measuring = false;
    caller.close();
    sim.stop();
    const s = summarize(latencies);
    const ratio = s.p50 / floor.p50;
    const expected = Math.round(options.rate * options.seconds);
    const goalP50 = store === "memory" ? 1.3 : 1.5;
    const pass = ratio <= goalP50 && s.p99 <= 10 && errors === 0 && s.count === expected;
    return row({
      id: `latency-${store}`,
      metric: `Deploy accepted → command at a connected agent, ${options.rate}/s, ${store} store`,
      figure: `p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms`,
      floor: `unary RTT + XADD ${floor.p50.toFixed(2)} ms (p99 ${floor.p99.toFixed(2)})`,
      ratio: round(ratio, 2),
      goal: `p50 ≤ ${goalP50}× floor, p99 ≤ 10 ms`,
      pass,
      details: {
        latencyMs: mapRound(s),
        floor: { unaryMs: mapRound(floor.unary), xaddMs: mapRound(floor.xadd) },
        expected,
        errors,
      },
    });
  } finally {
    await sut.stop();
  }
}

export function mapRound(s: Summary): Record<string, number> {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v)]));
}
