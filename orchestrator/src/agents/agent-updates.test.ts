// Agent updates and the automatic rollout on the in-memory store (the same Store contract as
// Redis): preconditions, the concurrency bound across agents, never during a deploy, one
// automatic attempt per release.
import { ChangeKind, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { pino } from "pino";
import { newDeployment } from "../deploy/lifecycle.js";
import { RpcError } from "../rpc/rpc-error.js";
import { MemoryStore } from "../store/memory-store.js";
import type { AgentRecord } from "../store/store.js";
import { AgentUpdates } from "./agent-updates.js";
import { AutoUpdater } from "./auto-updater.js";
import { ReleaseChannel } from "./release-channel.js";

const RELEASE = { version: "0.3.0", image: `ghcr.io/k8sdeploy/agent:0.3.0@sha256:${"d".repeat(64)}` };

function agent(id: string, over: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id,
    name: id,
    createdAt: new Date(),
    tokens: [],
    hello: {
      version: "0.2.0",
      arch: "arm64",
      kubernetesVersion: "v1.36.3",
      autoUpdateEnabled: true,
      capabilities: [],
      instance: `${id}-pod`,
      namespace: "k8sdeploy",
      agentDeployment: "k8sdeploy-agent",
    },
    lastSeenAt: new Date(),
    connectionId: `conn-${id}`,
    ...over,
  };
}

async function setup(concurrency = 1) {
  const store = new MemoryStore();
  const updates = new AgentUpdates(store, new ReleaseChannel({ kind: "env", release: RELEASE }), {
    readySeconds: 60,
    concurrency,
  });
  const updater = new AutoUpdater({
    store,
    updates,
    replicaId: "r1",
    intervalMs: 1000,
    log: pino({ level: "silent" }),
  });
  return { store, updates, updater };
}

const running = async (store: MemoryStore) =>
  (
    await store.deployments.listDeployments({ states: [DeploymentState.DEPLOYMENT_STATE_QUEUED] }, 100, "")
  ).deployments.filter((d) => d.changeKind === ChangeKind.CHANGE_KIND_AGENT_UPDATE);

test("an update is an agent-update record with a queued UpdateAgentCommand of the same id", async (t) => {
  const { store, updates } = await setup();
  await store.agents.createAgent(agent("agt_a"));
  const d = await updates.start((await store.agents.getAgent("agt_a"))!, { image: "" }, "admin");
  t.like(d, {
    changeKind: ChangeKind.CHANGE_KIND_AGENT_UPDATE,
    image: RELEASE.image,
    agentVersion: RELEASE.version,
    namespace: "k8sdeploy",
    workload: "k8sdeploy-agent",
    state: DeploymentState.DEPLOYMENT_STATE_QUEUED,
  });
  const [entry] = await store.queue.take("agt_a", "r1", { includePending: true, count: 10 });
  t.is(entry?.command.id, d.id);
  t.deepEqual(entry?.command.payload, {
    $case: "updateAgent",
    value: { image: RELEASE.image, version: RELEASE.version, readyTimeoutSeconds: 60 },
  });
  t.is((await store.agents.getAgent("agt_a"))?.lastUpdateId, d.id);
});

test("refused: not opted in, offline, a deploy running, concurrency reached", async (t) => {
  const { store, updates } = await setup(1);
  const refuse = async (a: AgentRecord, pattern: RegExp) => {
    const err = await t.throwsAsync(updates.start(a, { image: "" }, "admin"));
    t.true(err instanceof RpcError);
    t.regex(err?.message ?? "", pattern);
  };
  await refuse(agent("agt_x", { hello: { ...agent("x").hello!, autoUpdateEnabled: false } }), /has not opted in/);
  await refuse(agent("agt_x", { connectionId: undefined }), /offline/);

  const busy = agent("agt_busy");
  await store.agents.createAgent(busy);
  const dep = newDeployment(
    "dep_busy",
    busy.id,
    "key_1",
    {
      namespace: "shop",
      kind: 1,
      workload: "web",
      containers: [],
      image: "ghcr.io/acme/web:2",
      timeoutSeconds: 60,
      rollbackOnFailure: false,
      idempotencyKey: "",
      origin: { repository: "", sha: "", ref: "", actor: "", runUrl: "", workflow: "" },
      queueTimeoutSeconds: 0,
    },
    new Date(),
    new Date(Date.now() + 3_600_000),
  );
  await store.deployments.createDeployment(dep.deployment, dep.event);
  await refuse(busy, /never updated during a deploy/);

  await store.agents.createAgent(agent("agt_1"));
  await store.agents.createAgent(agent("agt_2"));
  await updates.start((await store.agents.getAgent("agt_1"))!, { image: "" }, "admin");
  await refuse(
    (await store.agents.getAgent("agt_2"))!,
    /1 agent update\(s\) are running already \(K8SDEPLOY_AGENT_UPDATE_CONCURRENCY=1\)/,
  );
  await refuse((await store.agents.getAgent("agt_1"))!, /already being updated/);
});

test("the automatic rollout: behind and opted-in agents only, at most `concurrency` at once, once per release", async (t) => {
  const { store, updater } = await setup(2);
  for (const id of ["agt_1", "agt_2", "agt_3"]) await store.agents.createAgent(agent(id));
  await store.agents.createAgent(agent("agt_current", { hello: { ...agent("x").hello!, version: "0.3.0" } }));
  await store.agents.createAgent(agent("agt_optout", { hello: { ...agent("x").hello!, autoUpdateEnabled: false } }));
  await updater.tick();
  const first = await running(store);
  t.is(first.length, 2, "bounded by K8SDEPLOY_AGENT_UPDATE_CONCURRENCY");
  t.true(first.every((d) => ["agt_1", "agt_2", "agt_3"].includes(d.agentId)));
  await updater.tick();
  t.is((await running(store)).length, 2, "still two while they run");

  // Both finish (rolled back, as if their new pods never got Ready): the third goes next, the
  // first two are not retried for this release.
  for (const d of first) {
    await store.deployments.appendEvent(d.id, (cur) => ({
      deployment: { ...cur, state: DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK },
      event: {
        time: new Date(),
        state: DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK,
        message: "rolled back",
        replicas: undefined,
        failure: undefined,
      },
    }));
  }
  await updater.tick();
  const second = await running(store);
  t.is(second.length, 1);
  t.false(first.some((d) => d.agentId === second[0]?.agentId));
  await updater.tick();
  t.is((await running(store)).length, 1);
});

test("only the replica holding the lease rolls out", async (t) => {
  const { store, updates } = await setup(5);
  await store.agents.createAgent(agent("agt_1"));
  t.true(await store.tryLease("agent-updates", "other-replica", 60_000));
  const updater = new AutoUpdater({
    store,
    updates,
    replicaId: "r1",
    intervalMs: 1000,
    log: pino({ level: "silent" }),
  });
  await updater.tick();
  t.is((await running(store)).length, 0);
});
