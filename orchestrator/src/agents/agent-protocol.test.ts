// The orchestrator's side of the agent protocol, in process, on a real grpc-js server with the
// memory store. The agent here is a scripted stand-in that speaks the wire protocol by hand
// (the real agent is exercised in test/e2e-*.test.ts).
import * as grpc from "@grpc/grpc-js";
import { DeploymentState, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { adminCtx, connectStandIn, deploy, isCommand, setup, teardown } from "./testing/stand-in-agent.js";

test("a queued deploy reaches the agent; ack, progress and result drive the state to succeeded", async (t) => {
  const { app, server, address, token, key } = await setup();
  const { deployment } = await deploy(address, key);
  t.is(deployment?.state, DeploymentState.DEPLOYMENT_STATE_QUEUED);
  t.is(deployment?.timeoutSeconds, 300);
  const agent = connectStandIn(address, token);
  const welcome = await agent.next((m) => m.msg?.$case === "welcome");
  t.is(welcome.msg?.$case === "welcome" && welcome.msg.value.replicaId, "r1");
  const command = await agent.next(isCommand);
  const id = command.msg?.$case === "command" ? command.msg.value.id : "";
  t.is(id, deployment?.id ?? "");
  agent.write({ msg: { $case: "ack", value: { commandId: id } } });
  agent.write({
    msg: {
      $case: "progress",
      value: {
        commandId: id,
        state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
        message: "1 of 2 updated",
        replicas: { desired: 2, updated: 1, ready: 1, available: 1 },
        previousImages: [{ container: "web", image: "nginx:1.26", init: false }],
        appliedImages: [{ container: "web", image: "nginx:1.27", init: false }],
        resolvedDigest: "",
      },
    },
  });
  agent.write({
    msg: {
      $case: "result",
      value: {
        commandId: id,
        state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
        failure: undefined,
        message: "2 of 2 updated and available",
        replicas: { desired: 2, updated: 2, ready: 2, available: 2 },
        previousImages: [],
        appliedImages: [],
        resolvedDigest: "",
      },
    },
  });
  let final = await app.store.deployments.getDeployment(id);
  for (let i = 0; i < 50 && final?.state !== DeploymentState.DEPLOYMENT_STATE_SUCCEEDED; i++) {
    await new Promise((r) => setTimeout(r, 50));
    final = await app.store.deployments.getDeployment(id);
  }
  t.is(final?.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
  t.deepEqual(final?.previousImages, [{ container: "web", image: "nginx:1.26", init: false }]);
  const events = await app.store.deployments.listEvents(id, 0);
  t.deepEqual(
    events.map((e) => e.state),
    [
      DeploymentState.DEPLOYMENT_STATE_QUEUED,
      DeploymentState.DEPLOYMENT_STATE_DELIVERED,
      DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
    ],
  );
  t.is(await app.store.queue.pendingCount(final!.agentId), 0);
  agent.close();
  await teardown(app, server);
});

test("a command without a result is delivered again on the next connection; a late progress after the final state is ignored", async (t) => {
  const { app, server, address, token, key } = await setup();
  const { deployment } = await deploy(address, key);
  const first = connectStandIn(address, token);
  await first.next(isCommand);
  first.close();
  await new Promise((r) => setTimeout(r, 200));
  const second = connectStandIn(address, token);
  const again = await second.next(isCommand);
  t.is(again.msg?.$case === "command" && again.msg.value.id, deployment?.id ?? "");
  const id = deployment!.id;
  second.write({
    msg: {
      $case: "result",
      value: {
        commandId: id,
        state: DeploymentState.DEPLOYMENT_STATE_FAILED,
        failure: { reason: FailureReason.FAILURE_REASON_IMAGE_PULL, message: "ErrImagePull" },
        message: "",
        replicas: undefined,
        previousImages: [],
        appliedImages: [],
        resolvedDigest: "",
      },
    },
  });
  second.write({
    msg: {
      $case: "progress",
      value: {
        commandId: id,
        state: 3,
        message: "late",
        replicas: undefined,
        previousImages: [],
        appliedImages: [],
        resolvedDigest: "",
      },
    },
  });
  await new Promise((r) => setTimeout(r, 300));
  const d = await app.store.deployments.getDeployment(id);
  t.is(d?.state, DeploymentState.DEPLOYMENT_STATE_FAILED);
  t.is(d?.failure?.reason, FailureReason.FAILURE_REASON_IMAGE_PULL);
  t.is(d?.message, "ErrImagePull");
  second.close();
  await teardown(app, server);
});

test("a newer connection supersedes the older one, which is told not to reconnect", async (t) => {
  const { app, server, address, token } = await setup();
  const older = connectStandIn(address, token);
  await older.next((m) => m.msg?.$case === "welcome");
  const newer = connectStandIn(address, token);
  await newer.next((m) => m.msg?.$case === "welcome");
  const drain = await older.next((m) => m.msg?.$case === "drain");
  t.true(drain.msg?.$case === "drain" && drain.msg.value.reconnect === false);
  older.close();
  newer.close();
  await teardown(app, server);
});

test("describe goes through the agent; an offline agent gives UNAVAILABLE saying since when", async (t) => {
  const { app, server, address, token, agentId } = await setup();
  await t.throwsAsync(app.admin.listNamespaces({ agentId }, adminCtx), { message: /has never connected/ });
  const agent = connectStandIn(address, token);
  await agent.next((m) => m.msg?.$case === "welcome");
  const pending = app.admin.listNamespaces({ agentId }, adminCtx);
  const command = await agent.next(isCommand);
  const id = command.msg?.$case === "command" ? command.msg.value.id : "";
  t.is(command.msg?.$case === "command" && command.msg.value.payload?.$case, "describeNamespaces");
  agent.write({
    msg: {
      $case: "describeReply",
      value: {
        commandId: id,
        namespaces: [{ name: "default", phase: "Active", createdAt: new Date() }],
        workloads: [],
        error: undefined,
      },
    },
  });
  const { namespaces } = await pending;
  t.deepEqual(
    namespaces.map((n) => n.name),
    ["default"],
  );
  agent.close();
  await new Promise((r) => setTimeout(r, 300));
  await t.throwsAsync(app.admin.listNamespaces({ agentId }, adminCtx), { message: /is offline since/ });
  await teardown(app, server);
});

test("an invalid token is refused with UNAUTHENTICATED", async (t) => {
  const { app, server, address, token } = await setup();
  const agent = connectStandIn(address, `${token.slice(0, -3)}xyz`);
  const err = await t.throwsAsync(agent.next(() => true));
  t.is((err as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
  agent.close();
  await teardown(app, server);
});
