import { startOrchestrator } from "../../test/support/orchestrator.js";

const args = process.argv.slice(2);
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  const o = await startOrchestrator({
    env: { K8SDEPLOY_ADMIN_TOKEN: "bench-admin-token-0123456789abcdef0123456789", K8SDEPLOY_LOG_LEVEL: "info" },
    nodeArgs: args,
  });
  console.log(`listening after ${(performance.now() - t0).toFixed(0)} ms`);
  await o.stop("SIGTERM");
}
process.exit(0);
