// The agent process end to end: exit codes and signals, spawning `node --import tsx main.ts`
// against the stand-in orchestrator (connection/testing/fake-orchestrator.ts). Serial: each child
// loads client-node, which takes seconds on a busy machine.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { DrainReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import test, { type ExecutionContext } from "ava";
import { agentVersion } from "./config.js";
import { FakeOrchestrator, waitFor } from "./connection/testing/fake-orchestrator.js";

const TOKEN = "kda_main_test_token_0123456789";
const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

/** A kubeconfig pointing at nothing: enough to start (the Kubernetes version is best effort). */
function kubeconfig(): string {
  const dir = mkdtempSync(join(tmpdir(), "k8sdeploy-agent-main-"));
  const file = join(dir, "kubeconfig");
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: fake}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`,
  );
  return file;
}

interface Run {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  kill: (signal: NodeJS.Signals) => void;
}

function agent(t: ExecutionContext, env: Record<string, string>, args: string[] = []): Run {
  let stdout = "";
  let stderr = "";
  const child = spawn(process.execPath, ["--import=tsx", MAIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const code = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  return { code, stdout: () => stdout, stderr: () => stderr, kill: (s) => child.kill(s) };
}

test.serial("without configuration it prints the problems and exits 1", async (t) => {
  const run = agent(t, {});
  t.is(await run.code, 1);
  t.regex(run.stderr(), /K8SDEPLOY_SERVER is required/);
  t.regex(run.stderr(), /K8SDEPLOY_AGENT_TOKEN is required/);
});

test.serial("an invalid token exits 1 without echoing it", async (t) => {
  const run = agent(t, { K8SDEPLOY_SERVER: "http://127.0.0.1:1", K8SDEPLOY_AGENT_TOKEN: "ghp_notanagenttoken123" });
  t.is(await run.code, 1);
  t.regex(run.stderr(), /K8SDEPLOY_AGENT_TOKEN must start with "kda_"/);
  t.false(run.stderr().includes("ghp_notanagenttoken123"));
});

test.serial("--version and --help", async (t) => {
  const v = agent(t, {}, ["--version"]);
  t.is(await v.code, 0);
  t.is(v.stdout().trim(), agentVersion(), "the root package.json's version");
  const h = agent(t, {}, ["--help"]);
  t.is(await h.code, 0);
  t.regex(h.stdout(), /K8SDEPLOY_AGENT_TOKEN_FILE/);
});

test.serial("a rejected token exits 2 with a clear message and no token in the output", async (t) => {
  const o = await new FakeOrchestrator({
    token: TOKEN,
    rejectWith: { code: grpc.status.UNAUTHENTICATED, details: "agent token revoked" },
  }).start();
  t.teardown(() => o.stop());
  const run = agent(t, { K8SDEPLOY_SERVER: o.url, K8SDEPLOY_AGENT_TOKEN: TOKEN, KUBECONFIG: kubeconfig() });
  t.is(await run.code, 2);
  t.regex(run.stderr(), /the orchestrator rejected the agent token: agent token revoked/);
  t.false(run.stderr().includes(TOKEN));
  t.false(run.stdout().includes(TOKEN));
});

test.serial("SIGTERM shuts down gracefully with exit 0", async (t) => {
  const o = await new FakeOrchestrator({ token: TOKEN }).start();
  t.teardown(() => o.stop());
  const run = agent(t, { K8SDEPLOY_SERVER: o.url, K8SDEPLOY_AGENT_TOKEN: TOKEN, KUBECONFIG: kubeconfig() });
  const s = await o.stream(0, 60_000);
  await waitFor(() => run.stderr().includes("connected to the orchestrator"), 30_000);
  run.kill("SIGTERM");
  t.is(await run.code, 0);
  await waitFor(() => s.ended);
  t.regex(run.stderr(), /"msg":"stopped"/);
});

test.serial("superseded (drain with reconnect=false) exits 0 without reconnecting", async (t) => {
  const o = await new FakeOrchestrator({ token: TOKEN }).start();
  t.teardown(() => o.stop());
  const run = agent(t, { K8SDEPLOY_SERVER: o.url, K8SDEPLOY_AGENT_TOKEN: TOKEN, KUBECONFIG: kubeconfig() });
  const s = await o.stream(0, 60_000);
  await waitFor(() => run.stderr().includes("connected to the orchestrator"), 30_000);
  s.drain({ reason: DrainReason.DRAIN_REASON_SUPERSEDED, reconnect: false });
  t.is(await run.code, 0);
  t.regex(run.stderr(), /superseded/);
  t.is(o.streams.length, 1);
});
