// Rows "agent idle RSS, Node 24" and "agent start → connected, Node 24": the real bundle
// (agent/dist/k8sdeploy-agent.mjs) on the Node 24 that the image ships, with the Node flags and
// environment the image sets (agent/node-runtime), against an orchestrator (memory store) and the test bed's
// Kubernetes. Floors, same run and same Node: bare Node, and a minimal grpc-js client (floors/
// minimal-agent.ts, bundled with the agent's esbuild settings) that opens the same stream.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GetDeploymentResponse } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import * as esbuild from "esbuild";
import { agentBundle } from "../../test/support/stack.js";
import { repoRoot } from "../../test/support/tools.js";
import { bearer, createAgents, DeployCaller, deployRequest } from "../lib/clients.js";
import { benchDir, sleep, stopChild, track } from "../lib/processes.js";
import { mib, sample } from "../lib/procstat.js";
import { type Row, row } from "../lib/report.js";
import { median, round } from "../lib/stats.js";
import { ADMIN_TOKEN, startSut } from "../lib/sut.js";

export interface AgentOptions {
  idleSeconds: number;
  deploys: number;
  lanes: number;
  startRuns: number;
}

export function node24(): string {
  return execFileSync("bash", [join(repoRoot, "scripts", "node24.sh"), "x64"], { encoding: "utf8" }).trim();
}

export interface NodeRuntime {
  /** Node/V8 command-line flags, before the script. */
  flags: string[];
  /** Environment variables the image sets (e.g. glibc malloc settings). */
  env: Record<string, string>;
}

/**
 * How the agent's image runs Node: agent/node-runtime, `--flag` lines for the command line and
 * `NAME=value` lines for the environment (`#` comments), which scripts/images/build.mjs writes into
 * the image (entrypoint `node <flags> /app/k8sdeploy-agent.mjs`, image env). The bench runs the agent
 * and its floors with the same. (Flags, not NODE_OPTIONS: Node refuses V8 flags such as --lite-mode
 * there.)
 */
export function agentNodeRuntime(): NodeRuntime {
  const file = join(repoRoot, "agent", "node-runtime");
  if (!existsSync(file)) return { flags: [], env: {} };
  const lines = readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const env = lines
    .filter((l) => !l.startsWith("--"))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
  return { flags: lines.filter((l) => l.startsWith("--")), env: Object.fromEntries(env) };
}

/** The environment the bench runs the real agent bundle with, against `address` (plaintext). */
export function agentEnv(address: string, token: string, kubeconfig: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    KUBECONFIG: kubeconfig,
    K8SDEPLOY_SERVER: `http://${address}`,
    K8SDEPLOY_AGENT_TOKEN: token,
    POD_NAMESPACE: "k8sdeploy-bench",
  };
}

async function bundleMinimalAgent(): Promise<string> {
  const outfile = join(mkdtempSync(join(tmpdir(), "k8sd-bench-minimal-")), "minimal-agent.mjs");
  // The agent's own settings (agent/scripts/bundle.mjs), so that only the code differs.
  await esbuild.build({
    entryPoints: [join(benchDir, "floors", "minimal-agent.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    banner: {
      js: "import { createRequire as __k8sdeployCreateRequire } from 'module'; const require = __k8sdeployCreateRequire(import.meta.url);",
    },
    legalComments: "none",
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: "warning",
  });
  return outfile;
}

interface Started {
  pid: number;
  connectedMs: number;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts `node script` and resolves once a stderr line matches `ready` (time from spawn). */
async function startUntil(
  node: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  runtime: NodeRuntime,
): Promise<Started> {
  const t0 = performance.now();
  const child = track(
    spawn(node, [...runtime.flags, ...args], { env: { ...env, ...runtime.env }, stdio: ["ignore", "ignore", "pipe"] }),
  );
  let text = "";
  const connectedMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${ready} within 30 s:\n${text.slice(-2000)}`)), 30_000);
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      const before = text.length;
      text += d;
      if (ready.test(text.slice(Math.max(0, before - 200)))) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before ${ready}:\n${text.slice(-2000)}`));
    });
  });
  return { pid: child.pid ?? -1, connectedMs, output: () => text, stop: () => stopChild(child, "SIGTERM") };
}

export async function runAgent(options: AgentOptions): Promise<Row[]> {
  const kubeconfig = process.env.KUBECONFIG;
  if (!kubeconfig)
    throw new Error(
      'KUBECONFIG is not set: run `npm run testbed -- up` and `eval "$(npm run --silent testbed -- env)"`',
    );
  const node = node24();
  const runtime = agentNodeRuntime();
  const minimal = await bundleMinimalAgent();
  const sut = await startSut({ store: "memory" });
  const kube = await import("../../test/support/kube.js");
  const namespace = await kube.createNamespace("bench-agent");
  try {
    const [agent, other] = await createAgents(sut.address, ADMIN_TOKEN, 2);
    const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
    const env = { ...agentEnv(sut.address, agent!.token, kubeconfig), K8SDEPLOY_LOG_LEVEL: "info" };
    const minimalEnv = { ...baseEnv, K8SDEPLOY_SERVER: sut.address, K8SDEPLOY_AGENT_TOKEN: other!.token };
    const startAgent = () => startUntil(node, [agentBundle], env, /connected to the orchestrator/, runtime);
    const startMinimal = () => startUntil(node, [minimal], minimalEnv, /"connected":true/, runtime);

    // Start → connected, alternating so that drift in machine load hits both alike.
    const agentStarts: number[] = [];
    const minimalStarts: number[] = [];
    for (let i = 0; i < options.startRuns; i++) {
      const m = await startMinimal();
      minimalStarts.push(m.connectedMs);
      await m.stop();
      const a = await startAgent();
      agentStarts.push(a.connectedMs);
      await a.stop();
    }

    // Idle RSS: bare Node, the minimal client, the agent, each after the same idle time.
    const bare = await startUntil(
      node,
      ["-e", "process.stderr.write('ready\\n'); setInterval(() => {}, 1e9)"],
      baseEnv,
      /ready/,
      runtime,
    );
    const m = await startMinimal();
    const a = await startAgent();
    await sleep(options.idleSeconds * 1000);
    const bareRss = mib(sample(bare.pid).rssBytes);
    const minimalRss = mib(sample(m.pid).rssBytes);
    const agentIdle = mib(sample(a.pid).rssBytes);
    await bare.stop();
    await m.stop();

    // Deploys: `lanes` workloads, one deploy after another on each, through the orchestrator.
    for (let w = 0; w < options.lanes; w++) {
      await kube.createDeployment(namespace, `w${w}`, [{ name: "app", image: "registry.example/app:0" }], {
        replicas: 1,
      });
    }
    const caller = new DeployCaller(sut.address);
    const rssAt: { deploys: number; rssMiB: number }[] = [{ deploys: 0, rssMiB: round(agentIdle, 1) }];
    let done = 0;
    let failed = 0;
    const step = Math.max(1, Math.floor(options.deploys / 10));
    let next = 0;
    await Promise.all(
      Array.from({ length: options.lanes }, async (_, lane) => {
        for (;;) {
          const i = next++;
          if (i >= options.deploys) return;
          const req = { ...deployRequest(`w${lane}`, `registry.example/app:${i + 1}`), namespace };
          const res = await caller.deploy(agent!.key, req);
          const state = await waitFinal(caller, agent!.key, res.deployment!.id);
          if (state !== DeploymentState.DEPLOYMENT_STATE_SUCCEEDED) failed++;
          done++;
          if (done % step === 0) rssAt.push({ deploys: done, rssMiB: round(mib(sample(a.pid).rssBytes), 1) });
        }
      }),
    );
    caller.close();
    await sleep(options.idleSeconds * 1000);
    const agentAfter = mib(sample(a.pid).rssBytes);
    await a.stop();

    const afterFirstTenth = rssAt[1]?.rssMiB ?? agentIdle;
    const growth = agentAfter - afterFirstTenth;
    const startRatio = median(agentStarts) / median(minimalStarts);
    const flat = growth <= 5;
    return [
      row({
        id: "agent-rss",
        metric: "agent idle RSS, Node 24 (the image's runtime)",
        figure: `${agentIdle.toFixed(0)} MiB idle; ${agentAfter.toFixed(0)} MiB after ${options.deploys} deploys${failed ? ` (${failed} failed)` : ""}`,
        floor: `Node 24 + grpc-js client only: ${minimalRss.toFixed(0)} MiB; bare Node 24: ${bareRss.toFixed(0)} MiB`,
        ratio: round(Math.max(agentIdle, agentAfter) / minimalRss, 2),
        goal: `≤ 60 MiB, flat over ${options.deploys} deploys (≤ +5 MiB after the first tenth)`,
        pass: Math.max(agentIdle, agentAfter) <= 60 && flat && failed === 0,
        details: {
          nodeRuntime: runtime,
          node: execFileSync(node, ["--version"], { encoding: "utf8" }).trim(),
          bareRssMiB: round(bareRss, 1),
          minimalRssMiB: round(minimalRss, 1),
          agentIdleMiB: round(agentIdle, 1),
          agentAfterMiB: round(agentAfter, 1),
          rssAt,
          failed,
        },
      }),
      row({
        id: "agent-start",
        metric: "agent start → connected, Node 24",
        figure: `${median(agentStarts).toFixed(0)} ms`,
        floor: `minimal client: ${median(minimalStarts).toFixed(0)} ms`,
        ratio: round(startRatio, 2),
        goal: "≤ 1.5× floor",
        pass: startRatio <= 1.5,
        details: { agentMs: agentStarts.map((v) => round(v, 1)), minimalMs: minimalStarts.map((v) => round(v, 1)) },
      }),
    ];
  } finally {
    await kube.deleteNamespace(namespace);
    await sut.stop();
  }
}

/** Polls GetDeployment until the deployment reaches a final state; returns that state. */
export async function waitFinal(caller: DeployCaller, key: string, id: string): Promise<DeploymentState> {
  for (;;) {
    const res = await new Promise<GetDeploymentResponse>((resolve, reject) =>
      caller.client.getDeployment({ id }, bearer(key), (err, r) => (err ? reject(err) : resolve(r))),
    );
    const state = res.deployment?.state ?? DeploymentState.DEPLOYMENT_STATE_UNSPECIFIED;
    if (state >= DeploymentState.DEPLOYMENT_STATE_SUCCEEDED) return state;
    await sleep(50);
  }
}
