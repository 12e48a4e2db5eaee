// Rows "max sustained delivery, one process" (Redis and memory store). Callers in one child process
// keep `concurrency` Deploys in flight over a few connections (closed loop); simulated agents in
// another child process ack and finish every command at once, so each delivery is the whole
// lifecycle (stored, queued, pushed, acked, result stored, acknowledged). Delivered/s counts commands
// that reached an agent during the measurement window. Floor: the same callers against a bare
// grpc-js Deploy stub (calls/s).
import type { ChildProcess } from "node:child_process";
import { createAgents } from "../lib/clients.js";
import { startFleet } from "../lib/fleet.js";
import { forkTs, sleep, startBareServer } from "../lib/processes.js";
import { type Row, row } from "../lib/report.js";
import { round } from "../lib/stats.js";
import { ADMIN_TOKEN, commandDelta, commandStats, type StoreKind, startSut } from "../lib/sut.js";

export interface ThroughputOptions {
  agents: number;
  channels: number;
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
}

interface CallersDone {
  type: "done";
  ok: number;
  okInWindow: number;
  windowStart: number;
  windowEnd: number;
  errors: Record<string, number>;
  errorSamples: Record<string, string[]>;
  okIds: string[];
}

export function runCallers(
  address: string,
  keys: string[],
  options: ThroughputOptions & { deadlineMs?: number; rate?: number; collectIds?: boolean; node?: string },
): Promise<CallersDone> {
  const child: ChildProcess = forkTs("sim/callers.ts", [], [], options.node);
  return new Promise((resolve, reject) => {
    child.on("message", (m: CallersDone) => {
      if (m.type === "done") resolve(m);
    });
    child.once("exit", (code) => reject(new Error(`callers exited (${code}) before reporting`)));
    child.send({
      type: "start",
      address,
      keys,
      channels: options.channels,
      concurrency: options.concurrency,
      seconds: options.seconds,
      warmupSeconds: options.warmupSeconds,
      deadlineMs: options.deadlineMs ?? 10_000,
      rate: options.rate,
      collectIds: options.collectIds ?? false,
    });
  });
}

export async function measureStub(options: ThroughputOptions): Promise<number> {
  const bare = await startBareServer();
  try {
    const done = await runCallers(`127.0.0.1:${bare.port}`, ["kdk_stub"], options);
    return done.okInWindow / ((done.windowEnd - done.windowStart) / 1000);
  } finally {
    await bare.stop();
  }
}

export async function runThroughput(store: StoreKind, options: ThroughputOptions, stubPerSecond: number): Promise<Row> {
  const sut = await startSut({ store });
  try {
    const agents = await createAgents(sut.address, ADMIN_TOKEN, options.agents);
    const received: number[] = [];
    const fleet = startFleet(sut.address, agents, { processes: 1, onReceived: (_id, at) => received.push(at) });
    await fleet.waitConnected(agents.length, 60_000);
    const before = sut.redis ? await commandStats(sut.redis.url) : {};
    const done = await runCallers(
      sut.address,
      agents.map((a) => a.key),
      options,
    );
    // Let the last deliveries arrive, then count what reached the agents during the window.
    await sleep(2000);
    const after = sut.redis ? await commandStats(sut.redis.url) : {};
    const windowS = (done.windowEnd - done.windowStart) / 1000;
    const inWindow = received.filter((at) => at >= done.windowStart && at < done.windowEnd).length;
    const delivered = inWindow / windowS;
    const okRate = done.okInWindow / windowS;
    const totalDelivered = fleet.commands();
    if (process.env.BENCH_LOG_STATS) {
      const counts: Record<string, number> = {};
      for (const e of sut.orchestrator.logEntries()) counts[String(e.msg)] = (counts[String(e.msg)] ?? 0) + 1;
      process.stderr.write(`${JSON.stringify({ logBytes: sut.orchestrator.logs().length, counts })}\n`);
    }
    await fleet.stop();
    const ratio = delivered / stubPerSecond;
    const commands = commandDelta(before, after);
    const redisCommands = Object.values(commands).reduce((a, b) => a + b, 0);
    return row({
      id: `throughput-${store}`,
      metric: `max sustained delivery, one process, ${store} store`,
      figure: `${Math.round(delivered)}/s`,
      floor: `bare grpc-js Deploy stub, same callers: ${Math.round(stubPerSecond)}/s`,
      ratio: round(ratio, 2),
      goal: "≥ 0.6 of the stub",
      pass: ratio >= 0.6 && Object.keys(done.errors).length === 0,
      details: {
        deliveredPerSecond: round(delivered, 1),
        acceptedPerSecond: round(okRate, 1),
        accepted: done.ok,
        delivered: totalDelivered,
        errors: done.errors,
        redisCommandsPerDelivery: totalDelivered > 0 ? round(redisCommands / totalDelivered, 1) : undefined,
        redisCommands: commands,
        callers: { channels: options.channels, concurrency: options.concurrency, agents: options.agents },
      },
    });
  } finally {
    await sut.stop();
  }
}
