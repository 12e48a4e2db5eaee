import { startOrchestrator } from "../../test/support/orchestrator.js";
import { startRedisCluster } from "../../test/support/redis-cluster.js";

const c = await startRedisCluster({ nodeTimeoutMs: 1000 });
console.log("cluster up", c.url);
const t0 = Date.now();
try {
  const o = await startOrchestrator({
    env: {
      K8SDEPLOY_REDIS_URL: c.url,
      K8SDEPLOY_ADMIN_TOKEN: "admin-0123456789abcdef0123456789",
      K8SDEPLOY_LOG_LEVEL: "debug",
    },
    timeoutMs: 20_000,
  });
  console.log("listening after", Date.now() - t0, o.grpcAddress);
  const { adminClient, deployClient, deployRequest } = await import("../../test/support/clients.js");
  const { connectStandInAgent, waitUntil } = await import("../../test/support/stand-in-agents.js");
  const admin = adminClient(o.grpcAddress, "admin-0123456789abcdef0123456789");
  const agent = await admin.createAgent("x");
  console.log("agent", agent.id);
  const key = await admin.createDeployKey(agent.id);
  console.log("key");
  const s = connectStandInAgent(o.grpcAddress, agent);
  await waitUntil(() => s.welcomed, "welcome", 20000);
  console.log("welcomed");
  const d = deployClient(o.grpcAddress, key);
  const t1 = Date.now();
  const r = await d.deploy(deployRequest({ namespace: "x", workload: "w", image: "i:1" }));
  console.log("deployed", r.deployment?.id, Date.now() - t1);
  const port = await c.masterOf(`k8sd:{${agent.id}}:queue`);
  console.log("XLEN", await c.cli(port, ["XLEN", `k8sd:{${agent.id}}:queue`]));
  console.log("GROUPS", await c.cli(port, ["XINFO", "GROUPS", `k8sd:{${agent.id}}:queue`]));
  await waitUntil(() => s.received.size > 0, "received", 10000).catch(() =>
    console.log(
      o
        .logs()
        .split("\n")
        .filter((l) => !/redis connection error/.test(l))
        .slice(-15)
        .join("\n"),
    ),
  );
  console.log("received");
  s.close();
  d.close();
  admin.close();
  await o.stop("SIGTERM");
  console.log(o.logs().slice(-2000));
} catch (e) {
  console.log(String(e).slice(0, 4000));
}
await c.stop();
process.exit(0);
