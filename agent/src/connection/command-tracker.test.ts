import type { CommandProgress } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { CommandTracker, type FinalMessage, type Job, type Outgoing, type Sink } from "./command-tracker.js";

/** A sink that records what it was given; `live` false simulates a dead stream. */
class RecordingSink implements Sink {
  readonly sent: Outgoing[] = [];
  live = true;
  async send(message: Outgoing): Promise<boolean> {
    if (!this.live) return false;
    this.sent.push(message);
    return true;
  }
  results(): string[] {
    return this.sent.filter((m) => m.$case === "result" || m.$case === "describeReply").map((m) => m.value.commandId);
  }
  progress(): CommandProgress[] {
    return this.sent.flatMap((m) => (m.$case === "progress" ? [m.value] : []));
  }
}

/** A job held until released; counts its executions. */
function heldJob(runs: { count: number }) {
  let release!: (final: FinalMessage) => void;
  let emit!: (p: Omit<CommandProgress, "commandId">) => void;
  const job: Job = (onProgress) => {
    runs.count++;
    emit = onProgress;
    return new Promise((resolve) => {
      release = resolve;
    });
  };
  return {
    job,
    release: (f: FinalMessage) => release(f),
    progress: (p: Omit<CommandProgress, "commandId">) => emit(p),
  };
}

const succeeded = (message = "ok"): FinalMessage => ({
  $case: "result",
  value: {
    commandId: "",
    state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
    message,
    previousImages: [],
    appliedImages: [],
    resolvedDigest: "",
  },
});

const progress = (message: string, images = false): Omit<CommandProgress, "commandId"> => ({
  state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
  message,
  previousImages: images ? [{ container: "web", image: "a:1", init: false }] : [],
  appliedImages: images ? [{ container: "web", image: "a:2", init: false }] : [],
  resolvedDigest: "",
});

const tick = () => new Promise((r) => setImmediate(r));

test("a new command runs once; a duplicate while running re-sends the latest progress and does not run again", async (t) => {
  const tracker = new CommandTracker();
  const sink = new RecordingSink();
  tracker.attach(sink);
  const runs = { count: 0 };
  const h = heldJob(runs);
  t.is(tracker.submit("c1", h.job), "started");
  h.progress(progress("step 1", true));
  h.progress(progress("step 2"));
  t.deepEqual(tracker.runningIds(), ["c1"]);

  const again = heldJob(runs);
  t.is(tracker.submit("c1", again.job), "running");
  t.is(runs.count, 1);
  await tick();
  const p = sink.progress();
  t.deepEqual(
    p.map((x) => x.message),
    ["step 1", "step 2", "step 2"],
  );
  // The re-sent latest progress carries the images of the first event, which may have been missed.
  t.is(p[2]!.previousImages[0]!.image, "a:1");
  t.is(p[2]!.appliedImages[0]!.image, "a:2");
  t.is(p[2]!.commandId, "c1");

  h.release(succeeded());
  await tracker.whenSettled();
  t.deepEqual(sink.results(), ["c1"]);
  t.deepEqual(tracker.runningIds(), []);
});

test("a duplicate of a finished command re-sends the same result without running", async (t) => {
  const tracker = new CommandTracker();
  const sink = new RecordingSink();
  tracker.attach(sink);
  const runs = { count: 0 };
  const h = heldJob(runs);
  tracker.submit("c1", h.job);
  h.release(succeeded("first"));
  await tracker.whenSettled();
  t.is(tracker.submit("c1", heldJob(runs).job), "finished");
  await tick();
  t.is(runs.count, 1);
  const results = sink.sent.filter((m) => m.$case === "result");
  t.is(results.length, 2);
  t.deepEqual(results[0], results[1]);
  t.is(results[1]!.value.commandId, "c1");
});

test("results produced without a stream are queued and sent on attach; a dead stream does not count as delivery", async (t) => {
  const tracker = new CommandTracker();
  const dead = new RecordingSink();
  dead.live = false;
  tracker.attach(dead);
  const runs = { count: 0 };
  const a = heldJob(runs);
  const b = heldJob(runs);
  tracker.submit("a", a.job);
  tracker.submit("b", b.job);
  a.release(succeeded());
  await tick();
  t.deepEqual(tracker.undeliveredIds(), ["a"]);
  tracker.detach(dead);
  b.progress(progress("b is rolling out"));
  b.release(succeeded());
  await tick();
  t.deepEqual(tracker.undeliveredIds(), ["a", "b"]);

  let settled = false;
  void tracker.whenSettled().then(() => {
    settled = true;
  });
  await tick();
  t.false(settled);

  const live = new RecordingSink();
  tracker.attach(live);
  await tick();
  t.deepEqual(live.results(), ["a", "b"]);
  t.deepEqual(tracker.undeliveredIds(), []);
  t.true(settled);
});

test("attach re-sends the latest progress of running commands", async (t) => {
  const tracker = new CommandTracker();
  const h = heldJob({ count: 0 });
  tracker.submit("c", h.job);
  h.progress(progress("while disconnected", true));
  const sink = new RecordingSink();
  tracker.attach(sink);
  await tick();
  t.deepEqual(
    sink.progress().map((p) => p.message),
    ["while disconnected"],
  );
  t.deepEqual(sink.results(), []);
});

test("finished commands are bounded, least recently used first, delivered ones evicted before undelivered", async (t) => {
  const evicted: string[] = [];
  const tracker = new CommandTracker({ maxFinished: 3 }, { onEvictUndelivered: (id) => evicted.push(id) });
  const sink = new RecordingSink();
  tracker.attach(sink);
  const finish = async (id: string) => {
    const h = heldJob({ count: 0 });
    tracker.submit(id, h.job);
    h.release(succeeded(id));
    await tick();
  };
  await finish("a");
  await finish("b");
  await finish("c");
  tracker.submit("a", heldJob({ count: 0 }).job); // touch a: b is now the least recently used
  await tick();
  await finish("d");
  t.is(tracker.finishedCount, 3);
  t.is(tracker.state("b"), undefined);
  t.is(tracker.state("a"), "finished");

  // Undelivered results outlive delivered ones.
  sink.live = false;
  await finish("e"); // undelivered
  t.is(tracker.state("e"), "finished");
  t.is(tracker.state("c"), undefined); // oldest delivered went first
  await finish("f");
  await finish("g");
  t.deepEqual(tracker.undeliveredIds(), ["e", "f", "g"]);
  t.deepEqual(evicted, []);
  await finish("h"); // only undelivered left: the oldest goes, and it is reported
  t.deepEqual(evicted, ["e"]);
  t.deepEqual(tracker.undeliveredIds(), ["f", "g", "h"]);
  // An evicted id runs again if redelivered (documented trade-off of the bound).
  t.is(tracker.submit("b", heldJob({ count: 0 }).job), "started");
});

test("a job that throws becomes a FAILED result", async (t) => {
  const errors: string[] = [];
  const tracker = new CommandTracker({}, { onJobError: (id) => errors.push(id) });
  const sink = new RecordingSink();
  tracker.attach(sink);
  tracker.submit("x", async () => {
    throw new Error("boom");
  });
  await tracker.whenSettled();
  const r = sink.sent.find((m) => m.$case === "result");
  t.is(r?.value.commandId, "x");
  t.is(r?.$case === "result" ? r.value.state : undefined, DeploymentState.DEPLOYMENT_STATE_FAILED);
  t.deepEqual(errors, ["x"]);
});

test("progress after the result is dropped; whenIdle waits for running jobs", async (t) => {
  const tracker = new CommandTracker();
  const sink = new RecordingSink();
  tracker.attach(sink);
  const h = heldJob({ count: 0 });
  tracker.submit("c", h.job);
  let idle = false;
  void tracker.whenIdle().then(() => {
    idle = true;
  });
  await tick();
  t.false(idle);
  h.release(succeeded());
  await tick();
  t.true(idle);
  h.progress(progress("late"));
  await tick();
  t.deepEqual(sink.progress(), []);
});

test("with an acknowledging orchestrator a written result stays undelivered until result_ack; it is re-sent on the next stream", async (t) => {
  const tracker = new CommandTracker();
  const first = Object.assign(new RecordingSink(), { acksResults: true });
  tracker.attach(first);
  const runs = { count: 0 };
  const held = heldJob(runs);
  tracker.submit("dep_1", held.job);
  held.release(succeeded());
  await tick();
  await tick();
  t.deepEqual(first.results(), ["dep_1"]);
  t.deepEqual(tracker.undeliveredIds(), ["dep_1"]);
  let settled = false;
  void tracker.whenSettled().then(() => {
    settled = true;
  });
  await tick();
  t.false(settled);
  // The stream dies before the ack: the next one gets the result again.
  tracker.detach(first);
  const second = Object.assign(new RecordingSink(), { acksResults: true });
  tracker.attach(second);
  await tick();
  t.deepEqual(second.results(), ["dep_1"]);
  tracker.acknowledge("dep_1");
  await tick();
  t.deepEqual(tracker.undeliveredIds(), []);
  t.true(settled);
  const third = Object.assign(new RecordingSink(), { acksResults: true });
  tracker.attach(third);
  await tick();
  t.deepEqual(third.results(), []);
  t.is(runs.count, 1);
});
