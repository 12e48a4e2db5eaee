import { FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1Pod } from "@kubernetes/client-node";
import test from "ava";
import { classifyPod, describePodBlocker } from "./pod-failure.js";

function pod(status: V1Pod["status"], extra: Partial<V1Pod> = {}): V1Pod {
  return {
    metadata: { name: "web-7d4b9-x2x", namespace: "default" },
    spec: { containers: [], nodeName: "n1" },
    status,
    ...extra,
  };
}

for (const reason of ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]) {
  test(`${reason} → IMAGE_PULL naming pod, container, reason and kubelet message`, (t) => {
    const f = classifyPod(
      pod({
        phase: "Pending",
        containerStatuses: [
          { name: "sidecar", image: "envoy", imageID: "", ready: true, restartCount: 0, state: { running: {} } },
          {
            name: "web",
            image: "x",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { waiting: { reason, message: 'Back-off pulling image "x"' } },
          },
        ],
      }),
    );
    t.deepEqual(f, {
      reason: FailureReason.FAILURE_REASON_IMAGE_PULL,
      message: `pod "web-7d4b9-x2x" container "web": ${reason}: Back-off pulling image "x"`,
    });
  });
}

test("CrashLoopBackOff → CRASH_LOOP with the last termination", (t) => {
  const f = classifyPod(
    pod({
      phase: "Running",
      containerStatuses: [
        {
          name: "web",
          image: "crash",
          imageID: "",
          ready: false,
          restartCount: 4,
          state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s restarting failed container=web" } },
          lastState: { terminated: { exitCode: 1, reason: "Error", message: "boom\n" } },
        },
      ],
    }),
  );
  t.is(f?.reason, FailureReason.FAILURE_REASON_CRASH_LOOP);
  t.is(
    f?.message,
    'pod "web-7d4b9-x2x" container "web": CrashLoopBackOff: back-off 40s restarting failed container=web (restarted 4 times; last exit code 1, Error: boom)',
  );
});

test("init container failures are found and flagged", (t) => {
  const f = classifyPod(
    pod({
      phase: "Pending",
      initContainerStatuses: [
        {
          name: "migrate",
          image: "m",
          imageID: "",
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: "ImagePullBackOff" } },
        },
      ],
    }),
  );
  t.is(f?.message, 'pod "web-7d4b9-x2x" init container "migrate": ImagePullBackOff');
});

test("healthy, starting and terminating pods are no failure", (t) => {
  t.is(
    classifyPod(
      pod({
        phase: "Running",
        containerStatuses: [
          { name: "w", image: "", imageID: "", ready: true, restartCount: 0, state: { running: {} } },
        ],
      }),
    ),
    undefined,
  );
  t.is(
    classifyPod(
      pod({
        phase: "Pending",
        containerStatuses: [
          {
            name: "w",
            image: "",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: "ContainerCreating" } },
          },
        ],
      }),
    ),
    undefined,
  );
  t.is(classifyPod(pod({ phase: "Pending" })), undefined);
  const terminating = pod({
    containerStatuses: [
      {
        name: "w",
        image: "",
        imageID: "",
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: "ErrImagePull" } },
      },
    ],
  });
  terminating.metadata = { ...terminating.metadata, deletionTimestamp: new Date() };
  t.is(classifyPod(terminating), undefined);
});

test("blocker: unschedulable", (t) => {
  t.is(
    describePodBlocker(
      pod(
        {
          phase: "Pending",
          conditions: [
            {
              type: "PodScheduled",
              status: "False",
              reason: "Unschedulable",
              message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
            },
          ],
        },
        { spec: { containers: [] } },
      ),
    ),
    `pod "web-7d4b9-x2x" is Pending: Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.`,
  );
});

test("blocker: waiting reason, not ready, ready", (t) => {
  t.is(
    describePodBlocker(
      pod({
        phase: "Pending",
        containerStatuses: [
          {
            name: "w",
            image: "",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: "CreateContainerConfigError", message: 'secret "s" not found' } },
          },
        ],
      }),
    ),
    'pod "web-7d4b9-x2x" container "w": CreateContainerConfigError: secret "s" not found',
  );
  t.is(
    describePodBlocker(
      pod({
        phase: "Running",
        conditions: [{ type: "Ready", status: "False", message: "containers with unready status: [w]" }],
      }),
    ),
    'pod "web-7d4b9-x2x" is Running but not ready: containers with unready status: [w]',
  );
  t.is(describePodBlocker(pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }] })), undefined);
});
