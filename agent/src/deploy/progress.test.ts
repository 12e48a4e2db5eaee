import { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1DaemonSet, V1Deployment, V1StatefulSet } from "@kubernetes/client-node";
import test from "ava";
import { rolloutStatus } from "./progress.js";

const D = WorkloadKind.WORKLOAD_KIND_DEPLOYMENT;
const S = WorkloadKind.WORKLOAD_KIND_STATEFUL_SET;
const DS = WorkloadKind.WORKLOAD_KIND_DAEMON_SET;

function deployment(status: V1Deployment["status"], replicas = 3, generation = 2, paused = false): V1Deployment {
  return {
    metadata: { name: "web", generation },
    spec: { replicas, paused, selector: {}, template: {} },
    status,
  };
}

test("deployment: not observed yet → not done, even if old counts look complete", (t) => {
  const s = rolloutStatus(
    D,
    deployment({ observedGeneration: 1, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 }),
  );
  t.false(s.observed);
  t.false(s.done);
  t.is(s.message, "waiting for the deployment controller to observe generation 2");
  t.deepEqual(s.replicas, { desired: 3, updated: 0, ready: 3, available: 3 });
});

test("deployment: partially updated", (t) => {
  const s = rolloutStatus(
    D,
    deployment({ observedGeneration: 2, replicas: 4, updatedReplicas: 2, readyReplicas: 3, availableReplicas: 3 }),
  );
  t.deepEqual(s.replicas, { desired: 3, updated: 2, ready: 3, available: 3 });
  t.false(s.done);
  t.is(s.message, "2 of 3 replicas updated, 3 ready, 3 available");
});

test("deployment: all updated but old replicas left", (t) => {
  const s = rolloutStatus(
    D,
    deployment({ observedGeneration: 2, replicas: 4, updatedReplicas: 3, readyReplicas: 4, availableReplicas: 3 }),
  );
  t.false(s.done);
  t.regex(s.message, /^waiting for 1 old replica to terminate/);
});

test("deployment: updated but not yet available", (t) => {
  const s = rolloutStatus(
    D,
    deployment({ observedGeneration: 2, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 2 }),
  );
  t.false(s.done);
});

test("deployment: complete", (t) => {
  const s = rolloutStatus(
    D,
    deployment({ observedGeneration: 2, replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 }),
  );
  t.true(s.done);
  t.is(s.message, "3 of 3 replicas updated and available");
});

test("deployment: zero replicas is complete once observed", (t) => {
  t.true(rolloutStatus(D, deployment({ observedGeneration: 2 }, 0)).done);
});

test("deployment: default replicas is 1", (t) => {
  const d = deployment({ observedGeneration: 2 });
  delete d.spec?.replicas;
  t.is(rolloutStatus(D, d).replicas.desired, 1);
});

test("deployment: ProgressDeadlineExceeded only counts for the observed generation", (t) => {
  const conditions = [
    {
      type: "Progressing",
      status: "False",
      reason: "ProgressDeadlineExceeded",
      message: 'ReplicaSet "web-1" has timed out progressing.',
    },
    { type: "ReplicaFailure", status: "True", reason: "FailedCreate", message: "exceeded quota" },
  ];
  const s = rolloutStatus(D, deployment({ observedGeneration: 2, conditions }));
  t.is(s.progressDeadlineExceeded, 'ReplicaSet "web-1" has timed out progressing.');
  t.is(s.replicaFailure, "FailedCreate: exceeded quota");
  t.is(rolloutStatus(D, deployment({ observedGeneration: 1, conditions })).progressDeadlineExceeded, undefined);
});

test("deployment: paused is reported", (t) => {
  t.regex(rolloutStatus(D, deployment({ observedGeneration: 2 }, 3, 2, true)).message, /paused/);
});

function sts(
  status: Partial<NonNullable<V1StatefulSet["status"]>>,
  partition?: number,
  type = "RollingUpdate",
): V1StatefulSet {
  return {
    metadata: { name: "db", generation: 5 },
    spec: {
      replicas: 3,
      serviceName: "db",
      selector: {},
      template: {},
      updateStrategy: { type, rollingUpdate: partition === undefined ? undefined : { partition } },
    },
    status: { replicas: 3, ...status },
  };
}

test("statefulset: in progress and complete", (t) => {
  const mid = rolloutStatus(
    S,
    sts({
      observedGeneration: 5,
      updatedReplicas: 1,
      readyReplicas: 3,
      availableReplicas: 3,
      currentRevision: "a",
      updateRevision: "b",
    }),
  );
  t.false(mid.done);
  t.deepEqual(mid.replicas, { desired: 3, updated: 1, ready: 3, available: 3 });
  const done = rolloutStatus(
    S,
    sts({
      observedGeneration: 5,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      currentRevision: "b",
      updateRevision: "b",
    }),
  );
  t.true(done.done);
});

test("statefulset: not ready yet is not done", (t) => {
  t.false(
    rolloutStatus(S, sts({ observedGeneration: 5, updatedReplicas: 3, readyReplicas: 2, availableReplicas: 2 })).done,
  );
});

test("statefulset: stale generation is not done", (t) => {
  t.false(
    rolloutStatus(S, sts({ observedGeneration: 4, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3 })).done,
  );
});

test("statefulset: partition", (t) => {
  const s = rolloutStatus(
    S,
    sts({ observedGeneration: 5, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3 }, 2),
  );
  t.true(s.done);
  t.regex(s.message, /partitioned rollout complete/);
  t.false(rolloutStatus(S, sts({ observedGeneration: 5, updatedReplicas: 0, readyReplicas: 3 }, 2)).done);
});

test("statefulset: OnDelete completes once observed", (t) => {
  t.true(rolloutStatus(S, sts({ observedGeneration: 5 }, undefined, "OnDelete")).done);
});

test("statefulset: availableReplicas missing falls back to ready", (t) => {
  t.is(rolloutStatus(S, sts({ observedGeneration: 5, readyReplicas: 2 })).replicas.available, 2);
});

function ds(status: Partial<NonNullable<V1DaemonSet["status"]>>): V1DaemonSet {
  return {
    metadata: { name: "agent", generation: 3 },
    spec: { selector: {}, template: {} },
    status: { currentNumberScheduled: 2, numberMisscheduled: 0, desiredNumberScheduled: 2, numberReady: 0, ...status },
  };
}

test("daemonset: in progress and complete", (t) => {
  const mid = rolloutStatus(
    DS,
    ds({ observedGeneration: 3, updatedNumberScheduled: 1, numberReady: 2, numberAvailable: 1 }),
  );
  t.false(mid.done);
  t.deepEqual(mid.replicas, { desired: 2, updated: 1, ready: 2, available: 1 });
  t.true(
    rolloutStatus(DS, ds({ observedGeneration: 3, updatedNumberScheduled: 2, numberReady: 2, numberAvailable: 2 }))
      .done,
  );
  t.false(
    rolloutStatus(DS, ds({ observedGeneration: 2, updatedNumberScheduled: 2, numberReady: 2, numberAvailable: 2 }))
      .done,
  );
});
