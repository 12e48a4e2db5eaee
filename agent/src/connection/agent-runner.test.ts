// Connection-layer tests: the real agent runner (grpc-js client, channel, stream session, tracker)
// against a stand-in orchestrator (testing/fake-orchestrator.ts, a real grpc-js server on
// loopback) and fake executors (testing/fake-executors.ts, no Kubernetes).
import * as grpc from "@grpc/grpc-js";
import { Capability, type Command, DrainReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState, FailureReason, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test, { type ExecutionContext } from "ava";
import { agentVersion, loadConfig } from "../config.js";
import { createLogger } from "../log.js";
import { type AgentExit, FatalAgentError, type RunAgentOptions, runAgent } from "./agent-runner.js";
import { FakeExecutors, forbidden } from "./testing/fake-executors.js";
import { FakeOrchestrator, type FakeOrchestratorOptions, waitFor } from "./testing/fake-orchestrator.js";

const TOKEN = "kda_test_0123456789abcdefSECRET";

function deployCommand(id: string, image = "example/web:2"): Command {
  return {
    id,
    createdAt: new Date(),
    payload: {
      $case: "deploy",
      value: {
        deploymentId: id,
        namespace: "default",
        kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
        workload: "web",
        containers: [],
        image,
        timeoutSeconds: 60,
        rollbackOnFailure: false,
        pinDigest: false,
      },
    },
  };
}

async function orchestrator(t: ExecutionContext, options: Partial<FakeOrchestratorOptions> = {}) {
  const o = await new FakeOrchestrator({ token: TOKEN, ...options }).start();
  t.teardown(() => o.stop());
  return o;
}

/** A free loopback port with nothing listening (a server that is down). */
async function deadPort(): Promise<number> {
  const o = await new FakeOrchestrator({ token: TOKEN }).start();
  const port = o.port;
  o.stop();
  return port;
}

function startAgent(
  t: ExecutionContext,
  servers: string[],
  extra: { env?: Record<string, string>; options?: RunAgentOptions } = {},
) {
  const lines: string[] = [];
  const log = createLogger({ level: "trace", destination: { write: (l) => lines.push(l) } });
  const config = loadConfig({
    K8SDEPLOY_SERVER: servers.join(","),
    K8SDEPLOY_AGENT_TOKEN: TOKEN,
    POD_NAME: "k8sdeploy-agent-7d9f-abcde",
    POD_NAMESPACE: "k8sdeploy",
    ...extra.env,
  });
  const executors = new FakeExecutors();
  const ac = new AbortController();
  const run = runAgent(config, executors, log, ac.signal, {
    backoff: { baseMs: 20, capMs: 100 },
    heartbeatSecondMs: 50,
    closeTimeoutMs: 300,
    shutdownGraceMs: 3000,
    kubernetesVersion: async () => "v1.36.3",
    ...extra.options,
  });
  let settled: { exit?: AgentExit; error?: unknown } | undefined;
  run.then(
    (exit) => {
      settled = { exit };
    },
    (error) => {
      settled = { error };
    },
  );
  t.teardown(async () => {
    ac.abort();
    await run.catch(() => undefined);
  });
  return { run, executors, lines, stop: () => ac.abort(), settled: () => settled };
}

test.serial("hello is the first message, with the bearer token and the agent's identity", async (t) => {
  const o = await orchestrator(t);
  startAgent(t, [o.url]);
  const s = await o.stream(0);
  t.is(s.authorization, `Bearer ${TOKEN}`);
  const first = s.received[0]!.msg;
  if (first?.$case !== "hello") return t.fail(`first message was ${first?.$case}`);
  t.like(first.value, {
    agentVersion: agentVersion(),
    arch: process.arch,
    kubernetesVersion: "v1.36.3",
    autoUpdateEnabled: false,
    instance: "k8sdeploy-agent-7d9f-abcde",
    namespace: "k8sdeploy",
    runningCommandIds: [],
  });
  t.deepEqual(first.value.capabilities, [
    Capability.CAPABILITY_DEPLOY,
    Capability.CAPABILITY_DESCRIBE,
    Capability.CAPABILITY_ROLLBACK,
  ]);
});

test.serial("commands are acked at once, then progress and a result follow", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url]);
  agent.executors.holdDeploys = false;
  const s = await o.stream(0);
  s.sendCommand(deployCommand("dep_1"));
  await waitFor(() => s.messages("result").length === 1);
  const kinds = s.received.map((r) => r.msg?.$case);
  t.deepEqual(kinds, ["hello", "ack", "progress", "progress", "result"]);
  t.deepEqual(s.messages("ack"), [{ commandId: "dep_1" }]);
  const result = s.messages("result")[0]!;
  t.is(result.commandId, "dep_1");
  t.is(result.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  t.is(s.messages("progress")[0]!.commandId, "dep_1");
});

test.serial(
  "a duplicate command id is executed once; duplicates get an ack, the latest progress, the same result",
  async (t) => {
    const o = await orchestrator(t);
    const agent = startAgent(t, [o.url]);
    const s = await o.stream(0);
    s.sendCommand(deployCommand("dep_dup"));
    await waitFor(() => agent.executors.isHeld("dep_dup"));
    s.sendCommand(deployCommand("dep_dup")); // duplicate while running
    await waitFor(() => s.messages("ack").length === 2 && s.messages("progress").length === 2);
    t.is(agent.executors.deployCalls.get("dep_dup"), 1);
    const [first, resent] = s.messages("progress");
    t.deepEqual(resent, first);

    agent.executors.release("dep_dup");
    await waitFor(() => s.messages("result").length === 1);
    s.sendCommand(deployCommand("dep_dup")); // duplicate after the result
    await waitFor(() => s.messages("result").length === 2);
    t.is(s.messages("ack").length, 3);
    t.is(agent.executors.deployCalls.get("dep_dup"), 1);
    const [r1, r2] = s.messages("result");
    t.deepEqual(r2, r1);
    t.is(r1!.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  },
);

test.serial(
  "after the server is killed and restarted, the agent reconnects and delivers the result produced while disconnected",
  async (t) => {
    const o = await orchestrator(t);
    const agent = startAgent(t, [o.url]);
    const s0 = await o.stream(0);
    s0.sendCommand(deployCommand("dep_offline"));
    await waitFor(() => agent.executors.isHeld("dep_offline"));
    o.stop(); // crash: streams reset, nothing listening
    await new Promise((r) => setTimeout(r, 100));
    agent.executors.release("dep_offline"); // finishes while disconnected
    await new Promise((r) => setTimeout(r, 100));
    t.is(s0.messages("result").length, 0);

    await o.start(); // same port
    const s1 = await o.stream(1);
    await waitFor(() => s1.messages("result").length === 1);
    t.is(s1.messages("result")[0]!.commandId, "dep_offline");
    // The orchestrator redelivers the command (it never saw the result): answered, not re-run.
    s1.sendCommand(deployCommand("dep_offline"));
    await waitFor(() => s1.messages("result").length === 2);
    t.is(agent.executors.deployCalls.get("dep_offline"), 1);
    t.true(agent.lines.some((l) => l.includes("cannot connect to the orchestrator")));
  },
);

test.serial("a command still running at reconnect is announced in hello and finishes on the new stream", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url]);
  const s0 = await o.stream(0);
  s0.sendCommand(deployCommand("dep_long"));
  await waitFor(() => agent.executors.isHeld("dep_long"));
  o.stop();
  await o.start();
  const s1 = await o.stream(1);
  const hello = s1.messages("hello")[0]!;
  t.deepEqual(hello.runningCommandIds, ["dep_long"]);
  // Latest progress is re-sent on the new stream once welcomed.
  await waitFor(() => s1.messages("progress").length === 1);
  s1.sendCommand(deployCommand("dep_long")); // redelivery while running
  await waitFor(() => s1.messages("ack").length === 1);
  agent.executors.release("dep_long");
  await waitFor(() => s1.messages("result").length === 1);
  t.is(agent.executors.deployCalls.get("dep_long"), 1);
  t.is(s0.messages("result").length, 0);
});

test.serial(
  "an unacknowledged result is sent again on the next stream until the orchestrator acknowledges it",
  async (t) => {
    const o = await orchestrator(t, { acksResults: true });
    const agent = startAgent(t, [o.url]);
    agent.executors.holdDeploys = false;
    const s0 = await o.stream(0);
    s0.sendCommand(deployCommand("dep_unacked"));
    await waitFor(() => s0.messages("result").length === 1);
    // The orchestrator could not store it and failed the stream: no result_ack came.
    o.stop();
    await o.start();
    const s1 = await o.stream(1);
    await waitFor(() => s1.messages("result").length === 1);
    t.is(s1.messages("result")[0]!.commandId, "dep_unacked");
    s1.ackResult("dep_unacked");
    await new Promise((r) => setTimeout(r, 100));
    o.stop();
    await o.start();
    const s2 = await o.stream(2);
    await new Promise((r) => setTimeout(r, 300));
    t.is(s2.messages("result").length, 0);
    t.is(agent.executors.deployCalls.get("dep_unacked"), 1);
  },
);

test.serial("fails over to the second URL when the first is down, and back when the second goes away", async (t) => {
  const downPort = await deadPort();
  const b = await orchestrator(t);
  startAgent(t, [`http://127.0.0.1:${downPort}`, b.url]);
  const sb = await b.stream(0);
  t.is(sb.messages("hello").length, 1);

  const a = await new FakeOrchestrator({ token: TOKEN }).start(downPort);
  t.teardown(() => a.stop());
  b.stop();
  const sa = await a.stream(0);
  t.is(sa.messages("hello").length, 1);
});

test.serial("UNAUTHENTICATED stops the agent with FatalAgentError, and the token never reaches the logs", async (t) => {
  const o = await orchestrator(t, {
    rejectWith: { code: grpc.status.UNAUTHENTICATED, details: `token ${TOKEN} is revoked` },
  });
  const agent = startAgent(t, [o.url]);
  const error = await t.throwsAsync(agent.run, { instanceOf: FatalAgentError });
  t.is(error?.code, grpc.status.UNAUTHENTICATED);
  t.is(error?.exitCode, 2);
  t.regex(error!.message, /rejected the agent token/);
  t.regex(error!.message, /k8sdeploy agent rotate/);
  t.false(error!.message.includes(TOKEN));
  t.is(o.streams.length, 1); // no retry
  const logs = agent.lines.join("");
  t.true(logs.length > 0);
  t.false(logs.includes(TOKEN));
  t.false(logs.includes("0123456789abcdefSECRET"));
});

test.serial("a wrong token is rejected by the stand-in orchestrator and is fatal", async (t) => {
  const o = await orchestrator(t, { token: "kda_some_other_token_value" });
  const agent = startAgent(t, [o.url]);
  await t.throwsAsync(agent.run, { instanceOf: FatalAgentError, message: /invalid or revoked agent token/ });
  t.false(agent.lines.join("").includes(TOKEN));
});

test.serial("PERMISSION_DENIED is fatal too", async (t) => {
  const o = await orchestrator(t, { rejectWith: { code: grpc.status.PERMISSION_DENIED, details: "agent disabled" } });
  const agent = startAgent(t, [o.url]);
  const error = await t.throwsAsync(agent.run, { instanceOf: FatalAgentError });
  t.is(error?.code, grpc.status.PERMISSION_DENIED);
});

test.serial("other errors are retried with backoff", async (t) => {
  const o = await orchestrator(t, { rejectWith: { code: grpc.status.RESOURCE_EXHAUSTED, details: "too many agents" } });
  const agent = startAgent(t, [o.url]);
  await waitFor(() => o.streams.length >= 3);
  t.is(agent.settled(), undefined);
});

test.serial("drain closes the stream and reconnects after reconnect_after_ms, to the next server", async (t) => {
  const a = await orchestrator(t, { replicaId: "a" });
  const b = await orchestrator(t, { replicaId: "b" });
  startAgent(t, [a.url, b.url]);
  const sa = await a.stream(0);
  await waitFor(() => sa.received.length >= 1);
  const drainedAt = Date.now();
  sa.drain({ reason: DrainReason.DRAIN_REASON_SHUTDOWN, reconnectAfterMs: 150, reconnect: true });
  await waitFor(() => sa.ended);
  const sb = await b.stream(0);
  t.true(Date.now() - drainedAt >= 150);
  t.is(sb.messages("hello").length, 1);
  t.is(a.streams.length, 1);
});

test.serial("drain with reconnect=false (superseded) ends the agent without reconnecting", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url]);
  const s = await o.stream(0);
  s.drain({ reason: DrainReason.DRAIN_REASON_SUPERSEDED, reconnect: false });
  const exit = await agent.run;
  t.is(exit.reason, "superseded");
  await new Promise((r) => setTimeout(r, 100));
  t.is(o.streams.length, 1);
  t.true(agent.lines.some((l) => l.includes("superseded")));
});

test.serial("drain followed at once by the end of the call is still seen as a drain", async (t) => {
  // The real orchestrator writes drain and ends the call immediately: the OK status must not
  // overtake the drain message, or a superseded agent would reconnect and take over again.
  for (let i = 0; i < 20; i++) {
    const o = await orchestrator(t);
    const agent = startAgent(t, [o.url]);
    const s = await o.stream(0);
    await waitFor(() => agent.lines.some((l) => l.includes("connected to the orchestrator")));
    s.drain({ reason: DrainReason.DRAIN_REASON_SUPERSEDED, reconnect: false }, { end: true });
    const exit = await agent.run;
    t.is(exit.reason, "superseded", `iteration ${i}`);
    t.is(o.streams.length, 1);
    o.stop();
  }
});

test.serial("heartbeats flow at the welcome's interval and keep the stream open", async (t) => {
  // heartbeatSecondMs 50 → 2 "seconds" = 100 ms between heartbeats.
  const o = await orchestrator(t, { heartbeatIntervalSeconds: 2 });
  startAgent(t, [o.url]);
  const s = await o.stream(0);
  await waitFor(() => s.messages("heartbeat").length >= 5, 3000);
  t.is(o.streams.length, 1);
  t.true(s.messages("heartbeat").every((h) => h.sentAt instanceof Date));
});

test.serial("a server that goes silent is declared dead after 3 intervals and the agent reconnects", async (t) => {
  const o = await orchestrator(t, { heartbeatIntervalSeconds: 1, echoHeartbeats: false });
  const agent = startAgent(t, [o.url]);
  await o.stream(0);
  await o.stream(1, 3000);
  t.true(agent.lines.some((l) => l.includes("no message from the server")));
});

test.serial("describe commands answer with describe_reply, failures as its error", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url]);
  agent.executors.describeError = forbidden('cannot list deployments.apps in namespace "kube-system"');
  const s = await o.stream(0);
  s.sendCommand({ id: "cmd_ns", payload: { $case: "describeNamespaces", value: {} } });
  s.sendCommand({ id: "cmd_wl", payload: { $case: "describeWorkloads", value: { namespace: "kube-system" } } });
  await waitFor(() => s.messages("describeReply").length === 2);
  const replies = new Map(s.messages("describeReply").map((r) => [r.commandId, r]));
  t.is(replies.get("cmd_ns")!.namespaces[0]!.name, "default");
  t.is(replies.get("cmd_ns")!.error, undefined);
  t.deepEqual(replies.get("cmd_wl")!.workloads, []);
  t.is(replies.get("cmd_wl")!.error!.reason, FailureReason.FAILURE_REASON_PERMISSION_DENIED);
  t.deepEqual(
    s.messages("ack").map((a) => a.commandId),
    ["cmd_ns", "cmd_wl"],
  );
});

test.serial("update_agent is refused unless auto-update is enabled", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url]);
  const s = await o.stream(0);
  s.sendCommand({
    id: "upd_1",
    payload: {
      $case: "updateAgent",
      value: { image: "ghcr.io/k8sdeploy/agent:0.2.0", version: "0.2.0", readyTimeoutSeconds: 0 },
    },
  });
  await waitFor(() => s.messages("result").length === 1);
  const r = s.messages("result")[0]!;
  t.is(r.state, DeploymentState.DEPLOYMENT_STATE_FAILED);
  t.is(r.failure?.reason, FailureReason.FAILURE_REASON_INVALID_COMMAND);
  t.is(agent.executors.updateCalls.length, 0);
});

test.serial("with auto-update enabled, hello announces SELF_UPDATE and update_agent runs", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url], { env: { K8SDEPLOY_AUTO_UPDATE: "true" } });
  const s = await o.stream(0);
  const hello = s.messages("hello")[0]!;
  t.true(hello.autoUpdateEnabled);
  t.true(hello.capabilities.includes(Capability.CAPABILITY_SELF_UPDATE));
  s.sendCommand({
    id: "upd_2",
    payload: {
      $case: "updateAgent",
      value: { image: "ghcr.io/k8sdeploy/agent:0.2.0", version: "0.2.0", readyTimeoutSeconds: 0 },
    },
  });
  await waitFor(() => s.messages("result").length === 1);
  t.is(s.messages("result")[0]!.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  t.is(agent.executors.updateCalls.length, 1);
});

test.serial("an unknown command type gets an INVALID_COMMAND result", async (t) => {
  const o = await orchestrator(t);
  startAgent(t, [o.url]);
  const s = await o.stream(0);
  s.sendCommand({ id: "cmd_future", payload: undefined });
  await waitFor(() => s.messages("result").length === 1);
  t.is(s.messages("result")[0]!.failure?.reason, FailureReason.FAILURE_REASON_INVALID_COMMAND);
});

test.serial("on stop, new commands are refused, running ones finish and report, then the stream closes", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url]);
  const s = await o.stream(0);
  s.sendCommand(deployCommand("dep_running"));
  await waitFor(() => agent.executors.isHeld("dep_running"));
  agent.stop();
  await new Promise((r) => setTimeout(r, 50));
  s.sendCommand(deployCommand("dep_new"));
  await new Promise((r) => setTimeout(r, 50));
  t.is(agent.settled(), undefined);
  agent.executors.release("dep_running");
  const exit = await agent.run;
  t.deepEqual(exit, { reason: "stopped", abandonedCommandIds: [] });
  t.deepEqual(
    s.messages("ack").map((a) => a.commandId),
    ["dep_running"],
  );
  t.deepEqual(
    s.messages("result").map((r) => r.commandId),
    ["dep_running"],
  );
  t.false(agent.executors.deployCalls.has("dep_new"));
  await waitFor(() => s.ended);
});

test.serial("on stop, a command that outlives the grace period is abandoned", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url], { options: { shutdownGraceMs: 200 } });
  const s = await o.stream(0);
  s.sendCommand(deployCommand("dep_slow"));
  await waitFor(() => agent.executors.isHeld("dep_slow"));
  agent.stop();
  const exit = await agent.run;
  t.deepEqual(exit, { reason: "stopped", abandonedCommandIds: ["dep_slow"] });
});

test.serial("stopping with nothing running returns at once", async (t) => {
  const o = await orchestrator(t);
  const agent = startAgent(t, [o.url]);
  await o.stream(0);
  const started = Date.now();
  agent.stop();
  const exit = await agent.run;
  t.is(exit.reason, "stopped");
  t.true(Date.now() - started < 1000);
});
