// Benchmark: what the image pre-flight costs the agent, against a floor measured in the same run —
// the same agent bundle with K8SDEPLOY_PREFLIGHT=off. Two agent processes (real bundle, real
// orchestrator, the test bed's Kubernetes and registry) each deploy the same image N times to their
// own workload; reported: RSS (VmRSS) idle after connecting and after the deploys, and the deploy
// latency (Deploy accepted → SUCCEEDED), each as a ratio to the floor.
//
//   npm run build && eval "$(npm run --silent testbed -- env)" && npx tsx bench/agent-preflight.ts [N]
import { readFileSync } from "node:fs";
import { deployClient, deployRequest } from "../test/support/clients.js";
import { waitConnected } from "../test/support/e2e.js";
import { createNamespace, deleteNamespace, kube, waitFor } from "../test/support/kube.js";
import { pushTestImage, testRegistry } from "../test/support/registry.js";
import { startStack } from "../test/support/stack.js";

const N = Number(process.argv[2] ?? 10);
const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const registry = testRegistry();
const image = await pushTestImage(`bench-preflight-${Date.now().toString(36)}/app`, "1");
const stack = await startStack();
const namespace = await createNamespace("bench-preflight");
try {
  const auth = Buffer.from(`${registry.user}:${registry.password}`).toString("base64");
  await kube().core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: "regcred" },
      type: "kubernetes.io/dockerconfigjson",
      data: {
        ".dockerconfigjson": Buffer.from(JSON.stringify({ auths: { [registry.host]: { auth } } })).toString("base64"),
      },
    },
  });
  const [replica] = stack.replicas;
  if (!replica) throw new Error("no replica");
  const results: Record<string, { idleMiB: number; afterMiB: number; deployMs: number }> = {};
  for (const mode of ["off", "lenient"] as const) {
    const workload = `app-${mode}`;
    await kube().apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: workload },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: workload } },
          template: {
            metadata: { labels: { app: workload } },
            spec: {
              imagePullSecrets: [{ name: "regcred" }],
              containers: [{ name: "app", image: `${registry.host}/x/app:0` }],
            },
          },
        },
      },
    });
    const agent = await stack.createAgent(`bench-${mode}`);
    const key = (await stack.createKey(agent.id, { namespaces: [namespace] })).key;
    const proc = stack.startAgent({
      token: agent.token,
      servers: [replica.grpcAddress],
      // BENCH_AGENT_NODE: another node binary for the agent, e.g. Node 24 (`bash scripts/node24.sh x64`).
      ...(process.env.BENCH_AGENT_NODE ? { node: [process.env.BENCH_AGENT_NODE] } : {}),
      env: { K8SDEPLOY_PREFLIGHT: mode, K8SDEPLOY_REGISTRY_CA_FILE: registry.caFile, K8SDEPLOY_LOG_LEVEL: "warn" },
    });
    await waitConnected(stack, agent.id);
    await new Promise((r) => setTimeout(r, 3000));
    const pid = proc.child.pid ?? 0;
    const idleMiB = rssMiB(pid);
    const client = deployClient(replica.grpcAddress, key);
    const times: number[] = [];
    for (let i = 0; i < N; i++) {
      const started = Date.now();
      const res = await client.deploy(
        deployRequest({ namespace, workload, containers: ["app"], image: image.tagged, timeoutSeconds: 60 }),
      );
      const id = res.deployment?.id ?? "";
      await waitFor(async () => (await client.get(id)).deployment?.state === 4, `deploy ${i}`, 60_000);
      times.push(Date.now() - started);
      // Another image before the next deploy, so that every deploy really patches.
      await kube().apps.patchNamespacedDeployment({
        namespace,
        name: workload,
        body: [
          { op: "replace", path: "/spec/template/spec/containers/0/image", value: `${registry.host}/x/app:${i + 1}` },
        ],
      });
    }
    client.close();
    await new Promise((r) => setTimeout(r, 2000));
    results[mode] = { idleMiB, afterMiB: rssMiB(pid), deployMs: median(times) };
    await proc.kill("SIGKILL");
  }
  const off = results.off!;
  const on = results.lenient!;
  const report = {
    agentNode: process.env.BENCH_AGENT_NODE ?? process.execPath,
    deploys: N,
    floor: off,
    preflight: on,
    ratios: {
      idleRss: +(on.idleMiB / off.idleMiB).toFixed(3),
      rssAfterDeploys: +(on.afterMiB / off.afterMiB).toFixed(3),
      deployLatency: +(on.deployMs / off.deployMs).toFixed(3),
    },
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  await stack.stop();
  await deleteNamespace(namespace);
}
