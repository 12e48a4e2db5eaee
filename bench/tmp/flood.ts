import { fileURLToPath } from "node:url";
import { adminClient } from "../../test/support/clients.js";
import { node24 } from "../../test/support/e2e.js";
import { startOrchestrator } from "../../test/support/orchestrator.js";
import { connectStandInAgent, waitUntil } from "../../test/support/stand-in-agents.js";
import { run } from "../../test/support/tools.js";

const ADMIN = "admin-0123456789abcdef0123456789";
const [rate = "2500", count = "5000", deadline = "3000", children = "2", useNode24 = "1"] = process.argv.slice(2);
const o = await startOrchestrator({
  env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN, K8SDEPLOY_MAX_CONCURRENT_CALLS: "8" },
  node: useNode24 === "1" ? node24() : undefined,
  nodeArgs: process.env.PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/floodprof"] : [],
});
const admin = adminClient(o.grpcAddress, ADMIN);
const agent = await admin.createAgent("x");
const key = await admin.createDeployKey(agent.id);
const s = connectStandInAgent(o.grpcAddress, agent);
await waitUntil(() => s.welcomed, "welcome", 20000);
const script = fileURLToPath(new URL("../../test/support/deploy-flood.ts", import.meta.url));
const t0 = Date.now();
const runs = await Promise.all(
  Array.from({ length: Number(children) }, (_, i) =>
    run(
      process.env.CHILD_NODE ?? process.execPath,
      ["--import", "tsx", script, o.grpcAddress, key, count, rate, deadline, `f${i}`],
      {
        timeoutMs: 120_000,
      },
    ),
  ),
);
const ok = new Set<string>();
for (const r of runs) {
  const out = JSON.parse(r.stdout);
  console.log(
    out.codes,
    r.stderr
      .split("\n")
      .filter((l) => /goaway|GOAWAY|close|error/i.test(l))
      .slice(0, 8)
      .join("\n"),
  );
  for (const id of out.ok) ok.add(id);
}
console.log("took", Date.now() - t0, "ms");
await new Promise((r) => setTimeout(r, 2000));
const extra = [...s.received].filter((id) => !ok.has(id)).length;
console.log("received", s.received.size, "ok", ok.size, "failed but delivered", extra);
console.log(
  o
    .logs()
    .split("\n")
    .filter((l) => /warn|error|HTTP\/2|closing|ping/i.test(l))
    .slice(0, 5)
    .join("\n"),
);
s.close();
admin.close();
await o.stop("SIGTERM");
process.exit(0);
