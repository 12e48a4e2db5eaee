// `npm run bench`: measures every row of the performance table (issue 9) next to its floor, measured
// in the same run on the same machine, and prints and writes the results (bench/results/*.json).
//   npm run bench                          the full run (about 25 minutes on 2 cores)
//   npm run bench -- --smoke               a short run of every scenario (what `npm test` runs)
//   npm run bench -- --only latency,idle   some scenarios only
//   npm run bench -- --update-readme       also rewrite the README's performance table
// Everything runs on 127.0.0.1 and stops by itself; the test bed (`npm run testbed -- up`) is used
// for the agent and end-to-end rows when KUBECONFIG is set (`eval "$(npm run --silent testbed -- env)"`).
import { cpus } from "node:os";
import { Command, Option } from "commander";
import { load } from "./lib/procstat.js";
import { failedRow, printTable, type Row, type RunInfo, updateReadme, writeResults } from "./lib/report.js";
import { type AgentOptions, runAgent } from "./scenarios/agent.js";
import { type E2eOptions, runE2e } from "./scenarios/e2e.js";
import {
  connectIdle,
  type IdleOptions,
  idleFloor,
  type RestartOptions,
  restartFloor,
  runIdle,
  runRestart,
} from "./scenarios/idle.js";
import { type LatencyOptions, measureFloor, runLatency } from "./scenarios/latency.js";
import { type OverloadOptions, runOverload } from "./scenarios/overload.js";
import { measureStub, runThroughput, type ThroughputOptions } from "./scenarios/throughput.js";

const SCENARIOS = ["latency", "throughput", "overload", "idle", "restart", "agent", "e2e"] as const;
type Scenario = (typeof SCENARIOS)[number];

const program = new Command()
  .name("npm run bench --")
  .option("--smoke", "short runs of every scenario (seconds, not minutes)", false)
  .addOption(new Option("--only <list>", "comma-separated scenarios").default(SCENARIOS.join(",")))
  .option("--update-readme", "rewrite the README's performance table from this run", false)
  .option("--agents <n>", "idle/restart: number of agent streams (default 10000; smoke 300)")
  .parse();

const opts = program.opts<{ smoke: boolean; only: string; updateReadme: boolean; agents?: string }>();
const only = new Set(opts.only.split(",").map((s) => s.trim()) as Scenario[]);
for (const s of only)
  if (!SCENARIOS.includes(s)) program.error(`unknown scenario "${s}" (known: ${SCENARIOS.join(", ")})`);
const smoke = opts.smoke;

const latencyOptions: LatencyOptions = smoke
  ? { rate: 200, seconds: 2, warmupSeconds: 1 }
  : { rate: 200, seconds: 15, warmupSeconds: 3 };

const throughputOptions: ThroughputOptions = smoke
  ? { agents: 20, channels: 4, concurrency: 32, seconds: 2, warmupSeconds: 1 }
  : { agents: 50, channels: 4, concurrency: 64, seconds: 10, warmupSeconds: 3 };

const overloadOptions: OverloadOptions = smoke
  ? { perSecond: 3000, seconds: 1, deadlineMs: 10_000 }
  : { perSecond: 5000, seconds: 10, deadlineMs: 10_000 };
const agentsOverride = opts.agents ? Number(opts.agents) : undefined;
const idleOptions: IdleOptions = smoke
  ? { agents: agentsOverride ?? 300, fleetProcesses: 2, rampPerSecond: 300, settleSeconds: 2, idleSeconds: 5 }
  : { agents: agentsOverride ?? 10_000, fleetProcesses: 4, rampPerSecond: 1000, settleSeconds: 25, idleSeconds: 60 };
/** The memory store's large run: as many streams as one process may hold (fd limit), for the 20,000 goal. */
const largeAgents = smoke ? 600 : 19_500;
const restartOptions: RestartOptions = { ...idleOptions, queued: smoke ? 30 : 1000 };
const agentOptions: AgentOptions = smoke
  ? { idleSeconds: 5, deploys: 10, lanes: 5, startRuns: 2 }
  : { idleSeconds: 30, deploys: 1000, lanes: 10, startRuns: 5 };
const e2eOptions: E2eOptions = { runs: smoke ? 2 : 10 };

async function guarded(id: string, metric: string, goal: string, fn: () => Promise<Row | Row[]>): Promise<Row[]> {
  process.stderr.write(`[bench] ${id}: running (load ${load()[0].toFixed(2)})\n`);
  const t0 = Date.now();
  try {
    const out = await fn();
    const rows = Array.isArray(out) ? out : [out];
    process.stderr.write(`[bench] ${id}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return rows;
  } catch (err) {
    process.stderr.write(`[bench] ${id}: failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    return [failedRow(id, metric, goal, err)];
  }
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const loadStart = load();
  const rows: Row[] = [];
  if (only.has("latency")) {
    rows.push(
      ...(await guarded(
        "latency",
        "Deploy accepted → command at a connected agent, 200/s",
        "p50 ≤ 1.5× floor",
        async () => {
          const floor = await measureFloor(latencyOptions);
          return [await runLatency("memory", latencyOptions, floor), await runLatency("redis", latencyOptions, floor)];
        },
      )),
    );
  }
  if (only.has("throughput")) {
    rows.push(
      ...(await guarded("throughput", "max sustained delivery, one process", "≥ 0.6 of the stub", async () => {
        const stub = await measureStub(throughputOptions);
        return [
          await runThroughput("redis", throughputOptions, stub),
          await runThroughput("memory", throughputOptions, stub),
        ];
      })),
    );
  }
  if (only.has("overload")) {
    rows.push(
      ...(await guarded("overload", "overload", "0 failed calls deployed", async () => [
        await runOverload("memory", overloadOptions),
        await runOverload("redis", overloadOptions),
      ])),
    );
  }
  if (only.has("idle")) {
    rows.push(
      ...(await guarded("idle", "idle agent streams", "≤ 1.3× floor RSS, ≤ 2× floor CPU", async () => {
        const floor = await idleFloor(idleOptions);
        const out = [await runIdle("redis", idleOptions, floor), await runIdle("memory", idleOptions, floor)];
        const mem = out[1]!;
        // 20,000 streams need more descriptors than one process may hold here: measure the most it
        // may, and extrapolate linearly from the two memory-store points.
        const large = { ...idleOptions, agents: largeAgents, rampPerSecond: idleOptions.rampPerSecond };
        const { sut, fleet } = await connectIdle("memory", large);
        try {
          await new Promise((r) => setTimeout(r, idleOptions.settleSeconds * 1000));
          const { sample, mib } = await import("./lib/procstat.js");
          const rssLarge = mib(sample(sut.pid).rssBytes);
          const rssSmall = (mem.details.ours as { rssEndMiB: number }).rssEndMiB;
          const perStream = (rssLarge - rssSmall) / (largeAgents - idleOptions.agents);
          const at20k = rssLarge + perStream * (20_000 - largeAgents);
          mem.details.large = {
            agents: largeAgents,
            rssMiB: rssLarge,
            perStreamKiB: perStream * 1024,
            at20kMiB: at20k,
          };
          mem.figure += `; ${largeAgents.toLocaleString("en-US")} streams ${Math.round(rssLarge)} MiB → 20,000 ≈ ${Math.round(at20k)} MiB`;
          mem.pass = mem.pass && at20k <= 1024;
        } finally {
          await fleet.stop();
          await sut.stop("SIGKILL");
        }
        return out;
      })),
    );
  }
  if (only.has("restart")) {
    rows.push(
      ...(await guarded("restart", "kill -9 + immediate restart", "≤ 1.2× floor, 0 lost", async () => {
        const floorMs = await restartFloor(restartOptions);
        return await runRestart(restartOptions, floorMs);
      })),
    );
  }
  if (only.has("agent")) {
    rows.push(...(await guarded("agent", "agent idle RSS, Node 24", "≤ 60 MiB", () => runAgent(agentOptions))));
  }
  if (only.has("e2e")) {
    rows.push(...(await guarded("e2e", "end-to-end deploy vs kubectl", "≤ 1.1", () => runE2e(e2eOptions))));
  }
  const info: RunInfo = {
    startedAt,
    finishedAt: new Date().toISOString(),
    mode: smoke ? "smoke" : "full",
    command: `npm run bench --${smoke ? " --smoke" : ""}${opts.only !== SCENARIOS.join(",") ? ` --only ${opts.only}` : ""}`,
    machine: { cpus: cpus().length, loadStart, loadEnd: load(), node: process.versions.node },
  };
  printTable(rows);
  const file = writeResults(rows, info);
  process.stdout.write(`results: ${file}\n`);
  if (opts.updateReadme) updateReadme(rows, info);
  process.exitCode = rows.every((r) => !r.error) ? 0 : 1;
}

await main();
process.exit();
