import { measureStub } from "../scenarios/throughput.js";

for (const c of [1, 8, 32]) {
  const r = await measureStub({ agents: 1, channels: 4, concurrency: c, seconds: 3, warmupSeconds: 1 });
  console.log(c, Math.round(r));
}
process.exit(0);
