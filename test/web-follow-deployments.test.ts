// The dashboard's live-feed logic (web/src/state/follow-deployments.ts) against a scripted fake
// API: snapshot on a fresh start, resume by cursor after a drop, backoff, start over when the
// cursor is rejected, stop on unauthenticated.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ListDeploymentsResponseSchema,
  type WatchDeploymentsRequest,
  type WatchDeploymentsResponse,
  WatchDeploymentsResponseSchema,
} from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { DeploymentSchema, DeploymentState } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import test from "ava";
import { type FollowApi, type FollowStatus, followDeployments } from "../web/src/state/follow-deployments.js";

type Step = { entries: WatchDeploymentsResponse[]; after: "error" | "end" | "hang"; error?: ConnectError };

const entry = (id: string, state: DeploymentState, cursor: string) =>
  create(WatchDeploymentsResponseSchema, { deployment: create(DeploymentSchema, { id, state }), cursor });

function fakeApi(steps: Step[]) {
  const watchCalls: Partial<WatchDeploymentsRequest>[] = [];
  let listCalls = 0;
  const api: FollowApi = {
    watch(request, signal) {
      watchCalls.push({ ...request });
      const step = steps.shift() ?? { entries: [], after: "hang" as const };
      return (async function* () {
        for (const e of step.entries) {
          await new Promise((r) => setTimeout(r, 1));
          yield e;
        }
        if (step.after === "error") throw step.error ?? new ConnectError("connection reset", Code.Unavailable);
        if (step.after === "hang") {
          await new Promise<void>((_, reject) =>
            signal.addEventListener("abort", () => reject(new ConnectError("aborted", Code.Canceled)), { once: true }),
          );
        }
      })();
    },
    async list() {
      listCalls += 1;
      return create(ListDeploymentsResponseSchema, {
        deployments: [create(DeploymentSchema, { id: "dep_old", state: DeploymentState.SUCCEEDED })],
      });
    },
  };
  return { api, watchCalls, listCalls: () => listCalls };
}

function collect() {
  const changes: string[] = [];
  const statuses: FollowStatus["kind"][] = [];
  const snapshots: string[][] = [];
  return {
    changes,
    statuses,
    snapshots,
    callbacks: {
      snapshot: (r: { deployments: { id: string }[] }) => snapshots.push(r.deployments.map((d) => d.id)),
      snapshotError: () => {},
      change: (e: WatchDeploymentsResponse) => changes.push(`${e.deployment?.id}:${e.deployment?.state}:${e.cursor}`),
      status: (s: FollowStatus) => statuses.push(s.kind),
    },
  };
}

const until = async (check: () => boolean, ms = 2000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
};

test("a fresh start opens the stream, then takes a snapshot (twice, closing the race window)", async (t) => {
  const fake = fakeApi([{ entries: [entry("dep_1", DeploymentState.QUEUED, "5")], after: "hang" }]);
  const out = collect();
  const ctl = new AbortController();
  const done = followDeployments(
    fake.api,
    { agentId: "agt_1", namespace: "prod", states: [] },
    ctl.signal,
    out.callbacks,
    {
      recheckAfterMs: 30,
      liveAfterMs: 10,
    },
  );
  await until(() => out.snapshots.length === 2 && out.changes.length === 1);
  t.deepEqual(fake.watchCalls, [{ agentId: "agt_1", namespace: "prod", cursor: "" }]);
  t.deepEqual(out.snapshots, [["dep_old"], ["dep_old"]]);
  t.true(out.statuses.includes("live"));
  ctl.abort();
  await done;
  t.is(fake.watchCalls.length, 1);
});

test("after a drop it reconnects from the last cursor, without a new snapshot", async (t) => {
  const fake = fakeApi([
    {
      entries: [entry("dep_1", DeploymentState.QUEUED, "7"), entry("dep_1", DeploymentState.DELIVERED, "8")],
      after: "error",
    },
    { entries: [entry("dep_1", DeploymentState.SUCCEEDED, "9")], after: "end" },
    { entries: [], after: "hang" },
  ]);
  const out = collect();
  const delays: number[] = [];
  const ctl = new AbortController();
  const done = followDeployments(fake.api, { agentId: "", namespace: "", states: [] }, ctl.signal, out.callbacks, {
    backoff: (n) => {
      delays.push(n);
      return 5;
    },
    recheckAfterMs: 0,
  });
  await until(() => fake.watchCalls.length === 3);
  t.deepEqual(
    fake.watchCalls.map((c) => c.cursor),
    ["", "8", "9"],
  );
  t.deepEqual(out.changes, ["dep_1:1:7", "dep_1:2:8", "dep_1:4:9"]);
  t.is(fake.listCalls(), 1, "only the fresh start lists");
  t.true(out.statuses.includes("reconnecting"));
  // The first drop came right after messages (backoff attempt 1); the clean end is attempt 1 again.
  t.deepEqual(delays, [1, 1]);
  ctl.abort();
  await done;
});

test("consecutive failures back off further", async (t) => {
  const fail = (): Step => ({ entries: [], after: "error" });
  const fake = fakeApi([fail(), fail(), fail(), { entries: [], after: "hang" }]);
  const out = collect();
  const delays: number[] = [];
  const ctl = new AbortController();
  const done = followDeployments(fake.api, { agentId: "", namespace: "", states: [] }, ctl.signal, out.callbacks, {
    backoff: (n) => {
      delays.push(n);
      return 2;
    },
    recheckAfterMs: 0,
  });
  await until(() => fake.watchCalls.length === 4);
  t.deepEqual(delays, [1, 2, 3]);
  t.is(fake.listCalls(), 4, "no cursor yet: every attempt re-lists");
  ctl.abort();
  await done;
});

test("a rejected cursor starts over with a fresh snapshot", async (t) => {
  const fake = fakeApi([
    { entries: [entry("dep_1", DeploymentState.QUEUED, "3")], after: "error" },
    {
      entries: [],
      after: "error",
      error: new ConnectError("feed cursor is not one returned by the feed", Code.InvalidArgument),
    },
    { entries: [], after: "hang" },
  ]);
  const out = collect();
  const ctl = new AbortController();
  const done = followDeployments(fake.api, { agentId: "", namespace: "", states: [] }, ctl.signal, out.callbacks, {
    backoff: () => 2,
    recheckAfterMs: 0,
  });
  await until(() => fake.watchCalls.length === 3 && fake.listCalls() === 2);
  t.deepEqual(
    fake.watchCalls.map((c) => c.cursor),
    ["", "3", ""],
  );
  ctl.abort();
  await done;
});

test("unauthenticated stops following", async (t) => {
  const fake = fakeApi([{ entries: [], after: "error", error: new ConnectError("bad token", Code.Unauthenticated) }]);
  const out = collect();
  await followDeployments(
    fake.api,
    { agentId: "", namespace: "", states: [] },
    new AbortController().signal,
    out.callbacks,
    {
      backoff: () => 1,
      recheckAfterMs: 0,
    },
  );
  t.is(fake.watchCalls.length, 1);
  t.is(out.statuses.at(-1), "stopped");
});

test("a wake-up (browser back online) cuts the backoff short", async (t) => {
  const fake = fakeApi([
    { entries: [], after: "error" },
    { entries: [], after: "hang" },
  ]);
  const out = collect();
  const ctl = new AbortController();
  let wakeUp: () => void = () => {};
  const started = Date.now();
  const done = followDeployments(fake.api, { agentId: "", namespace: "", states: [] }, ctl.signal, out.callbacks, {
    backoff: () => 60_000,
    recheckAfterMs: 0,
    wake: () =>
      new Promise<void>((resolve) => {
        wakeUp = resolve;
      }),
  });
  await until(() => out.statuses.includes("reconnecting"));
  wakeUp();
  await until(() => fake.watchCalls.length === 2);
  t.true(Date.now() - started < 5000);
  ctl.abort();
  await done;
});
