// Diagnosis (not part of npm run bench): orchestrator CPU per delivered command, A/B over bundles.
//   npx tsx bench/diag-cpu.ts memory,redis /tmp/a.mjs /tmp/b.mjs ...   (alternating, 2 rounds)
import { readFileSync } from "node:fs";
import { createAgents } from "./lib/clients.js";
import { startFleet } from "./lib/fleet.js";
import { sleep } from "./lib/processes.js";
import { ADMIN_TOKEN, commandDelta, commandStats, type StoreKind, startSut } from "./lib/sut.js";
import { runCallers } from "./scenarios/throughput.js";

const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};
const [stores, ...bundles] = process.argv.slice(2);
for (let round = 0; round < 2; round++)
  for (const bundle of bundles)
    for (const store of stores!.split(",") as StoreKind[]) {
      process.env.BENCH_ORCHESTRATOR_BUNDLE = bundle;
      const sut = await startSut({ store });
      const agents = await createAgents(sut.address, ADMIN_TOKEN, 50);
      let received = 0;
      const fleet = startFleet(sut.address, agents, { processes: 1, onReceived: () => received++ });
      await fleet.waitConnected(agents.length, 60_000);
      const before = sut.redis ? await commandStats(sut.redis.url) : {};
      const c0 = cpuMs(sut.pid);
      const r0 = received;
      const t0 = Date.now();
      const done = await runCallers(
        sut.address,
        agents.map((a) => a.key),
        {
          agents: 50,
          channels: 4,
          concurrency: 64,
          seconds: 6,
          warmupSeconds: 0,
        },
      );
      await sleep(1000);
      const c1 = cpuMs(sut.pid);
      const n = received - r0;
      const after = sut.redis ? await commandStats(sut.redis.url) : {};
      const cmds = Object.values(commandDelta(before, after)).reduce((a, b) => a + b, 0);
      const wall = (Date.now() - t0) / 1000;
      console.log(
        JSON.stringify({
          bundle: bundle.split("/").pop(),
          store,
          delivered: n,
          perS: Math.round(done.ok / 6),
          cpuMsPerDelivery: +((c1 - c0) / n).toFixed(3),
          cpuShare: +((c1 - c0) / 10 / wall).toFixed(0),
          redisPerDelivery: +(cmds / n).toFixed(1),
          load: readFileSync("/proc/loadavg", "utf8").split(" ")[0],
        }),
      );
      await fleet.stop();
      await sut.stop();
    }
