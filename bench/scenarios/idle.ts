// Rows "N idle agent streams" (Redis and memory store) and the restart row (kill -9 + immediate
// restart with N agents and queued commands). Simulated agents spread over several child processes
// connect at a bounded rate, then everything idles: the server's RSS (start and end of the window:
// "growing"?), its CPU, the heartbeat round trips the agents see, and Redis commands per second.
// Floor: the same fleet against the bare grpc-js server (floors/bare-server.ts).
import type { RedisServer } from "../../test/support/redis-server.js";
import { type AgentWithKey, createAgents, DeployCaller, deployRequest } from "../lib/clients.js";
import { type Fleet, startFleet } from "../lib/fleet.js";
import { freePort, sleep, startBareServer, until } from "../lib/processes.js";
import { cpuPercent, mib, type ProcSample, sample, watch } from "../lib/procstat.js";
import { type Row, row } from "../lib/report.js";
import { round, summarize } from "../lib/stats.js";
import { ADMIN_TOKEN, commandDelta, commandStats, type StoreKind, type Sut, startRedis, startSut } from "../lib/sut.js";
import { mapRound } from "./latency.js";

export interface IdleOptions {
  agents: number;
  fleetProcesses: number;
  rampPerSecond: number;
  /** Idle window measured after every agent connected and a settling pause. */
  idleSeconds: number;
  settleSeconds: number;
}

export interface IdleFigures {
  rssStartMiB: number;
  rssEndMiB: number;
  rssMaxMiB: number;
  cpuPercent: number;
  heartbeatRttMs: Record<string, number>;
  redisCommandsPerSecond?: number;
  redisCommands?: Record<string, number>;
  redisCpuPercent?: number;
}

async function measureIdle(pid: number, fleet: Fleet, options: IdleOptions, redis?: RedisServer): Promise<IdleFigures> {
  await sleep(options.settleSeconds * 1000);
  fleet.heartbeatRtts(true);
  const statsBefore = redis ? await commandStats(redis.url) : undefined;
  const redisBefore: ProcSample | undefined = redis ? sample(redis.pid) : undefined;
  const samples = await watch(pid, options.idleSeconds * 1000, 1000);
  const statsAfter = redis ? await commandStats(redis.url) : undefined;
  const redisAfter = redis ? sample(redis.pid) : undefined;
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const figures: IdleFigures = {
    rssStartMiB: round(mib(first.rssBytes), 1),
    rssEndMiB: round(mib(last.rssBytes), 1),
    rssMaxMiB: round(mib(Math.max(...samples.map((s) => s.rssBytes))), 1),
    cpuPercent: round(cpuPercent(first, last), 2),
    heartbeatRttMs: mapRound(summarize(fleet.heartbeatRtts(true))),
  };
  if (statsBefore && statsAfter && redisBefore && redisAfter) {
    const delta = commandDelta(statsBefore, statsAfter);
    delete delta.info;
    const total = Object.values(delta).reduce((a, b) => a + b, 0);
    figures.redisCommandsPerSecond = round(total / options.idleSeconds, 1);
    figures.redisCommands = delta;
    figures.redisCpuPercent = round(cpuPercent(redisBefore, redisAfter), 2);
  }
  if (fleet.connected() < fleet.size)
    throw new Error(`only ${fleet.connected()} of ${fleet.size} agents stayed connected`);
  return figures;
}

export async function idleFloor(options: IdleOptions): Promise<IdleFigures> {
  const bare = await startBareServer();
  const agents = Array.from({ length: options.agents }, (_, i) => ({ id: `agt_bare${i}`, token: "kda_bare" }));
  const fleet = startFleet(`127.0.0.1:${bare.port}`, agents, {
    processes: options.fleetProcesses,
    rampPerSecond: options.rampPerSecond / options.fleetProcesses,
  });
  try {
    await fleet.waitConnected(agents.length, (options.agents / options.rampPerSecond) * 1000 + 60_000);
    return await measureIdle(bare.pid, fleet, options);
  } finally {
    await fleet.stop();
    await bare.stop();
  }
}

export function idleRow(store: StoreKind, options: IdleOptions, ours: IdleFigures, floor: IdleFigures): Row {
  const rssRatio = ours.rssEndMiB / floor.rssEndMiB;
  const cpuRatio = ours.cpuPercent / Math.max(floor.cpuPercent, 0.1);
  const growing = ours.rssEndMiB - ours.rssStartMiB;
  const n = options.agents.toLocaleString("en-US");
  let goal = "≤ 1.3× floor RSS, ≤ 2× floor CPU";
  const pass = rssRatio <= 1.3 && cpuRatio <= 2;
  if (store === "memory") {
    goal = "≤ 1.3× floor RSS, ≤ 2× floor CPU; 20,000 streams ≤ 1 GiB";
  }
  return row({
    id: `idle-${store}`,
    metric: `${n} idle agent streams, ${store} store`,
    figure: `${Math.round(ours.rssEndMiB)} MiB (${growing >= 0 ? "+" : ""}${Math.round(growing)} over ${options.idleSeconds} s), ${ours.cpuPercent.toFixed(1)}% CPU, heartbeat p99 ${ours.heartbeatRttMs.p99} ms${ours.redisCommandsPerSecond !== undefined ? `, Redis ${Math.round(ours.redisCommandsPerSecond)} cmd/s` : ""}`,
    floor: `bare grpc-js server: ${Math.round(floor.rssEndMiB)} MiB, ${floor.cpuPercent.toFixed(1)}% CPU`,
    ratio: round(rssRatio, 2),
    ratioText: `RSS ${rssRatio.toFixed(2)}, CPU ${cpuRatio.toFixed(2)}`,
    goal,
    pass,
    details: { ours, floor, agents: options.agents },
  });
}

export async function connectIdle(
  store: StoreKind,
  options: IdleOptions,
  extra: { redis?: RedisServer; grpcPort?: number; agents?: AgentWithKey[]; holdIds?: string[] } = {},
): Promise<{ sut: Sut; agents: AgentWithKey[]; fleet: Fleet }> {
  const sut = await startSut({ store, redis: extra.redis, grpcPort: extra.grpcPort });
  const agents = extra.agents ?? (await createAgents(sut.address, ADMIN_TOKEN, options.agents, 64));
  const fleet = startFleet(sut.address, agents, {
    processes: options.fleetProcesses,
    rampPerSecond: options.rampPerSecond / options.fleetProcesses,
    mode: "hold",
    holdIds: extra.holdIds ?? [],
  });
  await fleet.waitConnected(agents.length, (options.agents / options.rampPerSecond) * 1000 + 120_000);
  return { sut, agents, fleet };
}

export async function runIdle(store: StoreKind, options: IdleOptions, floor: IdleFigures): Promise<Row> {
  const { sut, fleet } = await connectIdle(store, options);
  try {
    const ours = await measureIdle(sut.pid, fleet, options, sut.redis);
    return idleRow(store, options, ours, floor);
  } finally {
    await fleet.stop();
    await sut.stop("SIGKILL");
  }
}

export interface RestartOptions extends IdleOptions {
  /** Agents that hold their command (ack, no result) until it is redelivered after the restart. */
  queued: number;
}

/** Time from kill -9 to: every agent back (and, for ours, every held command redelivered). */
async function killAndRestart(
  fleet: Fleet,
  kill: () => Promise<void>,
  restart: () => Promise<void>,
  queued: number,
  timeoutMs: number,
): Promise<{ allBackMs: number; reconnectMs: number; redeliveryMs: number; redelivered: number }> {
  fleet.mark();
  const t0 = Date.now();
  await kill();
  await restart();
  await until(
    () => {
      const m = fleet.sinceMark();
      return m.reconnected >= fleet.size && m.redelivered >= queued;
    },
    "every agent to reconnect and every queued command to be redelivered",
    timeoutMs,
    250,
  );
  await sleep(300);
  const m = fleet.sinceMark();
  const reconnectMs = m.lastReconnectAt - t0;
  const redeliveryMs = queued > 0 ? m.lastRedeliveryAt - t0 : 0;
  return { allBackMs: Math.max(reconnectMs, redeliveryMs), reconnectMs, redeliveryMs, redelivered: m.redelivered };
}

export async function restartFloor(options: RestartOptions): Promise<number> {
  const port = await freePort();
  let bare = await startBareServer(port);
  const agents = Array.from({ length: options.agents }, (_, i) => ({ id: `agt_bare${i}`, token: "kda_bare" }));
  const fleet = startFleet(`127.0.0.1:${port}`, agents, {
    processes: options.fleetProcesses,
    rampPerSecond: options.rampPerSecond / options.fleetProcesses,
  });
  try {
    await fleet.waitConnected(agents.length, (options.agents / options.rampPerSecond) * 1000 + 60_000);
    await sleep(2000);
    const r = await killAndRestart(
      fleet,
      () => bare.stop("SIGKILL"),
      async () => {
        bare = await startBareServer(port);
      },
      0,
      180_000,
    );
    return r.allBackMs;
  } finally {
    await fleet.stop();
    await bare.stop();
  }
}

export async function runRestart(options: RestartOptions, floorMs: number): Promise<Row> {
  const redis = await startRedis();
  const port = await freePort();
  const bootstrap = await startSut({ store: "redis", redis, grpcPort: port });
  const agents = await createAgents(bootstrap.address, ADMIN_TOKEN, options.agents, 64);
  await bootstrap.stop();
  const holdIds = agents.slice(0, options.queued).map((a) => a.id);
  let { sut, fleet } = await connectIdle("redis", options, { redis, grpcPort: port, agents, holdIds });
  try {
    // Queue one command for each holding agent; they ack it and keep it running.
    const caller = new DeployCaller(sut.address);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (;;) {
          const i = next++;
          if (i >= options.queued) return;
          await caller.deploy(agents[i]!.key, deployRequest("held", `registry.example/app:${i}`));
        }
      }),
    );
    caller.close();
    await until(() => fleet.commands() >= options.queued, "the queued commands to reach their agents", 60_000);
    await sleep(2000);
    const startedAt: number[] = [];
    const r = await killAndRestart(
      fleet,
      () => sut.orchestrator.stop("SIGKILL").then(() => {}),
      async () => {
        const t = Date.now();
        sut = await startSut({ store: "redis", redis, grpcPort: port });
        startedAt.push(Date.now() - t);
      },
      options.queued,
      300_000,
    );
    const ratio = r.allBackMs / floorMs;
    const lost = options.queued - Math.min(options.queued, r.redelivered);
    return row({
      id: "restart-redis",
      metric: `kill -9 + immediate restart, ${options.agents.toLocaleString("en-US")} agents + ${options.queued.toLocaleString("en-US")} queued commands`,
      figure: `all back in ${(r.allBackMs / 1000).toFixed(1)} s, ${lost} lost`,
      floor: `bare server: all back in ${(floorMs / 1000).toFixed(1)} s`,
      ratio: round(ratio, 2),
      goal: "≤ 1.2× floor, 0 lost",
      pass: ratio <= 1.2 && lost === 0,
      details: { ...r, startUpMs: startedAt[0], floorMs, queued: options.queued, agents: options.agents },
    });
  } finally {
    await fleet.stop();
    // SIGTERM when profiling (BENCH_CPU_PROFILE): a process killed -9 writes no profile.
    await sut.stop(process.env.BENCH_CPU_PROFILE ? "SIGTERM" : "SIGKILL");
    await redis.stop("SIGKILL");
  }
}
