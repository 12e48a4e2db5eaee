// The defects found under load (issue 9), on real orchestrator processes with stand-in agents:
//  - overload: far more Deploys at once than the replica takes; those beyond its limit are refused
//    with UNAVAILABLE before anything is stored, and exactly the accepted ones reach the agent (a
//    call that reports failure never deploys);
//  - a hot deploy key: 64 concurrent Deploys with one key never fail (lastUsedAt is best effort);
//  - shutdown with many agents is quiet: no disconnect bookkeeping after the store closed.
// (The memory store's bound is in memory-store.test.ts and the store contract.)
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { Deployment } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test, { type ExecutionContext } from "ava";
import { createRedisStore } from "../orchestrator/src/store/redis-store.js";
import { adminClient, allDeployments } from "./support/clients.js";
import { type Calls, deployCallers, flood, type Outcome, retryWithIdempotencyKeys } from "./support/deploy-calls.js";
import { node24 } from "./support/e2e.js";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";
import { type RedisServer, startRedisServer } from "./support/redis-server.js";
import { connectStandInAgent, type StandInAgent, waitUntil } from "./support/stand-in-agents.js";
import { run } from "./support/tools.js";

const ADMIN = `admin-${randomBytes(16).toString("hex")}`;
const running: { stop(): Promise<unknown> }[] = [];

test.after.always(async () => {
  for (const r of running.reverse()) await r.stop().catch(() => {});
});

// On Node 24, as in the image: only Node 22+ lets the HTTP/2 stream-reset limit be raised (see
// orchestrator/src/server/http2-session-limits.ts), which a flood of honest cancellations needs.
async function orchestrator(env: Record<string, string> = {}): Promise<Orchestrator> {
  const o = await startOrchestrator({ env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN, ...env }, node: node24() });
  running.push({ stop: () => o.stop("SIGKILL") });
  return o;
}

async function redis(): Promise<RedisServer> {
  const r = await startRedisServer({ appendonly: false });
  running.push({ stop: () => r.stop("SIGKILL") });
  return r;
}

async function agentWithKey(o: Orchestrator) {
  const admin = adminClient(o.grpcAddress, ADMIN);
  const agent = await admin.createAgent("load");
  const key = await admin.createDeployKey(agent.id);
  admin.close();
  return { agent, key };
}

/**
 * What the callers were told against what is stored, for the deployments whose image starts with
 * `prefix` — a call that reports failure never deploys:
 *  - no call the server refused (its answer said so, see refusedByServer) is stored;
 *  - a call whose caller cannot tell (its own deadline fired; the answer may have been on its way, or
 *    already in its socket behind a late event loop) was stored only if the server started it before
 *    that deadline, which `k8sdeploy-deadline` lets it know; and a retry with its idempotency key
 *    returns that same deployment, so its caller learns the truth.
 * Returns how many of the unsure calls were stored.
 */
async function assertCallersToldTheTruth(
  t: ExecutionContext,
  o: Orchestrator,
  key: string,
  stored: Deployment[],
  calls: Calls,
  prefix: string,
): Promise<number> {
  const ok = new Set(calls.ok);
  const unsure = new Map(calls.unsure.map((c) => [c.request.image, c]));
  const mine = stored.filter((d) => d.image.startsWith(prefix));
  t.deepEqual(
    mine.filter((d) => !ok.has(d.id) && !unsure.has(d.image)).map((d) => d.image),
    [],
    "stored although the server refused the call",
  );
  const unsureStored = mine.filter((d) => unsure.has(d.image));
  t.deepEqual(
    unsureStored
      .filter((d) => (d.createdAt?.getTime() ?? Infinity) >= unsure.get(d.image)!.deadline)
      .map(
        (d) =>
          `${d.image} stored at ${d.createdAt?.toISOString()}, after its caller gave up (${unsure.get(d.image)!.told})`,
      ),
    [],
  );
  const [client] = deployCallers(o.grpcAddress, 1);
  try {
    const answers = await retryWithIdempotencyKeys(
      client!,
      key,
      unsureStored.map((d) => unsure.get(d.image)!),
    );
    const idOf = new Map(unsureStored.map((d) => [d.image, d.id]));
    t.deepEqual(
      answers.filter((a) => a.created || a.id !== idOf.get(a.image)).map((a) => a.image),
      [],
      "a retry with the idempotency key returns the deployment the first call created",
    );
  } finally {
    client!.close();
  }
  return unsureStored.length;
}

/** Floods from `children` processes of their own (test/support/deploy-flood.ts); the outcomes added up. */
async function floodFromChildren(
  address: string,
  key: string,
  children: number,
  callsEach: number,
  perSecondEach: number,
  deadlineMs: number,
  label: string,
  extra: { channels?: number; shortDeadlineMs?: number } = {},
): Promise<Outcome> {
  const script = fileURLToPath(new URL("./support/deploy-flood.ts", import.meta.url));
  const runs = await Promise.all(
    Array.from({ length: children }, (_, i) =>
      // On Node 24, as the action runs (Node 20's HTTP/2 client closes a connection that receives many
      // resets, failing its other calls on the client side).
      run(
        node24(),
        [
          "--import",
          "tsx",
          script,
          address,
          key,
          String(callsEach),
          String(perSecondEach),
          String(deadlineMs),
          `${label}${i}`,
          String(extra.channels ?? 4),
          extra.shortDeadlineMs === undefined ? "" : String(extra.shortDeadlineMs),
        ],
        { timeoutMs: 180_000 },
      ),
    ),
  );
  const total: Outcome = { ok: [], codes: {}, unsure: [] };
  const short: Calls = { ok: [], codes: {}, unsure: [] };
  const add = (to: Calls, from: Calls) => {
    to.ok.push(...from.ok);
    to.unsure.push(...from.unsure);
    for (const [k, v] of Object.entries(from.codes)) to.codes[k] = (to.codes[k] ?? 0) + v;
  };
  for (const r of runs) {
    if (r.code !== 0) throw new Error(`flood child failed: ${r.stderr}`);
    if (r.stderr.trim() !== "") console.error(`flood child: ${r.stderr.trim()}`);
    const out = JSON.parse(r.stdout) as Outcome;
    add(total, out);
    if (out.short) add(short, out.short);
  }
  return extra.shortDeadlineMs === undefined ? total : { ...total, short };
}

// Redis store: calls wait on Redis, so many are in progress at once and the in-flight limit refuses
// the rest (UNAVAILABLE). Memory store: every call finishes at once, so none pile up in progress;
// three times what it handles is offered, with deadlines long enough for the backlog (the callers'
// HTTP/2 connections queue calls beyond 100 per connection: a deadline that passes there is stale
// by the time the request reaches the server, which is why honest callers use deadlines of seconds
// and retry with their idempotency key). In both, no call that failed may deploy.
const overload = {
  redis: { children: 2, callsEach: 1000, perSecondEach: 1e9, deadlineMs: 60_000, codes: ["OK", "UNAVAILABLE"] },
  memory: {
    children: 2,
    callsEach: 3000,
    perSecondEach: 1500,
    deadlineMs: 10_000,
    // RESOURCE_EXHAUSTED: a stream beyond a connection's 100 refused by Node before any handler runs
    // (RST_STREAM ENHANCE_YOUR_CALM, while the busy server has not yet released finished streams).
    codes: ["DEADLINE_EXCEEDED", "OK", "RESOURCE_EXHAUSTED", "UNAVAILABLE"],
  },
};

for (const store of ["memory", "redis"] as const) {
  test.serial(
    `overload (${store} store): calls refused or given up on store nothing; exactly the accepted deploys reach the agent`,
    async (t) => {
      const plan = overload[store];
      const env: Record<string, string> = { K8SDEPLOY_MAX_CONCURRENT_CALLS: "8" };
      if (store === "redis") env.K8SDEPLOY_REDIS_URL = (await redis()).url;
      const o = await orchestrator(env);
      const { agent, key } = await agentWithKey(o);
      const standIn = connectStandInAgent(o.grpcAddress, agent);
      running.push({ stop: async () => standIn.close() });
      await waitUntil(() => standIn.welcomed, "the stand-in agent to connect");

      const outcome = await floodFromChildren(
        o.grpcAddress,
        key,
        plan.children,
        plan.callsEach,
        plan.perSecondEach,
        plan.deadlineMs,
        store,
      );
      const { ok, codes } = outcome;
      t.log(codes);
      for (const code of Object.keys(codes)) t.true(plan.codes.includes(code), JSON.stringify(codes));
      if (store === "redis") {
        t.true(ok.length < plan.children * plan.callsEach, JSON.stringify(codes));
        t.regex(o.logs(), /overloaded: refusing calls beyond the limit/);
      }
      // No connection was closed under the load (that failed every call on it with INTERNAL).
      t.notRegex(o.logs(), /does not answer pings/);

      // Every accepted deploy is stored and reaches the agent, and nothing else does: not one refused
      // call deploys.
      await waitUntil(() => standIn.received.size >= ok.length, `${ok.length} commands to reach the agent`, 60_000);
      await new Promise((r) => setTimeout(r, 1500));
      const stored = await allDeployments(o.grpcAddress, ADMIN);
      const storedIds = new Set(stored.map((d) => d.id));
      t.log(`received ${standIn.received.size}, accepted ${ok.length}, stored ${stored.length}`);
      t.deepEqual(
        ok.filter((id) => !storedIds.has(id)),
        [],
      );
      t.deepEqual([...standIn.received].sort(), [...storedIds].sort());
      const unsure = await assertCallersToldTheTruth(t, o, key, stored, outcome, `registry.example/${store}0:`);
      t.log(`${outcome.unsure.length} calls whose callers could not tell, ${unsure} of them carried out`);
    },
  );
}

// Overload (three times what the replica handles, over four connections) with callers that give up:
// on each connection one call in ten waits for its answer (2 min) and the others have a 1 s
// deadline (many pass while the call is queued on the client); the client resets a stream when its
// deadline passes and sends queued calls in its place. Node refuses a new stream (RST_STREAM
// ENHANCE_YOUR_CALM, before any handler: RESOURCE_EXHAUSTED) while a connection holds its 100
// streams, counting those already ended or reset by the client but not yet released by the busy server;
// with Node's default guard it tore the connection down after 100 refusals in a row (GOAWAY
// INTERNAL_ERROR), and the waiting calls the server had carried out failed with INTERNAL ("Session
// closed with error code 2") and deployed all the same. Now the server keeps the connection, so each
// waiting call gets its own answer — OK, or refused before any side effect — and exactly the waiting
// calls answered OK are stored and reach the agent. The short-deadline calls are held to the real
// deadline their callers send in `k8sdeploy-deadline` (grpc-timeout is stale once the client has
// queued a call, see above): none is started after its caller gave up, and none the server refused
// deploys. A caller whose own deadline fired cannot tell: the answer may be on its way, or already in
// its socket behind a late event loop (on a loaded CI machine these 1 s timers fired 2.7 s late, after
// answers sent in time). Such a call may have been carried out, as gRPC defines DEADLINE_EXCEEDED;
// its caller learns which with its idempotency key, as the action does.
test.serial(
  "overload with callers giving up (memory store): no connection is torn down, every call that waited gets its own answer, no refused call deploys, and none starts after its caller gave up",
  async (t) => {
    const o = await orchestrator({ K8SDEPLOY_MAX_CONCURRENT_CALLS: "8" });
    const { agent, key } = await agentWithKey(o);
    const standIn = connectStandInAgent(o.grpcAddress, agent);
    running.push({ stop: async () => standIn.close() });
    await waitUntil(() => standIn.welcomed, "the stand-in agent to connect");

    const outcome = await floodFromChildren(o.grpcAddress, key, 1, 15_000, 5000, 120_000, "wait", {
      channels: 4,
      shortDeadlineMs: 1000,
    });
    const { ok, codes, short } = outcome;
    t.log({ waiting: codes, short: short?.codes });
    for (const code of Object.keys(codes)) {
      t.true(["OK", "RESOURCE_EXHAUSTED", "UNAVAILABLE"].includes(code), JSON.stringify(codes));
    }
    t.true(ok.length > 0);

    await waitUntil(() => standIn.received.size >= ok.length, `${ok.length} commands to reach the agent`, 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    // Every accepted call reached the agent; no waiting call the server refused is stored. (The
    // memory store keeps the last 10,000 finished deployments, so the oldest may be gone.)
    t.deepEqual(
      ok.filter((id) => !standIn.received.has(id)),
      [],
    );
    const stored = await allDeployments(o.grpcAddress, ADMIN);
    t.true(stored.some((d) => d.image.startsWith("registry.example/wait0:")));
    await assertCallersToldTheTruth(t, o, key, stored, outcome, "registry.example/wait0:");
    // The calls that gave up: none the server refused is stored (the memory store keeps the newest
    // 10,000 finished ones), and those whose callers could not tell were started in time.
    t.true(stored.some((d) => d.image.startsWith("registry.example/wait0-short:")));
    const unsure = await assertCallersToldTheTruth(t, o, key, stored, short!, "registry.example/wait0-short:");
    t.log(`${short!.unsure.length} short calls whose callers could not tell, ${unsure} of them carried out`);
    t.true(
      Object.keys(short?.codes ?? {}).some((c) => c !== "OK"),
      JSON.stringify(short?.codes),
    );
  },
);

test.serial("a hot deploy key: 64 concurrent Deploys with one key, five times over, never fail", async (t) => {
  const o = await orchestrator({ K8SDEPLOY_REDIS_URL: (await redis()).url });
  const { agent, key } = await agentWithKey(o);
  const standIn = connectStandInAgent(o.grpcAddress, agent);
  running.push({ stop: async () => standIn.close() });
  await waitUntil(() => standIn.welcomed, "the stand-in agent to connect");
  const clients = deployCallers(o.grpcAddress, 8);
  const ok: string[] = [];
  for (let round = 0; round < 5; round++) {
    const outcome = await flood(clients, key, 64, `hot${round}`);
    t.deepEqual(outcome.codes, { OK: 64 }, `round ${round}`);
    ok.push(...outcome.ok);
  }
  for (const c of clients) c.close();
  await waitUntil(() => standIn.received.size >= ok.length, "every command to reach the agent", 60_000);
  t.is(standIn.received.size, 320);
  t.notRegex(o.logs(), /"level":"(error|fatal)"/);
});

test.serial(
  "SIGTERM with 300 agents connected: exits 0 without warnings, every agent recorded as disconnected",
  async (t) => {
    const r = await redis();
    const o = await orchestrator({ K8SDEPLOY_REDIS_URL: r.url });
    const admin = adminClient(o.grpcAddress, ADMIN);
    const agents = await Promise.all(Array.from({ length: 300 }, (_, i) => admin.createAgent(`quiet-${i}`)));
    admin.close();
    const standIns: StandInAgent[] = agents.map((a) => connectStandInAgent(o.grpcAddress, a));
    running.push({
      stop: async () => {
        for (const s of standIns) s.close();
      },
    });
    await waitUntil(() => standIns.every((s) => s.welcomed), "300 agents to connect", 60_000);

    const status = await o.stop("SIGTERM", 30_000);
    t.is(status.code, 0, o.logs().slice(-3000));
    const noisy = o
      .logEntries()
      .filter(
        (e) =>
          /^(warn|error|fatal)$/.test(String(e.level)) || /ClientClosedError|client is closed/i.test(JSON.stringify(e)),
      );
    t.deepEqual(
      noisy.map((e) => e.msg),
      [],
      JSON.stringify(noisy.slice(0, 5)),
    );
    t.is(o.logEntries().filter((e) => e.msg === "agent disconnected").length, 300);

    const store = await createRedisStore(r.url, { replicaId: "check" });
    try {
      const records = await store.agents.listAgents();
      t.is(records.length, 300);
      t.deepEqual(
        records.filter((a) => a.connectionId !== undefined).map((a) => a.id),
        [],
      );
    } finally {
      await store.close();
    }
  },
);
