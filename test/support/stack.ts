// A whole K8sDeploy installation for end-to-end tests, made of real processes: a private
// redis-server, orchestrator replicas (`k8sdeploy serve`) sharing it, the admin CLI, and agents
// (the single-file bundle) on the test bed's Kubernetes.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./action.js";
import { kubeconfigPath } from "./kube.js";
import { cliPath, type Orchestrator as OrchestratorProcess, startOrchestrator } from "./orchestrator.js";
import { type Proc, startProcess } from "./processes.js";
import { type RedisServer, startRedisServer } from "./redis-server.js";

const run = promisify(execFile);

export { cliPath };
export const agentBundle = join(repoRoot, "agent", "dist", "k8sdeploy-agent.mjs");

export interface StartAgentOptions {
  token: string;
  /** Orchestrator gRPC addresses (host:port) in failover order. */
  servers: string[];
  /** Command that runs the bundle, e.g. qemu + arm64 node; default this process's node. */
  node?: string[];
  env?: Record<string, string>;
}

export interface Stack {
  redis: RedisServer;
  replicas: OrchestratorProcess[];
  adminToken: string;
  /** Runs the admin CLI against a replica (default: the first one running); rejects on a non-zero exit. */
  cli(args: string[], replica?: number): Promise<string>;
  createAgent(name: string): Promise<{ id: string; token: string }>;
  createKey(
    agentId: string,
    scope?: { namespaces?: string[]; workloads?: string[] },
  ): Promise<{ id: string; key: string }>;
  startAgent(options: StartAgentOptions): Proc;
  /** Starts (again) replica `index` with the same settings. */
  restartReplica(index: number): Promise<OrchestratorProcess>;
  /** Every log line any process of the stack printed, for secret checks. */
  allOutput(): string;
  stop(): Promise<void>;
}

export async function startStack(
  options: { replicas?: number /** Extra orchestrator environment. */; env?: Record<string, string> } = {},
): Promise<Stack> {
  const redis = await startRedisServer();
  const adminToken = `admin-${randomBytes(24).toString("hex")}`;
  const dataDir = await mkdtemp(join(tmpdir(), "k8sd-e2e-"));
  const agents: Proc[] = [];
  const retired: (OrchestratorProcess | Proc)[] = [];
  const replicaEnv = (i: number) => ({
    K8SDEPLOY_REDIS_URL: redis.url,
    K8SDEPLOY_ADMIN_TOKEN: adminToken,
    K8SDEPLOY_REPLICA_ID: `replica-${i}`,
    K8SDEPLOY_DATA_DIR: dataDir,
    K8SDEPLOY_LOG_LEVEL: "debug",
    ...options.env,
  });
  const replicas = await Promise.all(
    Array.from({ length: options.replicas ?? 1 }, (_, i) => startOrchestrator({ env: replicaEnv(i) })),
  );
  const dead = new Set<OrchestratorProcess>();
  const track = (r: OrchestratorProcess) => void r.exited.then(() => dead.add(r));
  replicas.forEach(track);
  const stack: Stack = {
    redis,
    replicas,
    adminToken,
    async cli(args, replica) {
      // By default the first replica that is still running.
      const target = replica === undefined ? replicas.find((r) => !dead.has(r)) : replicas[replica];
      if (!target) throw new Error(`no replica ${replica}`);
      const { stdout } = await run(process.execPath, [cliPath, ...args], {
        env: { ...process.env, K8SDEPLOY_SERVER: `http://${target.grpcAddress}`, K8SDEPLOY_ADMIN_TOKEN: adminToken },
      });
      return stdout;
    },
    async createAgent(name) {
      return JSON.parse(await stack.cli(["agent", "create", "--name", name, "--json"]));
    },
    async createKey(agentId, scope = {}) {
      const args = ["key", "create", "--agent", agentId, "--json"];
      for (const ns of scope.namespaces ?? []) args.push("--namespace", ns);
      for (const w of scope.workloads ?? []) args.push("--workload", w);
      return JSON.parse(await stack.cli(args));
    },
    startAgent(agent) {
      const [command, ...prefix] = agent.node ?? [process.execPath];
      const proc = startProcess(command ?? process.execPath, [...prefix, agentBundle], {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        KUBECONFIG: kubeconfigPath(),
        K8SDEPLOY_SERVER: agent.servers.map((s) => `http://${s}`).join(","),
        K8SDEPLOY_AGENT_TOKEN: agent.token,
        K8SDEPLOY_LOG_LEVEL: "debug",
        POD_NAMESPACE: "k8sdeploy-e2e",
        ...agent.env,
      });
      agents.push(proc);
      return proc;
    },
    async restartReplica(index) {
      const old = replicas[index];
      if (old) retired.push(old);
      const next = await startOrchestrator({ env: replicaEnv(index) });
      track(next);
      replicas[index] = next;
      return next;
    },
    allOutput() {
      return [...replicas, ...retired]
        .map((r) => ("logs" in r ? r.logs() : r.output()))
        .concat(agents.map((a) => a.output()))
        .join("\n");
    },
    async stop() {
      await Promise.all(agents.map((a) => a.kill("SIGKILL")));
      await Promise.all(replicas.map((r) => r.stop("SIGKILL").catch(() => {})));
      await redis.stop("SIGKILL");
    },
  };
  return stack;
}
