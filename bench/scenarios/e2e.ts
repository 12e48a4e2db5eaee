// Row "end-to-end deploy vs `kubectl set image` + `kubectl rollout status`": on the test bed, the
// bundled action on Node 24 (as a runner runs it) through an orchestrator (Redis store) and the real
// agent bundle, against kubectl doing the same change directly. Runs alternate between the two, on
// two Deployments of one namespace, so that drift in machine load hits both alike.

import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { runBundledAction } from "../../test/support/action.js";
import { githubEnv } from "../../test/support/e2e.js";
import { agentBundle } from "../../test/support/stack.js";
import { run } from "../../test/support/tools.js";
import { createAgents, DeployCaller } from "../lib/clients.js";
import { track } from "../lib/processes.js";
import { type Row, row } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { ADMIN_TOKEN, startSut } from "../lib/sut.js";
import { agentEnv, agentNodeRuntime, node24 } from "./agent.js";

/**
 * One run's phases, in ms after the action was started: when the orchestrator stored each state
 * (queued = Deploy accepted; delivered = the agent acknowledged; in_progress = patched; the final
 * state = the rollout complete and reported) and when the action process exited.
 */
async function timeline(
  caller: DeployCaller,
  key: string,
  id: string,
  startedAt: number,
  exitedAt: number,
): Promise<Record<string, number>> {
  const { events } = await caller.get(key, id);
  const out: Record<string, number> = {};
  for (const e of events) {
    const name = DeploymentState[e.state].replace("DEPLOYMENT_STATE_", "").toLowerCase();
    if (e.time && out[name] === undefined) out[name] = e.time.getTime() - startedAt;
  }
  out.action_exit = exitedAt - startedAt;
  return out;
}

function medianTimeline(timelines: Record<string, number>[]): Record<string, number> {
  const names = [...new Set(timelines.flatMap((t) => Object.keys(t)))];
  const out: Record<string, number> = {};
  for (const n of names) out[n] = round(median(timelines.flatMap((t) => (t[n] === undefined ? [] : [t[n]]))), 0);
  return Object.fromEntries(Object.entries(out).sort((a, b) => a[1] - b[1]));
}

export interface E2eOptions {
  runs: number;
}

export async function runE2e(options: E2eOptions): Promise<Row> {
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig)
    throw new Error(
      'KUBECONFIG is not set: run `npm run testbed -- up` and `eval "$(npm run --silent testbed -- env)"`',
    );
  const node = node24();
  const kube = await import("../../test/support/kube.js");
  const { spawn } = await import("node:child_process");
  const sut = await startSut({ store: "redis" });
  const namespace = await kube.createNamespace("bench-e2e");
  const agentProc = { stop: async () => {} };
  try {
    const [agent] = await createAgents(sut.address, ADMIN_TOKEN, 1);
    await kube.createDeployment(namespace, "via-kubectl", [{ name: "app", image: "registry.example/app:0" }], {
      replicas: 1,
    });
    await kube.createDeployment(namespace, "via-k8sdeploy", [{ name: "app", image: "registry.example/app:0" }], {
      replicas: 1,
    });
    const child = track(
      spawn(node, [...agentNodeRuntime().flags, agentBundle], {
        env: { ...agentEnv(sut.address, agent!.token, kubeconfig), ...agentNodeRuntime().env },
        stdio: ["ignore", "ignore", "pipe"],
      }),
    );
    let agentLog = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      agentLog += d;
    });
    agentProc.stop = async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    };
    const deadline = Date.now() + 30_000;
    while (!/connected to the orchestrator/.test(agentLog)) {
      if (Date.now() > deadline) throw new Error(`the agent did not connect:\n${agentLog.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const kubectl: number[] = [];
    const ours: number[] = [];
    const timelines: Record<string, number>[] = [];
    const caller = new DeployCaller(sut.address);
    const kc = (args: string[]) =>
      run("kubectl", ["--kubeconfig", kubeconfig, "-n", namespace, ...args], { timeoutMs: 120_000 });
    for (let i = 1; i <= options.runs; i++) {
      const image = `registry.example/app:${i}`;
      let t0 = performance.now();
      const set = await kc(["set", "image", "deployment/via-kubectl", `app=${image}`]);
      const status = await kc(["rollout", "status", "deployment/via-kubectl", "--timeout=120s"]);
      if (set.code !== 0 || status.code !== 0) throw new Error(`kubectl failed: ${set.stderr}${status.stderr}`);
      kubectl.push(performance.now() - t0);

      t0 = performance.now();
      const wall0 = Date.now();
      const result = await runBundledAction({
        inputs: {
          server: `http://${sut.address}`,
          key: agent!.key,
          namespace,
          deployment: "via-k8sdeploy",
          image,
          timeout: "120",
        },
        env: githubEnv(String(9000 + i)),
        node,
        timeoutMs: 180_000,
      });
      if (result.code !== 0) throw new Error(`the action failed:\n${result.stdout}${result.stderr}`);
      ours.push(performance.now() - t0);
      timelines.push(await timeline(caller, agent!.key, result.outputs["deployment-id"] ?? "", wall0, Date.now()));
    }
    caller.close();
    const ratio = median(ours) / median(kubectl);
    return row({
      id: "e2e",
      metric: "end-to-end deploy (the action on Node 24) vs `kubectl set image` + `rollout status`",
      figure: `${(median(ours) / 1000).toFixed(2)} s`,
      floor: `kubectl ${(median(kubectl) / 1000).toFixed(2)} s`,
      ratio: round(ratio, 2),
      goal: "≤ 1.1",
      pass: ratio <= 1.1,
      details: {
        oursMs: ours.map((v) => round(v, 0)),
        kubectlMs: kubectl.map((v) => round(v, 0)),
        // Where our time goes: ms after the action process was started, median over the runs.
        timelineMs: medianTimeline(timelines),
      },
    });
  } finally {
    await agentProc.stop();
    await kube.deleteNamespace(namespace);
    await sut.stop();
  }
}
