// Hardening of the agent stream (issue 7): an agent acts only on its own commands, states only
// move forward, what agents report is bounded, results are acknowledged only once stored, older
// queued deploys are superseded, queued deploys expire or can be cancelled, and deploy keys read
// only within their scope. In process, on a real grpc-js server with the memory store, driven by
// a scripted stand-in agent.
import * as grpc from "@grpc/grpc-js";
import type { ConnectRequest, ConnectResponse } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeployServiceClient, type GetDeploymentResponse } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { type ContainerImage, DeploymentState, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import pino from "pino";
import { metrics } from "../metrics.js";
import {
  ADMIN,
  adminCtx,
  connectStandIn,
  deploy,
  isCommand,
  md,
  type StandIn,
  setup,
  teardown,
} from "./testing/stand-in-agent.js";

const S = DeploymentState;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function memoryLog() {
  const lines: string[] = [];
  return { lines, log: pino({ level: "debug" }, { write: (s: string) => lines.push(s) }) };
}

async function refusedCount(reason: string): Promise<number> {
  const m = await metrics.agentMessagesRefused.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

function progress(
  commandId: string,
  init: Partial<Extract<ConnectRequest["msg"], { $case: "progress" }>["value"]> = {},
) {
  return {
    msg: {
      $case: "progress" as const,
      value: {
        commandId,
        state: S.DEPLOYMENT_STATE_IN_PROGRESS,
        message: "rolling",
        replicas: undefined,
        previousImages: [],
        appliedImages: [],
        resolvedDigest: "",
        ...init,
      },
    },
  };
}

function result(commandId: string, state: DeploymentState, init: Record<string, unknown> = {}): ConnectRequest {
  return {
    msg: {
      $case: "result",
      value: {
        commandId,
        state,
        failure:
          state === S.DEPLOYMENT_STATE_SUCCEEDED
            ? undefined
            : { reason: FailureReason.FAILURE_REASON_IMAGE_PULL, message: "ErrImagePull" },
        message: "",
        replicas: undefined,
        previousImages: [],
        appliedImages: [],
        resolvedDigest: "",
        ...init,
      },
    },
  };
}

const isResultAck = (id: string) => (m: ConnectResponse) =>
  m.msg?.$case === "resultAck" && m.msg.value.commandId === id;

async function commandId(agent: StandIn): Promise<string> {
  const m = await agent.next(isCommand);
  return m.msg?.$case === "command" ? m.msg.value.id : "";
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await sleep(25);
  }
}

test("an agent's ack, progress and result for another agent's deployment are ignored, logged with both ids and counted", async (t) => {
  const { lines, log } = memoryLog();
  const { app, server, address, token: tokenB, key: keyB, agentId: agentB } = await setup({}, log);
  const { agent: a, token: tokenA } = await app.admin.createAgent({ name: "attacker" }, adminCtx);
  const agentA = a!.id;
  const before = await refusedCount("foreign_command");
  // B is offline: its deployment waits in its queue. A learned the id (it is in CI logs).
  const { deployment } = await deploy(address, keyB);
  const id = deployment!.id;
  const attacker = connectStandIn(address, tokenA);
  await attacker.next((m) => m.msg?.$case === "welcome");
  attacker.write({ msg: { $case: "ack", value: { commandId: id } } });
  attacker.write(
    progress(id, { previousImages: [{ container: "web", image: "evil.example/miner:latest", init: false }] }),
  );
  attacker.write(
    result(id, S.DEPLOYMENT_STATE_SUCCEEDED, {
      previousImages: [{ container: "web", image: "evil.example/miner:latest", init: false }],
    }),
  );
  await attacker.next(isResultAck(id));
  const d = await app.store.deployments.getDeployment(id);
  t.is(d?.state, S.DEPLOYMENT_STATE_QUEUED);
  t.deepEqual(d?.previousImages, []);
  t.is((await app.store.deployments.listEvents(id, 0)).length, 1);
  t.is((await refusedCount("foreign_command")) - before, 3);
  const refusal = lines.map((l) => JSON.parse(l)).find((e) => e.reason === "foreign_command");
  t.is(refusal?.agentId, agentA);
  t.is(refusal?.ownerAgentId, agentB);

  // B's own (failed) result is the one that counts.
  const victim = connectStandIn(address, tokenB);
  t.is(await commandId(victim), id);
  victim.write(
    result(id, S.DEPLOYMENT_STATE_FAILED, { previousImages: [{ container: "web", image: "nginx:1.26", init: false }] }),
  );
  await victim.next(isResultAck(id));
  const final = await app.store.deployments.getDeployment(id);
  t.is(final?.state, S.DEPLOYMENT_STATE_FAILED);
  // A rollback deploys B's own previous image, to B.
  const { deployment: rb } = await app.admin.rollbackDeployment({ id }, adminCtx);
  t.is(rb?.agentId, agentB);
  t.is(rb?.image, "nginx:1.26");
  attacker.close();
  victim.close();
  await teardown(app, server);
});

test("a describe reply is passed on only from the agent the describe command was sent to", async (t) => {
  const { app, server, address, token: tokenB, agentId: agentB } = await setup();
  const { token: tokenA } = await app.admin.createAgent({ name: "attacker" }, adminCtx);
  const victim = connectStandIn(address, tokenB);
  await victim.next((m) => m.msg?.$case === "welcome");
  const attacker = connectStandIn(address, tokenA);
  await attacker.next((m) => m.msg?.$case === "welcome");
  const before = await refusedCount("unknown_command");
  const pending = app.admin.listNamespaces({ agentId: agentB }, adminCtx);
  const id = await commandId(victim);
  const reply = (namespaces: string[]): ConnectRequest => ({
    msg: {
      $case: "describeReply",
      value: {
        commandId: id,
        namespaces: namespaces.map((name) => ({ name, phase: "Active", createdAt: new Date() })),
        workloads: [],
        error: undefined,
      },
    },
  });
  attacker.write(reply(["fake-from-a"]));
  await attacker.next(isResultAck(id));
  t.is((await refusedCount("unknown_command")) - before, 1);
  victim.write(reply(["real-from-b"]));
  const { namespaces } = await pending;
  t.deepEqual(
    namespaces.map((n) => n.name),
    ["real-from-b"],
  );
  attacker.close();
  victim.close();
  await teardown(app, server);
});

test("reported images must be image references; invalid ones are dropped before they are stored", async (t) => {
  const { app, server, address, token, key } = await setup();
  const { deployment } = await deploy(address, key);
  const agent = connectStandIn(address, token);
  const id = await commandId(agent);
  t.is(id, deployment!.id);
  const images: ContainerImage[] = [
    { container: "web", image: "nginx:1.26", init: false },
    { container: "side", image: "not an image; rm -rf /", init: false },
    { container: "Bad Name", image: "nginx:1.25", init: false },
  ];
  agent.write(progress(id, { previousImages: images, appliedImages: images }));
  const d = await until(
    () => app.store.deployments.getDeployment(id),
    (x) => x?.state === S.DEPLOYMENT_STATE_IN_PROGRESS,
    "in_progress",
  );
  t.deepEqual(d?.previousImages, [{ container: "web", image: "nginx:1.26", init: false }]);
  t.deepEqual(d?.appliedImages, [{ container: "web", image: "nginx:1.26", init: false }]);
  agent.close();
  await teardown(app, server);
});

test("states only move forward: backwards, unknown and non-final results are refused, final states never change", async (t) => {
  const { app, server, address, token, key } = await setup();
  const { deployment } = await deploy(address, key);
  const agent = connectStandIn(address, token);
  const id = await commandId(agent);
  t.is(id, deployment!.id);
  const before = {
    backwards: await refusedCount("backwards_state"),
    unknown: await refusedCount("unknown_state"),
    notResult: await refusedCount("not_a_result_state"),
  };
  agent.write(progress(id, { message: "patched" }));
  agent.write(progress(id, { state: S.DEPLOYMENT_STATE_QUEUED, message: "back to queued" }));
  agent.write(progress(id, { state: 99 as DeploymentState, message: "ninety-nine" }));
  agent.write(result(id, 99 as DeploymentState));
  await agent.next(isResultAck(id));
  agent.write(result(id, S.DEPLOYMENT_STATE_IN_PROGRESS));
  await agent.next(isResultAck(id));
  let d = await app.store.deployments.getDeployment(id);
  t.is(d?.state, S.DEPLOYMENT_STATE_IN_PROGRESS);
  t.is(d?.message, "patched");
  t.is((await refusedCount("backwards_state")) - before.backwards, 1);
  t.is((await refusedCount("unknown_state")) - before.unknown, 2);
  t.is((await refusedCount("not_a_result_state")) - before.notResult, 1);
  agent.write(result(id, S.DEPLOYMENT_STATE_SUCCEEDED));
  await agent.next(isResultAck(id));
  agent.write(result(id, S.DEPLOYMENT_STATE_FAILED));
  await agent.next(isResultAck(id));
  d = await app.store.deployments.getDeployment(id);
  t.is(d?.state, S.DEPLOYMENT_STATE_SUCCEEDED);
  const states = (await app.store.deployments.listEvents(id, 0)).map((e) => e.state);
  t.deepEqual(states, [S.DEPLOYMENT_STATE_QUEUED, S.DEPLOYMENT_STATE_IN_PROGRESS, S.DEPLOYMENT_STATE_SUCCEEDED]);
  agent.close();
  await teardown(app, server);
});

test("agent-reported text and lists are bounded: a 3.9 MB message is truncated with a marker and GetDeployment still works", async (t) => {
  const { app, server, address, token, key, agentId } = await setup();
  const { deployment } = await deploy(address, key);
  const agent = connectStandIn(address, token);
  const id = await commandId(agent);
  t.is(id, deployment!.id);
  const huge = "x".repeat(3_900_000);
  const many: ContainerImage[] = Array.from({ length: 200 }, (_, i) => ({
    container: `c${i}`,
    image: "nginx:1.26",
    init: false,
  }));
  agent.write(progress(id, { message: huge, previousImages: many }));
  agent.write(result(id, S.DEPLOYMENT_STATE_FAILED, { message: "failed", failure: { reason: 1, message: huge } }));
  await agent.next(isResultAck(id), 10_000);
  const client = new DeployServiceClient(address, grpc.credentials.createInsecure());
  const got = await new Promise<GetDeploymentResponse>((resolve, reject) =>
    client.getDeployment({ id }, md(key), (err, res) => (err ? reject(err) : resolve(res))),
  );
  client.close();
  t.true(got.deployment!.failure!.message.length <= 4096);
  t.regex(got.deployment!.failure!.message, /… \[truncated \d+ characters\]$/);
  t.is(got.deployment!.previousImages.length, 64);
  t.true(got.events.every((e) => e.message.length <= 4096));
  t.regex(
    got.events.find((e) => e.state === S.DEPLOYMENT_STATE_IN_PROGRESS)!.message,
    /… \[truncated \d+ characters\]$/,
  );

  // Describe replies too.
  const pending = app.admin.listNamespaces({ agentId }, adminCtx);
  const describeId = await commandId(agent);
  agent.write({
    msg: {
      $case: "describeReply",
      value: {
        commandId: describeId,
        namespaces: Array.from({ length: 7000 }, (_, i) => ({
          name: `ns-${i}`,
          phase: "Active",
          createdAt: undefined,
        })),
        workloads: [],
        error: undefined,
      },
    },
  });
  t.is((await pending).namespaces.length, 5000);
  agent.close();
  await teardown(app, server);
});

test("a result is acknowledged on the stream only after it is stored", async (t) => {
  const { app, server, address, token, key } = await setup();
  const { deployment } = await deploy(address, key);
  const agent = connectStandIn(address, token);
  const id = await commandId(agent);
  const welcome = agent.received.find((m) => m.msg?.$case === "welcome");
  t.true(welcome?.msg?.$case === "welcome" && welcome.msg.value.acksResults);
  t.is(id, deployment!.id);
  agent.write(result(id, S.DEPLOYMENT_STATE_SUCCEEDED));
  await agent.next(isResultAck(id));
  // The ack came after the store had the final state and the queue entry was gone.
  t.is((await app.store.deployments.getDeployment(id))?.state, S.DEPLOYMENT_STATE_SUCCEEDED);
  t.is(await app.store.queue.pendingCount(deployment!.agentId), 0);
  agent.close();
  await teardown(app, server);
});

test("a result the store cannot take is retried, then the stream fails UNAVAILABLE; the re-sent result is stored", async (t) => {
  const { app, server, address, token, key } = await setup();
  const { deployment } = await deploy(address, key);
  const id = deployment!.id;
  const first = connectStandIn(address, token);
  t.is(await commandId(first), id);
  // The store fails every write of this deployment for a while (as Redis does while it is down).
  const deployments = app.store.deployments;
  const original = deployments.appendEvent.bind(deployments);
  let failing = true;
  let attempts = 0;
  deployments.appendEvent = async (...args: Parameters<typeof original>) => {
    if (failing && args[0] === id) {
      attempts += 1;
      throw new Error("store down");
    }
    return original(...args);
  };
  first.write(result(id, S.DEPLOYMENT_STATE_SUCCEEDED));
  const err = await t.throwsAsync(first.next(isResultAck(id), 20_000));
  t.is((err as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
  t.true(attempts >= 3, `attempts: ${attempts}`);
  t.is((await app.store.deployments.getDeployment(id))?.state, S.DEPLOYMENT_STATE_QUEUED);
  first.close();
  failing = false;
  // The agent reconnects and sends the result again (the command is redelivered too).
  const second = connectStandIn(address, token);
  t.is(await commandId(second), id);
  second.write(result(id, S.DEPLOYMENT_STATE_SUCCEEDED));
  await second.next(isResultAck(id));
  t.is((await app.store.deployments.getDeployment(id))?.state, S.DEPLOYMENT_STATE_SUCCEEDED);
  second.close();
  await teardown(app, server);
});

test("when a deploy succeeds, older queued deploys of the same workload end superseded and leave the queue", async (t) => {
  const { app, server, address, token, key, agentId } = await setup();
  const { deployment: older } = await deploy(address, key, "default", { image: "nginx:1.1" });
  await sleep(5);
  const { deployment: other } = await deploy(address, key, "default", { workload: "api", image: "nginx:1.1" });
  await sleep(5);
  const { deployment: newer } = await deploy(address, key, "default", { image: "nginx:1.2" });
  const agent = connectStandIn(address, token);
  const ids = [await commandId(agent), await commandId(agent), await commandId(agent)];
  t.deepEqual(ids, [older!.id, other!.id, newer!.id]);
  // The agent ran only the newer one (e.g. the older one's stream was lost).
  agent.write(result(newer!.id, S.DEPLOYMENT_STATE_SUCCEEDED));
  await agent.next(isResultAck(newer!.id));
  const o = await app.store.deployments.getDeployment(older!.id);
  t.is(o?.state, S.DEPLOYMENT_STATE_SUPERSEDED);
  t.is(o?.supersededBy, newer!.id);
  t.is(o?.failure?.reason, FailureReason.FAILURE_REASON_SUPERSEDED);
  t.is((await app.store.deployments.getDeployment(other!.id))?.state, S.DEPLOYMENT_STATE_QUEUED);
  // Only the other workload's command is redelivered on the next connection.
  agent.close();
  await sleep(100);
  const again = connectStandIn(address, token);
  t.is(await commandId(again), other!.id);
  await sleep(300);
  t.false(again.received.some(isCommand));
  t.is(await app.store.queue.pendingCount(agentId), 1);
  again.close();
  await teardown(app, server);
});

test("a queued deploy past its queue deadline ends expired and is never sent", async (t) => {
  const { app, server, address, token, key } = await setup();
  const { deployment } = await deploy(address, key, "default", { queueTimeoutSeconds: 1 });
  t.truthy(deployment?.queueDeadline);
  t.true(Math.abs(deployment!.queueDeadline!.getTime() - deployment!.createdAt!.getTime() - 1000) < 5);
  // The sweep ends it although no agent is connected.
  const expired = await until(
    () => app.store.deployments.getDeployment(deployment!.id),
    (d) => d?.state === S.DEPLOYMENT_STATE_EXPIRED,
    "expired",
    15_000,
  );
  t.is(expired?.failure?.reason, FailureReason.FAILURE_REASON_QUEUE_DEADLINE_EXCEEDED);
  const agent = connectStandIn(address, token);
  await agent.next((m) => m.msg?.$case === "welcome");
  await sleep(300);
  t.false(agent.received.some(isCommand));
  agent.close();
  await teardown(app, server);
});

test("delivery expires an overdue command itself when the sweep has not run yet", async (t) => {
  const { app, server, address, token, key, agentId } = await setup();
  const { deployment } = await deploy(address, key, "default", { queueTimeoutSeconds: 1 });
  // Take the entry out of the deadline index, as if the sweep had lost it.
  await app.store.queue.takeDue(new Date(Date.now() + 10_000), 100);
  await sleep(1100);
  const agent = connectStandIn(address, token);
  await agent.next((m) => m.msg?.$case === "welcome");
  await until(
    () => app.store.deployments.getDeployment(deployment!.id),
    (d) => d?.state === S.DEPLOYMENT_STATE_EXPIRED,
    "expired",
  );
  t.false(agent.received.some(isCommand));
  t.is(await app.store.queue.pendingCount(agentId), 0);
  agent.close();
  await teardown(app, server);
});

test("CancelDeployment cancels a queued deploy (never sent); one already sent is refused with FAILED_PRECONDITION", async (t) => {
  const { app, server, address, token, key } = await setup();
  const { deployment } = await deploy(address, key);
  const cancelled = await app.deploy.cancelDeployment(
    { id: deployment!.id, reason: "the workflow gave up" },
    { authorization: `Bearer ${key}`, signal: new AbortController().signal },
  );
  t.is(cancelled.deployment?.state, S.DEPLOYMENT_STATE_CANCELLED);
  t.regex(cancelled.deployment!.message, /the workflow gave up/);
  const agent = connectStandIn(address, token);
  await agent.next((m) => m.msg?.$case === "welcome");
  const { deployment: second } = await deploy(address, key);
  t.is(await commandId(agent), second!.id);
  const err = await t.throwsAsync(
    app.deploy.cancelDeployment(
      { id: second!.id, reason: "" },
      { authorization: `Bearer ${ADMIN}`, signal: new AbortController().signal },
    ),
  );
  t.regex(err!.message, /already sent to agent/);
  t.is((err as unknown as { code: number }).code, grpc.status.FAILED_PRECONDITION);
  const again = await t.throwsAsync(app.deploy.cancelDeployment({ id: deployment!.id, reason: "" }, adminCtx));
  t.regex(again!.message, /cancelled already/);
  agent.close();
  await teardown(app, server);
});

test("a deploy key scoped to one namespace cannot read the same agent's deployments in another", async (t) => {
  const { app, server, address, agentId } = await setup();
  const wide = await app.admin.createDeployKey({ agentId, name: "", namespaces: [], workloads: [] }, adminCtx);
  const narrow = await app.admin.createDeployKey(
    { agentId, name: "", namespaces: ["team-a"], workloads: [] },
    adminCtx,
  );
  const { deployment } = await deploy(address, wide.key, "team-b");
  const ctx = (k: string) => ({ authorization: `Bearer ${k}`, signal: new AbortController().signal });
  const err = await t.throwsAsync(app.deploy.getDeployment({ id: deployment!.id }, ctx(narrow.key)));
  t.is((err as unknown as { code: number }).code, grpc.status.NOT_FOUND);
  const watch = app.deploy.watchDeployment({ id: deployment!.id, afterSeq: 0 }, ctx(narrow.key));
  await t.throwsAsync(
    async () => {
      for await (const _ of watch) break;
    },
    { message: /not found/ },
  );
  await t.throwsAsync(app.deploy.cancelDeployment({ id: deployment!.id, reason: "" }, ctx(narrow.key)), {
    message: /not found/,
  });
  t.is((await app.deploy.getDeployment({ id: deployment!.id }, ctx(wide.key))).deployment?.id, deployment!.id);
  await teardown(app, server);
});
