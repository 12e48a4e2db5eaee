import { Deployment, DeploymentEvent, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { MemoryStore } from "./memory-store.js";
import { storeContract } from "./store.contract.js";

storeContract("memory", async (options) => {
  const store = new MemoryStore({ retentionSeconds: options?.retentionSeconds });
  return { store, cleanup: () => store.close() };
});

const S = DeploymentState;
const event = (state: DeploymentState) => DeploymentEvent.fromPartial({ time: new Date(), state, message: "x" });

test("memory: keeps at most maxFinishedDeployments finished deployments, dropping those that ended first", async (t) => {
  const store = new MemoryStore({ maxFinishedDeployments: 100 });
  const id = (i: number) => `dep_${String(i).padStart(6, "0")}`;
  for (let i = 0; i < 300; i++) {
    await store.deployments.createDeployment(
      Deployment.fromPartial({ id: id(i), agentId: "agt_a", state: S.DEPLOYMENT_STATE_QUEUED }),
      event(S.DEPLOYMENT_STATE_QUEUED),
      `scope-${i}`,
    );
    // Every third one stays queued: never dropped, whatever the count.
    if (i % 3 === 0) continue;
    await store.deployments.appendEvent(id(i), (d) => ({
      deployment: { ...d, state: S.DEPLOYMENT_STATE_SUCCEEDED },
      event: event(S.DEPLOYMENT_STATE_SUCCEEDED),
    }));
  }
  const all = await store.deployments.listDeployments({}, 1000, "");
  const finished = all.deployments.filter((d) => d.state === S.DEPLOYMENT_STATE_SUCCEEDED);
  const queued = all.deployments.filter((d) => d.state === S.DEPLOYMENT_STATE_QUEUED);
  t.is(finished.length, 100);
  t.is(queued.length, 100);
  // The newest finished ones stay; the oldest are gone with their events and idempotency scopes.
  t.is(finished.at(-1)?.id, id(151));
  t.is(await store.deployments.getDeployment(id(1)), undefined);
  t.deepEqual(await store.deployments.listEvents(id(1), 0), []);
  t.true(
    (await store.deployments.createDeployment(Deployment.fromPartial({ id: "dep_x1" }), event(1), "scope-1")).created,
  );
  t.false(
    (await store.deployments.createDeployment(Deployment.fromPartial({ id: "dep_x2" }), event(1), "scope-0")).created,
  );
  t.truthy(await store.deployments.getDeployment(id(0)));
});

test("memory: 5 000 deploys through the store keep it at its bound", async (t) => {
  const store = new MemoryStore({ maxFinishedDeployments: 500 });
  for (let i = 0; i < 5000; i++) {
    const depId = `dep_${String(i).padStart(6, "0")}`;
    await store.deployments.createDeployment(
      Deployment.fromPartial({ id: depId, agentId: "agt_a", state: S.DEPLOYMENT_STATE_QUEUED, image: "x".repeat(200) }),
      event(S.DEPLOYMENT_STATE_QUEUED),
      `scope-${i}`,
    );
    await store.deployments.appendEvent(depId, (d) => ({
      deployment: { ...d, state: S.DEPLOYMENT_STATE_FAILED },
      event: event(S.DEPLOYMENT_STATE_FAILED),
    }));
  }
  t.is((await store.deployments.listDeployments({}, 5000, "")).deployments.length, 500);
});
