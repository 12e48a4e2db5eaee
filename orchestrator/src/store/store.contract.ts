// The contract every Store implementation must pass (memory-store.test.ts, redis-store.test.ts).
// Each test gets a fresh, empty store from `makeStore`. When the fixture offers `peer`, a second
// Store instance on the same backend (another "replica"), the bus and the concurrency tests use
// it; otherwise they use the same instance.
import { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import {
  Deployment,
  DeploymentEvent,
  DeploymentState,
  Origin,
  WorkloadKind,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test, { type ExecutionContext } from "ava";
import { InvalidPageTokenError } from "./pagination.js";
import {
  type AgentRecord,
  type BusMessage,
  DELIVERY_LOG_LIMIT,
  type DeliveryRecord,
  type FeedEntry,
  type KeyRecord,
  type Store,
  type TrustPolicyRecord,
  type WebhookRecord,
} from "./store.js";

export interface StoreFixture {
  store: Store;
  cleanup(): Promise<void>;
  /** Another Store instance sharing the backend (closed by cleanup). */
  peer?: () => Promise<Store>;
}

type Body = (t: ExecutionContext, fixture: StoreFixture) => Promise<void>;

/** Store settings some tests need (the default fixture uses the store's defaults). */
export interface ContractOptions {
  retentionSeconds?: number;
}

export function storeContract(name: string, makeStore: (options?: ContractOptions) => Promise<StoreFixture>): void {
  const it = (title: string, body: Body, options?: ContractOptions) =>
    test(`${name}: ${title}`, async (t) => {
      const fixture = await makeStore(options);
      try {
        await body(t, fixture);
      } finally {
        await fixture.cleanup();
      }
    });
  const peerOf = async (fixture: StoreFixture) => (fixture.peer ? await fixture.peer() : fixture.store);

  // ---------------------------------------------------------------- leases

  it("leases: one holder at a time across instances; renewable; lapses after the TTL", async (t, fixture) => {
    const { store } = fixture;
    const peer = await peerOf(fixture);
    const name = `lease-${Math.random().toString(36).slice(2)}`;
    // A TTL well above a round trip on a loaded 2-core machine with the whole suite running at once
    // (400 ms lapsed between two calls there).
    const ttl = 3000;
    t.true(await store.tryLease(name, "replica-a", ttl));
    t.false(await peer.tryLease(name, "replica-b", ttl));
    t.true(await store.tryLease(name, "replica-a", ttl), "the holder renews");
    await new Promise((r) => setTimeout(r, ttl + 200));
    t.true(await peer.tryLease(name, "replica-b", ttl), "taken over once lapsed");
    t.false(await store.tryLease(name, "replica-a", ttl));
  });

  // ---------------------------------------------------------------- agents and keys

  it("agents: create and get round-trip every field, Dates as Dates; unknown id is undefined", async (t, { store }) => {
    const agent = makeAgent("agt_one", 1_000, {
      revokedAt: new Date(5_000),
      hello: {
        version: "1.2.3",
        arch: "arm64",
        kubernetesVersion: "v1.31.0",
        autoUpdateEnabled: true,
        capabilities: [1, 2],
        instance: "pod-1",
      },
      lastSeenAt: new Date(4_000),
      connectedSince: new Date(3_000),
      replicaId: "replica-1",
      connectionId: "conn_1",
    });
    await store.agents.createAgent(agent);
    const got = await store.agents.getAgent("agt_one");
    t.deepEqual(strip(got), strip(agent));
    t.true(got?.createdAt instanceof Date);
    t.true(got?.revokedAt instanceof Date);
    t.true(got?.tokens[0]?.expiresAt instanceof Date);
    t.is(got?.tokens[1]?.expiresAt, undefined);
    // Returned objects are copies: changing them changes nothing stored.
    if (got) got.name = "changed";
    agent.name = "changed too";
    t.is((await store.agents.getAgent("agt_one"))?.name, "agent agt_one");
    t.is(await store.agents.getAgent("agt_missing"), undefined);
  });

  it("agents: listAgents is oldest first", async (t, { store }) => {
    t.deepEqual(await store.agents.listAgents(), []);
    await store.agents.createAgent(makeAgent("agt_b", 2_000));
    await store.agents.createAgent(makeAgent("agt_c", 3_000));
    await store.agents.createAgent(makeAgent("agt_a", 1_000));
    const list = await store.agents.listAgents();
    t.deepEqual(
      list.map((a) => a.id),
      ["agt_a", "agt_b", "agt_c"],
    );
    t.true(list.every((a) => a.createdAt instanceof Date));
  });

  it("agents: updateAgent patches, undefined clears a field, unknown id is undefined", async (t, { store }) => {
    await store.agents.createAgent(
      makeAgent("agt_p", 1_000, { replicaId: "r1", connectionId: "conn_1", connectedSince: new Date(2_000) }),
    );
    const hello = {
      version: "2.0.0",
      arch: "amd64",
      kubernetesVersion: "v1.30.1",
      autoUpdateEnabled: false,
      capabilities: [3],
      instance: "pod-2",
    };
    const patched = await store.agents.updateAgent("agt_p", { lastSeenAt: new Date(9_000), hello });
    t.deepEqual(patched?.hello, hello);
    t.deepEqual(patched?.lastSeenAt, new Date(9_000));
    t.is(patched?.replicaId, "r1");
    t.is(patched?.name, "agent agt_p");

    const cleared = await store.agents.updateAgent("agt_p", {
      replicaId: undefined,
      connectionId: undefined,
      connectedSince: undefined,
    });
    for (const record of [cleared, await store.agents.getAgent("agt_p")]) {
      t.is(record?.id, "agt_p");
      t.is(record?.replicaId, undefined);
      t.is(record?.connectionId, undefined);
      t.is(record?.connectedSince, undefined);
      t.deepEqual(record?.hello, hello);
      t.true(record?.lastSeenAt instanceof Date);
      t.deepEqual(record?.createdAt, new Date(1_000));
      t.is(record?.tokens.length, 2);
    }

    t.is(await store.agents.updateAgent("agt_missing", { name: "x" }), undefined);
    t.is(await store.agents.getAgent("agt_missing"), undefined);
  });

  it("agents: touchAgent and releaseAgent change only a record held by that connection", async (t, { store }) => {
    await store.agents.createAgent(
      makeAgent("agt_t", 1_000, { replicaId: "r1", connectionId: "conn_1", lastSeenAt: new Date(2_000) }),
    );
    t.true(await store.agents.touchAgent("agt_t", "conn_1", new Date(5_000)));
    t.false(await store.agents.touchAgent("agt_t", "conn_old", new Date(6_000)));
    t.false(await store.agents.touchAgent("agt_missing", "conn_1", new Date(6_000)));
    let record = await store.agents.getAgent("agt_t");
    t.deepEqual(record?.lastSeenAt, new Date(5_000));
    t.is(record?.connectionId, "conn_1");
    t.is(record?.tokens.length, 2);
    t.deepEqual(record?.createdAt, new Date(1_000));

    // A record without lastSeenAt yet is touched too.
    await store.agents.createAgent(makeAgent("agt_u", 1_000, { connectionId: "conn_2" }));
    t.true(await store.agents.touchAgent("agt_u", "conn_2", new Date(7_000)));
    t.deepEqual((await store.agents.getAgent("agt_u"))?.lastSeenAt, new Date(7_000));

    // A name that looks like the fields changes nothing: JSON escapes it.
    await store.agents.createAgent(
      makeAgent("agt_v", 1_000, {
        name: '"connectionId":"conn_x","lastSeenAt":{"$date":"1970-01-01T00:00:00.000Z"}',
        connectionId: "conn_3",
        lastSeenAt: new Date(3_000),
      }),
    );
    t.false(await store.agents.touchAgent("agt_v", "conn_x", new Date(8_000)));
    t.true(await store.agents.touchAgent("agt_v", "conn_3", new Date(9_000)));
    const v = await store.agents.getAgent("agt_v");
    t.deepEqual(v?.lastSeenAt, new Date(9_000));
    t.is(v?.name, '"connectionId":"conn_x","lastSeenAt":{"$date":"1970-01-01T00:00:00.000Z"}');

    t.false(await store.agents.releaseAgent("agt_t", "conn_old", new Date(10_000)));
    t.is((await store.agents.getAgent("agt_t"))?.connectionId, "conn_1");
    t.true(await store.agents.releaseAgent("agt_t", "conn_1", new Date(11_000)));
    record = await store.agents.getAgent("agt_t");
    t.is(record?.connectionId, undefined);
    t.is(record?.replicaId, undefined);
    t.deepEqual(record?.lastSeenAt, new Date(11_000));
    t.false(await store.agents.releaseAgent("agt_t", "conn_1", new Date(12_000)));
  });

  it("keys: create, get, list oldest first, filter by agent, update and clear", async (t, { store }) => {
    await store.keys.createKey(makeKey("key_2", "agt_a", 2_000));
    await store.keys.createKey(makeKey("key_3", "agt_b", 3_000));
    await store.keys.createKey(makeKey("key_1", "agt_a", 1_000, { secret: secret("s1", new Date(7_000)) }));

    const key1 = await store.keys.getKey("key_1");
    t.deepEqual(strip(key1), strip(makeKey("key_1", "agt_a", 1_000, { secret: secret("s1", new Date(7_000)) })));
    t.true(key1?.secret.expiresAt instanceof Date);
    t.is(await store.keys.getKey("key_missing"), undefined);

    t.deepEqual(
      (await store.keys.listKeys()).map((k) => k.id),
      ["key_1", "key_2", "key_3"],
    );
    t.deepEqual(
      (await store.keys.listKeys("agt_a")).map((k) => k.id),
      ["key_1", "key_2"],
    );
    t.deepEqual(
      (await store.keys.listKeys("agt_b")).map((k) => k.id),
      ["key_3"],
    );
    t.deepEqual(await store.keys.listKeys("agt_none"), []);

    const used = await store.keys.updateKey("key_2", { lastUsedAt: new Date(8_000), revokedAt: new Date(9_000) });
    t.deepEqual(used?.lastUsedAt, new Date(8_000));
    t.deepEqual(used?.revokedAt, new Date(9_000));
    t.deepEqual(used?.namespaces, ["default", "web"]);
    const unrevoked = await store.keys.updateKey("key_2", { revokedAt: undefined });
    for (const record of [unrevoked, await store.keys.getKey("key_2")]) {
      t.is(record?.revokedAt, undefined);
      t.deepEqual(record?.lastUsedAt, new Date(8_000));
      t.is(record?.agentId, "agt_a");
    }
    t.is(await store.keys.updateKey("key_missing", { name: "x" }), undefined);
  });

  // ---------------------------------------------------------------- trust policies and one-time markers

  it("trust: create, get, list oldest first, filter by agent, update and clear", async (t, { store }) => {
    await store.trust.createPolicy(makePolicy("tp_2", "agt_a", 2_000));
    await store.trust.createPolicy(makePolicy("tp_3", "agt_b", 3_000, { ref: "refs/tags/v*" }));
    const first = makePolicy("tp_1", "agt_a", 1_000, { environment: "production", lastUsedAt: new Date(1_500) });
    await store.trust.createPolicy(first);

    const got = await store.trust.getPolicy("tp_1");
    t.deepEqual(strip(got), strip(first));
    t.true(got?.createdAt instanceof Date);
    t.true(got?.lastUsedAt instanceof Date);
    if (got) got.repository = "changed/here";
    t.is((await store.trust.getPolicy("tp_1"))?.repository, "acme/web");
    t.is(await store.trust.getPolicy("tp_missing"), undefined);

    t.deepEqual(
      (await store.trust.listPolicies()).map((p) => p.id),
      ["tp_1", "tp_2", "tp_3"],
    );
    t.deepEqual(
      (await store.trust.listPolicies("agt_a")).map((p) => p.id),
      ["tp_1", "tp_2"],
    );
    t.deepEqual(await store.trust.listPolicies("agt_none"), []);

    const deleted = await store.trust.updatePolicy("tp_2", { deletedAt: new Date(9_000) });
    t.deepEqual(deleted?.deletedAt, new Date(9_000));
    t.deepEqual(deleted?.namespaces, ["web"]);
    const restored = await store.trust.updatePolicy("tp_2", { deletedAt: undefined, lastUsedAt: new Date(9_500) });
    for (const record of [restored, await store.trust.getPolicy("tp_2")]) {
      t.is(record?.id, "tp_2");
      t.is(record?.deletedAt, undefined);
      t.deepEqual(record?.lastUsedAt, new Date(9_500));
      t.is(record?.agentId, "agt_a");
    }
    t.is(await store.trust.updatePolicy("tp_missing", { name: "x" }), undefined);
  });

  it("once: the first claim wins, later ones lose until the marker expires; ids are independent", async (t, fixture) => {
    const peer = await peerOf(fixture);
    t.true(await fixture.store.once.claimOnce("iss|jti-1", 60_000));
    t.false(await fixture.store.once.claimOnce("iss|jti-1", 60_000));
    t.false(await peer.once.claimOnce("iss|jti-1", 60_000), "another replica sees the marker");
    t.true(await peer.once.claimOnce("iss|jti-2", 60_000));
    // A short TTL: the marker is gone once it has passed.
    t.true(await fixture.store.once.claimOnce("iss|short", 300));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    t.true(await fixture.store.once.claimOnce("iss|short", 60_000), "the marker expired with its TTL");
    t.false(await peer.once.claimOnce("iss|short", 60_000));
    t.false(await peer.once.claimOnce("iss|jti-1", 60_000));
  });

  it("once: of 20 concurrent claims of one id on two instances exactly one wins", async (t, fixture) => {
    const peer = await peerOf(fixture);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? peer : fixture.store).once.claimOnce("iss|race", 60_000)),
    );
    t.is(results.filter(Boolean).length, 1);
  });

  // ---------------------------------------------------------------- deployments

  it("deployments: create stores the deployment and its first event with seq 1", async (t, { store }) => {
    const d = makeDeployment("dep_0001", {
      origin: Origin.fromPartial({ repository: "o/r", sha: "abc", actor: "me" }),
    });
    const result = await store.deployments.createDeployment(d, { ...makeEvent("queued"), seq: 7 });
    t.true(result.created);
    t.deepEqual(toJson(result.deployment), toJson(d));
    t.deepEqual(toJson(await store.deployments.getDeployment("dep_0001")), toJson(d));
    const events = await store.deployments.listEvents("dep_0001", 0);
    t.deepEqual(events.map(eventJson), [eventJson({ ...makeEvent("queued"), seq: 1 })]);
    t.true(events[0]?.time instanceof Date);
    t.is(await store.deployments.getDeployment("dep_missing"), undefined);
    t.deepEqual(await store.deployments.listEvents("dep_missing", 0), []);
  });

  it("deployments: an idempotency scope returns the first deployment and writes nothing else", async (t, { store }) => {
    const feed = await collectFeed(store, undefined);
    const first = await store.deployments.createDeployment(makeDeployment("dep_0001"), makeEvent("a"), "key_1/retry");
    t.true(first.created);
    const again = await store.deployments.createDeployment(
      makeDeployment("dep_0002", { image: "other:2" }),
      makeEvent("b"),
      "key_1/retry",
    );
    t.false(again.created);
    t.is(again.deployment.id, "dep_0001");
    t.is(again.deployment.image, "registry.example/app:1");
    t.is(await store.deployments.getDeployment("dep_0002"), undefined);
    t.deepEqual(await store.deployments.listEvents("dep_0002", 0), []);
    t.is((await store.deployments.listEvents("dep_0001", 0)).length, 1);

    t.true(
      (await store.deployments.createDeployment(makeDeployment("dep_0003"), makeEvent("c"), "key_1/other")).created,
    );
    t.true((await store.deployments.createDeployment(makeDeployment("dep_0004"), makeEvent("d"))).created);
    t.true((await store.deployments.createDeployment(makeDeployment("dep_0005"), makeEvent("e"))).created);

    await waitFor(() => feed.entries.some((e) => e.deployment.id === "dep_0005"));
    t.deepEqual(
      feed.entries.map((e) => e.deployment.id),
      ["dep_0001", "dep_0003", "dep_0004", "dep_0005"],
    );
    const page = await store.deployments.listDeployments({}, 10, "");
    t.deepEqual(
      page.deployments.map((d) => d.id),
      ["dep_0005", "dep_0004", "dep_0003", "dep_0001"],
    );
    feed.close();
  });

  it("deployments: appendEvent assigns consecutive seqs and applies the update", async (t, { store }) => {
    await store.deployments.createDeployment(makeDeployment("dep_0001"), makeEvent("queued"));
    const states = [
      DeploymentState.DEPLOYMENT_STATE_DELIVERED,
      DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
      DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
    ];
    for (const [i, state] of states.entries()) {
      let seen: Deployment | undefined;
      const result = await store.deployments.appendEvent("dep_0001", (current) => {
        seen = current;
        return {
          deployment: { ...current, state, message: `step ${i}`, updatedAt: new Date(10_000 + i) },
          event: { time: new Date(10_000 + i), state, message: `step ${i}`, replicas: undefined, failure: undefined },
        };
      });
      t.is(result?.event.seq, i + 2);
      t.is(result?.event.state, state);
      t.is(result?.deployment.state, state);
      t.is(seen?.state, i === 0 ? DeploymentState.DEPLOYMENT_STATE_QUEUED : states[i - 1]);
    }
    const stored = await store.deployments.getDeployment("dep_0001");
    t.is(stored?.state, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
    t.is(stored?.message, "step 2");
    t.deepEqual(stored?.updatedAt, new Date(10_002));
    t.deepEqual(
      (await store.deployments.listEvents("dep_0001", 0)).map((e) => e.seq),
      [1, 2, 3, 4],
    );
    t.deepEqual(
      (await store.deployments.listEvents("dep_0001", 2)).map((e) => [e.seq, e.message]),
      [
        [3, "step 1"],
        [4, "step 2"],
      ],
    );
    t.deepEqual(await store.deployments.listEvents("dep_0001", 4), []);

    let called = false;
    const missing = await store.deployments.appendEvent("dep_missing", (current) => {
      called = true;
      return { deployment: current, event: makeEvent("x") };
    });
    t.is(missing, undefined);
    t.false(called);
  });

  it("deployments: an update returning undefined drops the event", async (t, { store }) => {
    await store.deployments.createDeployment(makeDeployment("dep_0001"), makeEvent("queued"));
    const feed = await collectFeed(store, undefined);
    t.is(await store.deployments.appendEvent("dep_0001", () => undefined), undefined);
    t.is((await store.deployments.listEvents("dep_0001", 0)).length, 1);
    t.deepEqual(toJson(await store.deployments.getDeployment("dep_0001")), toJson(makeDeployment("dep_0001")));
    // A later event gets seq 2 and is the only one on the feed.
    const next = await store.deployments.appendEvent("dep_0001", (current) => ({
      deployment: current,
      event: makeEvent("kept"),
    }));
    t.is(next?.event.seq, 2);
    await waitFor(() => feed.entries.length >= 1);
    t.deepEqual(
      feed.entries.map((e) => [e.deployment.id, e.event.seq, e.event.message]),
      [["dep_0001", 2, "kept"]],
    );
    feed.close();
  });

  it("deployments: 20 concurrent appendEvent calls get seqs 2..21 without gaps or lost updates", async (t, fixture) => {
    const { store } = fixture;
    const other = await peerOf(fixture);
    await store.deployments.createDeployment(makeDeployment("dep_0001", { message: "start" }), makeEvent("queued"));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        (n % 2 === 0 ? store : other).deployments.appendEvent("dep_0001", (current) => ({
          deployment: { ...current, message: `${current.message}|${n}` },
          event: makeEvent(`e${n}`),
        })),
      ),
    );
    t.deepEqual(
      results.map((r) => r?.event.seq).sort((a = 0, b = 0) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 2),
    );
    const events = await store.deployments.listEvents("dep_0001", 0);
    t.deepEqual(
      events.map((e) => e.seq),
      Array.from({ length: 21 }, (_, i) => i + 1),
    );
    // Every update saw the previous one: the record lists all 20 in the order of the events.
    const stored = await store.deployments.getDeployment("dep_0001");
    const applied = stored?.message.split("|") ?? [];
    t.is(applied.shift(), "start");
    t.deepEqual(
      applied.map((n) => `e${n}`),
      events.slice(1).map((e) => e.message),
    );
    t.is(new Set(applied).size, 20);
    // Each caller got the record as of its own event.
    for (const r of results) t.is(r?.deployment.message.split("|").length, r?.event.seq);
  });

  it("deployments: listDeployments is newest first, filters, and pages with tokens", async (t, { store }) => {
    const ns = ["ns1", "ns2", "ns3"];
    const all: Deployment[] = [];
    for (let i = 1; i <= 9; i++) {
      const d = makeDeployment(`dep_${String(i).padStart(4, "0")}`, {
        agentId: i % 2 === 0 ? "agt_b" : "agt_a",
        namespace: ns[i % 3],
      });
      await store.deployments.createDeployment(d, makeEvent("queued"));
      all.push(d);
    }
    // Change some states after creation: filters must see the current state.
    for (const [id, state] of [
      ["dep_0003", DeploymentState.DEPLOYMENT_STATE_SUCCEEDED],
      ["dep_0006", DeploymentState.DEPLOYMENT_STATE_FAILED],
      ["dep_0007", DeploymentState.DEPLOYMENT_STATE_SUCCEEDED],
    ] as const) {
      await store.deployments.appendEvent(id, (current) => ({
        deployment: { ...current, state },
        event: { ...makeEvent("done"), state },
      }));
      const d = all.find((x) => x.id === id);
      if (d) d.state = state;
    }
    const newestFirst = [...all].reverse();

    const pages = async (filter: Parameters<Store["deployments"]["listDeployments"]>[0], size: number) => {
      const out: string[][] = [];
      let token = "";
      for (let guard = 0; guard < 20; guard++) {
        const page = await store.deployments.listDeployments(filter, size, token);
        t.true(page.deployments.length <= size);
        out.push(page.deployments.map((d) => d.id));
        if (page.nextPageToken === "") return out;
        t.true(page.deployments.length > 0);
        token = page.nextPageToken;
      }
      t.fail("pagination did not end");
      return out;
    };
    const ids = (list: Deployment[]) => list.map((d) => d.id);
    const chunk = (list: string[], size: number) =>
      Array.from({ length: Math.max(1, Math.ceil(list.length / size)) }, (_, i) =>
        list.slice(i * size, i * size + size),
      );

    t.deepEqual(await pages({}, 2), chunk(ids(newestFirst), 2));
    t.deepEqual(await pages({}, 9), [ids(newestFirst)]);
    t.deepEqual(await pages({}, 100), [ids(newestFirst)]);
    const agentA = newestFirst.filter((d) => d.agentId === "agt_a");
    t.deepEqual(await pages({ agentId: "agt_a" }, 2), chunk(ids(agentA), 2));
    const ns2 = newestFirst.filter((d) => d.namespace === "ns2");
    t.deepEqual(await pages({ namespace: "ns2" }, 1), chunk(ids(ns2), 1));
    const succeeded = newestFirst.filter((d) => d.state === DeploymentState.DEPLOYMENT_STATE_SUCCEEDED);
    t.deepEqual(ids(succeeded), ["dep_0007", "dep_0003"]);
    t.deepEqual(await pages({ states: [DeploymentState.DEPLOYMENT_STATE_SUCCEEDED] }, 1), [["dep_0007"], ["dep_0003"]]);
    const finished = [DeploymentState.DEPLOYMENT_STATE_SUCCEEDED, DeploymentState.DEPLOYMENT_STATE_FAILED];
    t.deepEqual(await pages({ agentId: "agt_b", states: finished }, 5), [["dep_0006"]]);
    const agentANs1 = newestFirst.filter((d) => d.agentId === "agt_a" && d.namespace === "ns1");
    t.deepEqual(ids(agentANs1), ["dep_0009", "dep_0003"]);
    t.deepEqual(await pages({ agentId: "agt_a", namespace: "ns1", states: [] }, 5), [ids(agentANs1)]);
    t.deepEqual(await pages({ agentId: "agt_nobody" }, 3), [[]]);
    t.deepEqual(
      (await store.deployments.listDeployments({}, 3, "")).deployments.map(toJson),
      newestFirst.slice(0, 3).map(toJson),
    );

    await t.throwsAsync(store.deployments.listDeployments({}, 2, "not a token!"), {
      instanceOf: InvalidPageTokenError,
    });
    await t.throwsAsync(store.deployments.listDeployments({}, 2, Buffer.from("key_1").toString("base64url")), {
      instanceOf: InvalidPageTokenError,
    });
  });

  // ---------------------------------------------------------------- feed

  it("feed: following from undefined delivers only entries appended afterwards", async (t, { store }) => {
    await store.deployments.createDeployment(makeDeployment("dep_0001"), makeEvent("old"));
    const feed = await collectFeed(store, undefined);
    await store.deployments.createDeployment(makeDeployment("dep_0002"), makeEvent("new"));
    await store.deployments.appendEvent("dep_0002", (current) => ({
      deployment: { ...current, state: DeploymentState.DEPLOYMENT_STATE_DELIVERED },
      event: { ...makeEvent("delivered"), state: DeploymentState.DEPLOYMENT_STATE_DELIVERED },
    }));
    await waitFor(() => feed.entries.length >= 2);
    t.deepEqual(
      feed.entries.map((e) => [e.deployment.id, e.event.seq, e.event.message]),
      [
        ["dep_0002", 1, "new"],
        ["dep_0002", 2, "delivered"],
      ],
    );
    // An entry carries the deployment as of its event.
    t.is(feed.entries[0]?.deployment.state, DeploymentState.DEPLOYMENT_STATE_QUEUED);
    t.is(feed.entries[1]?.deployment.state, DeploymentState.DEPLOYMENT_STATE_DELIVERED);
    t.is(new Set(feed.entries.map((e) => e.cursor)).size, 2);
    feed.close();
  });

  it("feed: resuming from a cursor replays what followed, then goes live: in order, no gaps, no duplicates", async (t, {
    store,
  }) => {
    const live = await collectFeed(store, undefined);
    await store.deployments.createDeployment(makeDeployment("dep_0001"), makeEvent("created"));
    await store.deployments.createDeployment(makeDeployment("dep_0002"), makeEvent("created"));
    for (let i = 0; i < 18; i++) await appendMessage(store, i % 2 === 0 ? "dep_0001" : "dep_0002", `early ${i}`);
    await waitFor(() => live.entries.length >= 20);
    const resumeAt = 4;
    const cursor = live.entries[resumeAt]?.cursor ?? "";

    // Writers keep appending to both deployments while the new follower catches up.
    const writers = ["dep_0001", "dep_0002"].map(async (id) => {
      for (let i = 0; i < 25; i++) await appendMessage(store, id, `late ${i}`);
    });
    await new Promise((resolve) => setImmediate(resolve));
    const resumed = await collectFeed(store, cursor);
    const fromStart = await collectFeed(store, live.entries[0]?.cursor);
    await Promise.all(writers);
    await appendMessage(store, "dep_0001", "marker");
    await waitFor(() => [live, resumed, fromStart].every((f) => f.entries.some((e) => e.event.message === "marker")));

    const key = (e: FeedEntry) => `${e.cursor} ${e.deployment.id}#${e.event.seq}`;
    t.is(live.entries.length, 20 + 50 + 1);
    t.deepEqual(resumed.entries.map(key), live.entries.slice(resumeAt + 1).map(key));
    t.deepEqual(fromStart.entries.map(key), live.entries.slice(1).map(key));
    // Per deployment, seqs arrive consecutively.
    for (const id of ["dep_0001", "dep_0002"]) {
      const seqs = live.entries.filter((e) => e.deployment.id === id).map((e) => e.event.seq);
      t.deepEqual(
        seqs,
        Array.from({ length: seqs.length }, (_, i) => i + 1),
      );
    }
    for (const f of [live, resumed, fromStart]) f.close();
  });

  it("feed: a closed subscription receives nothing more", async (t, { store }) => {
    const closed = await collectFeed(store, undefined);
    const open = await collectFeed(store, undefined);
    closed.close();
    await store.deployments.createDeployment(makeDeployment("dep_0001"), makeEvent("x"));
    await waitFor(() => open.entries.length >= 1);
    t.deepEqual(closed.entries, []);
    open.close();
  });

  it("feed and bus: a throwing listener affects neither the writer nor other listeners", async (t, { store }) => {
    await store.deployments.followFeed(undefined, () => {
      throw new Error("listener failure");
    });
    const feed = await collectFeed(store, undefined);
    await store.bus.subscribe(() => {
      throw new Error("listener failure");
    });
    const received: BusMessage[] = [];
    await store.bus.subscribe((m) => received.push(m));
    await t.notThrowsAsync(store.deployments.createDeployment(makeDeployment("dep_0001"), makeEvent("a")));
    await t.notThrowsAsync(appendMessage(store, "dep_0001", "b"));
    await t.notThrowsAsync(store.bus.publish({ type: "queued", agentId: "agt_a" }));
    await waitFor(() => feed.entries.length >= 2 && received.length >= 1);
    t.deepEqual(
      feed.entries.map((e) => e.event.seq),
      [1, 2],
    );
    t.deepEqual(received, [{ type: "queued", agentId: "agt_a" }]);
    feed.close();
  });

  // ---------------------------------------------------------------- queue

  it("queue: take hands out new commands once; pending ones go to another consumer with includePending; ack removes", async (t, {
    store,
  }) => {
    const [c1, c2, c3] = [makeCommand("cmd_1"), makeCommand("cmd_2"), makeCommand("cmd_3")];
    t.is(await store.queue.pendingCount("agt_a"), 0);
    t.deepEqual(await store.queue.take("agt_a", "conn_a", { includePending: true, count: 10 }), []);
    for (const c of [c1, c2, c3]) await store.queue.enqueue("agt_a", c);
    t.is(await store.queue.pendingCount("agt_a"), 3);

    const first = await store.queue.take("agt_a", "conn_a", { includePending: false, count: 10 });
    t.deepEqual(
      first.map(entryJson),
      [c1, c2, c3].map((c) => ({ command: Command.toJSON(c), deliveries: 0 })),
    );
    t.deepEqual(await store.queue.take("agt_a", "conn_a", { includePending: false, count: 10 }), []);
    t.deepEqual(await store.queue.take("agt_a", "conn_b", { includePending: false, count: 10 }), []);
    t.is(await store.queue.pendingCount("agt_a"), 3);

    await store.queue.ack("agt_a", "cmd_2");
    t.is(await store.queue.pendingCount("agt_a"), 2);
    await store.queue.ack("agt_a", "cmd_unknown");
    await store.queue.ack("agt_nobody", "cmd_1");
    await store.queue.ack("agt_a", "cmd_2");
    t.is(await store.queue.pendingCount("agt_a"), 2);

    const redelivered = await store.queue.take("agt_a", "conn_b", { includePending: true, count: 10 });
    t.deepEqual(
      redelivered.map(entryJson),
      [c1, c3].map((c) => ({ command: Command.toJSON(c), deliveries: 1 })),
    );
    const again = await store.queue.take("agt_a", "conn_c", { includePending: true, count: 10 });
    t.deepEqual(
      again.map((e) => [e.command.id, e.deliveries]),
      [
        ["cmd_1", 2],
        ["cmd_3", 2],
      ],
    );

    await store.queue.ack("agt_a", "cmd_1");
    await store.queue.ack("agt_a", "cmd_3");
    t.is(await store.queue.pendingCount("agt_a"), 0);
    t.deepEqual(await store.queue.take("agt_a", "conn_c", { includePending: true, count: 10 }), []);
  });

  it("queue: FIFO order, count limits, pending before new", async (t, { store }) => {
    for (let i = 1; i <= 5; i++) await store.queue.enqueue("agt_a", makeCommand(`cmd_${i}`));
    const ids = (entries: { command: Command; deliveries: number }[]) =>
      entries.map((e) => `${e.command.id}/${e.deliveries}`);
    t.deepEqual(ids(await store.queue.take("agt_a", "a", { includePending: false, count: 2 })), ["cmd_1/0", "cmd_2/0"]);
    t.deepEqual(ids(await store.queue.take("agt_a", "a", { includePending: false, count: 2 })), ["cmd_3/0", "cmd_4/0"]);
    t.deepEqual(ids(await store.queue.take("agt_a", "b", { includePending: true, count: 3 })), [
      "cmd_1/1",
      "cmd_2/1",
      "cmd_3/1",
    ]);
    t.deepEqual(ids(await store.queue.take("agt_a", "c", { includePending: true, count: 10 })), [
      "cmd_1/2",
      "cmd_2/2",
      "cmd_3/2",
      "cmd_4/1",
      "cmd_5/0",
    ]);
    t.is(await store.queue.pendingCount("agt_a"), 5);
  });

  it("queue: enqueuing a command id that is already queued stores it once", async (t, { store }) => {
    const original = makeCommand("cmd_1", "app:1");
    await store.queue.enqueue("agt_a", original);
    await store.queue.enqueue("agt_a", makeCommand("cmd_1", "app:2"));
    t.is(await store.queue.pendingCount("agt_a"), 1);
    const taken = await store.queue.take("agt_a", "a", { includePending: false, count: 10 });
    t.deepEqual(taken.map(entryJson), [{ command: Command.toJSON(original), deliveries: 0 }]);
    // Still unacknowledged (handed out): a new enqueue of the same id is ignored too.
    await store.queue.enqueue("agt_a", makeCommand("cmd_1", "app:3"));
    t.is(await store.queue.pendingCount("agt_a"), 1);
    t.deepEqual(await store.queue.take("agt_a", "a", { includePending: false, count: 10 }), []);
    const pending = await store.queue.take("agt_a", "b", { includePending: true, count: 10 });
    t.deepEqual(pending.map(entryJson), [{ command: Command.toJSON(original), deliveries: 1 }]);
  });

  it("queue: ack tells whether it removed a command of that agent", async (t, { store }) => {
    await store.queue.enqueue("agt_a", makeCommand("cmd_1"));
    t.false(await store.queue.ack("agt_b", "cmd_1"));
    t.true(await store.queue.ack("agt_a", "cmd_1"));
    t.false(await store.queue.ack("agt_a", "cmd_1"));
  });

  it("queue: withdraw removes only a command never handed out", async (t, { store }) => {
    await store.queue.enqueue("agt_a", makeCommand("cmd_1"));
    await store.queue.enqueue("agt_a", makeCommand("cmd_2"));
    const taken = await store.queue.take("agt_a", "r1", { includePending: false, count: 1 });
    t.deepEqual(
      taken.map((e) => e.command.id),
      ["cmd_1"],
    );
    t.is(await store.queue.withdraw("agt_a", "cmd_1"), "sent");
    t.is(await store.queue.withdraw("agt_a", "cmd_2"), "withdrawn");
    t.is(await store.queue.withdraw("agt_a", "cmd_2"), "unknown");
    t.is(await store.queue.withdraw("agt_b", "cmd_1"), "unknown");
    t.is(await store.queue.pendingCount("agt_a"), 1);
    const again = await store.queue.take("agt_a", "r2", { includePending: true, count: 10 });
    t.deepEqual(
      again.map((e) => e.command.id),
      ["cmd_1"],
    );
  });

  it("queue: list returns unacknowledged commands oldest first, handed out or not", async (t, { store }) => {
    for (const id of ["cmd_1", "cmd_2", "cmd_3"]) await store.queue.enqueue("agt_a", makeCommand(id));
    await store.queue.take("agt_a", "r1", { includePending: false, count: 1 });
    await store.queue.ack("agt_a", "cmd_2");
    t.deepEqual(
      (await store.queue.list("agt_a", 10)).map((c) => c.id),
      ["cmd_1", "cmd_3"],
    );
    t.deepEqual(
      (await store.queue.list("agt_a", 1)).map((c) => c.id),
      ["cmd_1"],
    );
  });

  it("queue: takeDue hands each due deadline to one caller; ack and withdraw drop the deadline", async (t, fixture) => {
    const { store } = fixture;
    const peer = await peerOf(fixture);
    const at = (ms: number) => ({ ...makeCommand(`cmd_${ms}`), expiresAt: new Date(ms) });
    await store.queue.enqueue("agt_a", at(1000));
    await store.queue.enqueue("agt_a", at(2000));
    await store.queue.enqueue("agt_b", at(3000));
    await store.queue.enqueue("agt_b", at(9000));
    await store.queue.enqueue("agt_b", makeCommand("cmd_none"));
    await store.queue.ack("agt_a", "cmd_2000");
    t.deepEqual(await store.queue.takeDue(new Date(5000), 1), [{ agentId: "agt_a", commandId: "cmd_1000" }]);
    t.deepEqual(await peer.queue.takeDue(new Date(5000), 10), [{ agentId: "agt_b", commandId: "cmd_3000" }]);
    t.deepEqual(await store.queue.takeDue(new Date(5000), 10), []);
    // The commands themselves stay queued.
    t.is(await store.queue.pendingCount("agt_b"), 3);
    t.is(await store.queue.withdraw("agt_b", "cmd_9000"), "withdrawn");
    t.deepEqual(await store.queue.takeDue(new Date(10_000), 10), []);
  });

  it("queue: agents' queues are independent", async (t, { store }) => {
    await store.queue.enqueue("agt_a", makeCommand("cmd_a1"));
    await store.queue.enqueue("agt_b", makeCommand("cmd_b1"));
    await store.queue.enqueue("agt_a", makeCommand("cmd_a2"));
    t.is(await store.queue.pendingCount("agt_a"), 2);
    t.is(await store.queue.pendingCount("agt_b"), 1);
    const a = await store.queue.take("agt_a", "x", { includePending: true, count: 10 });
    t.deepEqual(
      a.map((e) => e.command.id),
      ["cmd_a1", "cmd_a2"],
    );
    await store.queue.ack("agt_b", "cmd_a1");
    t.is(await store.queue.pendingCount("agt_a"), 2);
    const b = await store.queue.take("agt_b", "x", { includePending: false, count: 10 });
    t.deepEqual(
      b.map((e) => e.command.id),
      ["cmd_b1"],
    );
  });

  // ---------------------------------------------------------------- queue stats (metrics)

  it("queue stats: waiting, in flight and when the oldest waiting command was queued, per agent", async (t, {
    store,
  }) => {
    const before = Date.now();
    t.deepEqual(await store.queue.stats([]), []);
    t.deepEqual(await store.queue.stats(["agt_none"]), [
      { agentId: "agt_none", waiting: 0, inFlight: 0, oldestWaitingSince: undefined },
    ]);
    await store.queue.enqueue("agt_a", makeCommand("cmd_1"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await store.queue.enqueue("agt_a", makeCommand("cmd_2"));
    await store.queue.enqueue("agt_a", makeCommand("cmd_3"));
    await store.queue.enqueue("agt_b", makeCommand("cmd_4"));
    const [a, b] = await store.queue.stats(["agt_a", "agt_b"]);
    t.like(a, { agentId: "agt_a", waiting: 3, inFlight: 0 });
    t.like(b, { agentId: "agt_b", waiting: 1, inFlight: 0 });
    const firstQueued = a?.oldestWaitingSince?.getTime() ?? 0;
    // The Redis store reads the Redis server's clock: allow a little skew.
    t.true(firstQueued >= before - 1000 && firstQueued <= Date.now() + 1000, String(a?.oldestWaitingSince));

    // Handing out the oldest moves it to in flight; the next one is now the oldest waiting.
    await store.queue.take("agt_a", "replica-1", { includePending: false, count: 1 });
    const [afterTake] = await store.queue.stats(["agt_a"]);
    t.like(afterTake, { waiting: 2, inFlight: 1 });
    t.true((afterTake?.oldestWaitingSince?.getTime() ?? 0) >= firstQueued + 10);

    // Withdrawn and acknowledged commands leave the counts; nothing waiting: no oldest.
    t.is(await store.queue.withdraw("agt_a", "cmd_2"), "withdrawn");
    await store.queue.take("agt_a", "replica-1", { includePending: false, count: 5 });
    t.like((await store.queue.stats(["agt_a"]))[0], { waiting: 0, inFlight: 2, oldestWaitingSince: undefined });
    await store.queue.ack("agt_a", "cmd_1");
    await store.queue.ack("agt_a", "cmd_3");
    t.deepEqual(await store.queue.stats(["agt_a", "agt_b"]), [
      { agentId: "agt_a", waiting: 0, inFlight: 0, oldestWaitingSince: undefined },
      { agentId: "agt_b", waiting: 1, inFlight: 0, oldestWaitingSince: b?.oldestWaitingSince },
    ]);
  });

  // ---------------------------------------------------------------- webhooks and deliveries

  it("webhooks: create, get, list oldest first (by agent), delete", async (t, { store }) => {
    t.deepEqual(await store.webhooks.listWebhooks(), []);
    const a = makeWebhook("whk_a", "agt_a", 2_000);
    const b = makeWebhook("whk_b", "agt_b", 1_000, { format: "slack", sealedSecret: "", secretPrefix: "" });
    const c = makeWebhook("whk_c", "agt_a", 3_000, { states: [5, 6] });
    for (const w of [a, b, c]) await store.webhooks.createWebhook(w);
    const got = await store.webhooks.getWebhook("whk_a");
    t.deepEqual(got, a);
    t.true(got?.createdAt instanceof Date);
    t.is(await store.webhooks.getWebhook("whk_missing"), undefined);
    t.deepEqual(
      (await store.webhooks.listWebhooks()).map((w) => w.id),
      ["whk_b", "whk_a", "whk_c"],
    );
    t.deepEqual(
      (await store.webhooks.listWebhooks("agt_a")).map((w) => w.id),
      ["whk_a", "whk_c"],
    );
    t.deepEqual((await store.webhooks.listWebhooks("agt_a"))[1]?.states, [5, 6]);
    t.true(await store.webhooks.deleteWebhook("whk_a"));
    t.false(await store.webhooks.deleteWebhook("whk_a"));
    t.deepEqual(
      (await store.webhooks.listWebhooks("agt_a")).map((w) => w.id),
      ["whk_c"],
    );
  });

  it("deliveries: claimed when due with their body, held by the claim, rescheduled or finished by completing", async (t, fixture) => {
    const { store } = fixture;
    const other = await peerOf(fixture);
    const now = Date.now();
    await store.webhooks.enqueueDeliveries([
      { delivery: makeDelivery("whd_1", now - 10), body: '{"n":1}' },
      { delivery: makeDelivery("whd_2", now + 60_000), body: '{"n":2}' },
    ]);
    // The same id again is ignored.
    await store.webhooks.enqueueDeliveries([{ delivery: makeDelivery("whd_1", now - 10), body: "changed" }]);
    t.is(await store.webhooks.pendingDeliveries(), 2);

    const claimed = await store.webhooks.claimDue(new Date(now), 10, 30_000);
    t.deepEqual(
      claimed.map((c) => [c.delivery.id, c.body]),
      [["whd_1", '{"n":1}']],
    );
    const first = claimed[0];
    if (!first) throw new Error("nothing claimed");
    t.true(first.delivery.createdAt instanceof Date);
    // Held: no other claim (another replica) gets it while the lease runs.
    t.deepEqual(await other.webhooks.claimDue(new Date(now + 1000), 10, 30_000), []);

    // A failed attempt: pending again, due later.
    const retry: DeliveryRecord = {
      ...first.delivery,
      attempts: 1,
      lastAttemptAt: new Date(now),
      lastHttpStatus: 500,
      lastError: "HTTP 500",
      nextAttemptAt: new Date(now + 5_000),
    };
    t.true(await store.webhooks.completeDelivery(first.claim, retry));
    t.false(await store.webhooks.completeDelivery(first.claim, retry), "a claim completes once");
    t.deepEqual(await other.webhooks.claimDue(new Date(now + 4_000), 10, 30_000), []);
    const again = await other.webhooks.claimDue(new Date(now + 5_000), 10, 30_000);
    t.deepEqual(
      again.map((c) => [c.delivery.id, c.delivery.attempts, c.body]),
      [["whd_1", 1, '{"n":1}']],
    );
    const second = again[0];
    if (!second) throw new Error("nothing claimed");
    const delivered: DeliveryRecord = {
      ...second.delivery,
      state: "delivered",
      attempts: 2,
      deliveredAt: new Date(now + 5_100),
      nextAttemptAt: undefined,
      lastHttpStatus: 204,
      lastError: "",
    };
    t.true(await other.webhooks.completeDelivery(second.claim, delivered));
    t.deepEqual(strip(await store.webhooks.getDelivery("whd_1")), strip(delivered));
    t.is(await store.webhooks.pendingDeliveries(), 1);
    // Finished: never due again.
    t.deepEqual(
      (await store.webhooks.claimDue(new Date(now + 3_600_000), 10, 30_000)).map((c) => c.delivery.id),
      ["whd_2"],
    );
  });

  it("deliveries: a lease that ran out is claimed again, and the old claim can no longer complete", async (t, {
    store,
  }) => {
    const now = Date.now();
    await store.webhooks.enqueueDeliveries([{ delivery: makeDelivery("whd_l", now), body: "{}" }]);
    const [old] = await store.webhooks.claimDue(new Date(now), 1, 1_000);
    t.deepEqual(await store.webhooks.claimDue(new Date(now + 999), 1, 1_000), []);
    const [fresh] = await store.webhooks.claimDue(new Date(now + 1_000), 1, 1_000);
    if (!old || !fresh) throw new Error("not claimed");
    t.not(old.claim, fresh.claim);
    const done: DeliveryRecord = { ...fresh.delivery, state: "failed", attempts: 1, lastError: "gave up" };
    t.false(await store.webhooks.completeDelivery(old.claim, { ...done, lastError: "stale" }));
    t.true(await store.webhooks.completeDelivery(fresh.claim, done));
    t.is((await store.webhooks.getDelivery("whd_l"))?.lastError, "gave up");
  });

  it("deliveries: two replicas claiming at once never get the same delivery", async (t, fixture) => {
    const { store } = fixture;
    const other = await peerOf(fixture);
    const now = Date.now();
    const n = 60;
    await store.webhooks.enqueueDeliveries(
      Array.from({ length: n }, (_, i) => ({
        delivery: makeDelivery(`whd_${String(i).padStart(3, "0")}`, now),
        body: "{}",
      })),
    );
    const seen: string[] = [];
    const drain = async (s: Store) => {
      for (;;) {
        const batch = await s.webhooks.claimDue(new Date(now), 3, 60_000);
        if (batch.length === 0) return;
        seen.push(...batch.map((c) => c.delivery.id));
      }
    };
    await Promise.all([drain(store), drain(other), drain(store), drain(other)]);
    t.is(seen.length, n);
    t.is(new Set(seen).size, n);
  });

  it("deliveries: listed newest first with filters; the oldest finished ones beyond the limit are dropped", async (t, {
    store,
  }) => {
    const base = Date.now() - 10_000_000;
    await store.webhooks.enqueueDeliveries([
      { delivery: makeDelivery("whd_x1", base + 1, { webhookId: "whk_x", deploymentId: "dep_1" }), body: "{}" },
      { delivery: makeDelivery("whd_x2", base + 2, { webhookId: "whk_x", deploymentId: "dep_2" }), body: "{}" },
      { delivery: makeDelivery("whd_y1", base + 3, { webhookId: "whk_y", deploymentId: "dep_1" }), body: "{}" },
    ]);
    t.deepEqual(
      (await store.webhooks.listDeliveries({}, 10)).map((d) => d.id),
      ["whd_y1", "whd_x2", "whd_x1"],
    );
    t.deepEqual(
      (await store.webhooks.listDeliveries({ webhookId: "whk_x" }, 10)).map((d) => d.id),
      ["whd_x2", "whd_x1"],
    );
    t.deepEqual(
      (await store.webhooks.listDeliveries({ deploymentId: "dep_1" }, 1)).map((d) => d.id),
      ["whd_y1"],
    );
    // Finish the two oldest, then fill the log past its limit: they go, the pending one stays.
    for (const claimed of await store.webhooks.claimDue(new Date(base + 2), 2, 60_000)) {
      await store.webhooks.completeDelivery(claimed.claim, { ...claimed.delivery, state: "delivered", attempts: 1 });
    }
    await store.webhooks.enqueueDeliveries(
      Array.from({ length: DELIVERY_LOG_LIMIT - 2 }, (_, i) => ({
        delivery: makeDelivery(`whd_f${String(i).padStart(4, "0")}`, base + 10 + i),
        body: "{}",
      })),
    );
    t.is(await store.webhooks.getDelivery("whd_x1"), undefined);
    t.truthy(await store.webhooks.getDelivery("whd_x2"), "only as many as needed are dropped");
    t.truthy(await store.webhooks.getDelivery("whd_y1"), "pending deliveries are kept");
    t.is((await store.webhooks.listDeliveries({}, 2000)).length, DELIVERY_LOG_LIMIT);
  });

  // ---------------------------------------------------------------- bus, ping, close

  it("bus: messages published by one instance reach the subscribers of another", async (t, fixture) => {
    const { store } = fixture;
    const other = await peerOf(fixture);
    const received: BusMessage[] = [];
    const alsoReceived: BusMessage[] = [];
    const sub = await other.bus.subscribe((m) => received.push(m));
    const sub2 = await other.bus.subscribe((m) => alsoReceived.push(m));
    const messages: BusMessage[] = [
      { type: "queued", agentId: "agt_a" },
      { type: "agent-connected", agentId: "agt_a", connectionId: "conn_1" },
      { type: "agent-revoked", agentId: "agt_b" },
      { type: "reply", commandId: "cmd_1", payload: Buffer.from("hello").toString("base64") },
    ];
    for (const m of messages) await store.bus.publish(m);
    await waitFor(() => received.length >= 4 && alsoReceived.length >= 4);
    t.deepEqual(received, messages);
    t.deepEqual(alsoReceived, messages);

    sub.close();
    await store.bus.publish({ type: "queued", agentId: "agt_z" });
    await waitFor(() => alsoReceived.length >= 5);
    t.is(received.length, 4);
    sub2.close();
  });

  it("bus: the publisher's own subscribers get each message once", async (t, { store }) => {
    const received: BusMessage[] = [];
    const sub = await store.bus.subscribe((m) => received.push(m));
    await store.bus.publish({ type: "queued", agentId: "agt_self" });
    await waitFor(() => received.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    t.deepEqual(received, [{ type: "queued", agentId: "agt_self" }]);
    sub.close();
  });

  // ---------------------------------------------------------------- retention

  it(
    "retention: a finished deployment goes after the retention (record, events, idempotency); a running one stays",
    async (t, { store }) => {
      const finished = makeDeployment("dep_0001fin");
      const running = makeDeployment("dep_0002run");
      await store.deployments.createDeployment(finished, makeEvent("queued"), "scope-fin");
      await store.deployments.createDeployment(running, makeEvent("queued"), "scope-run");
      const end = await store.deployments.appendEvent("dep_0001fin", (d) => ({
        deployment: { ...d, state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED },
        event: {
          time: new Date(3_000),
          state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
          message: "done",
          replicas: undefined,
          failure: undefined,
        },
      }));
      t.is(end?.event.seq, 2);
      await store.deployments.appendEvent("dep_0002run", (d) => ({
        deployment: { ...d, state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS },
        event: {
          time: new Date(3_000),
          state: DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
          message: "rolling",
          replicas: undefined,
          failure: undefined,
        },
      }));
      t.truthy(await store.deployments.getDeployment("dep_0001fin"));
      await waitFor(async () => (await store.deployments.getDeployment("dep_0001fin")) === undefined, 10_000);
      t.deepEqual(await store.deployments.listEvents("dep_0001fin", 0), []);
      const page = await store.deployments.listDeployments({}, 10, "");
      t.deepEqual(
        page.deployments.map((d) => d.id),
        ["dep_0002run"],
      );
      t.is((await store.deployments.getDeployment("dep_0002run"))?.state, DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS);
      t.is((await store.deployments.listEvents("dep_0002run", 0)).length, 2);
      // The running one's scope still answers with it; the finished one's scope is free again.
      const again = await store.deployments.createDeployment(
        makeDeployment("dep_0003new"),
        makeEvent("queued"),
        "scope-run",
      );
      t.false(again.created);
      t.is(again.deployment.id, "dep_0002run");
      const fresh = await store.deployments.createDeployment(
        makeDeployment("dep_0004new"),
        makeEvent("queued"),
        "scope-fin",
      );
      t.true(fresh.created);
    },
    { retentionSeconds: 1 },
  );

  it("ping answers true while the store is up", async (t, { store }) => {
    t.true(await store.ping());
  });

  it("close releases everything and may be called twice", async (t, { store }) => {
    await store.deployments.followFeed(undefined, () => {});
    await store.bus.subscribe(() => {});
    await store.queue.enqueue("agt_a", makeCommand("cmd_1"));
    await store.queue.take("agt_a", "a", { includePending: true, count: 1 });
    const started = Date.now();
    await store.close();
    await store.close();
    t.true(Date.now() - started < 10_000);
  });
}

// ---------------------------------------------------------------- helpers

function secret(hash: string, expiresAt?: Date) {
  return { hash: hash.padEnd(64, "0"), prefix: `k8sd_${hash}`, expiresAt };
}

function makeAgent(id: string, createdAtMs: number, extra: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id,
    name: `agent ${id}`,
    createdAt: new Date(createdAtMs),
    tokens: [secret(`${id}-t2`, new Date(createdAtMs + 60_000)), secret(`${id}-t1`)],
    ...extra,
  };
}

function makeKey(id: string, agentId: string, createdAtMs: number, extra: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id,
    name: `key ${id}`,
    agentId,
    namespaces: ["default", "web"],
    workloads: [],
    secret: secret(id),
    createdAt: new Date(createdAtMs),
    ...extra,
  };
}

function makeWebhook(
  id: string,
  agentId: string,
  createdAtMs: number,
  extra: Partial<WebhookRecord> = {},
): WebhookRecord {
  return {
    id,
    agentId,
    name: `hook ${id}`,
    format: "generic",
    sealedUrl: "plain:https://example.test/hook",
    urlPreview: "https://example.test/…",
    sealedSecret: "plain:whsec_c2VjcmV0",
    secretPrefix: "whsec_c2Vj",
    states: [],
    createdAt: new Date(createdAtMs),
    ...extra,
  };
}

function makePolicy(
  id: string,
  agentId: string,
  createdAtMs: number,
  extra: Partial<TrustPolicyRecord> = {},
): TrustPolicyRecord {
  return {
    id,
    name: `policy ${id}`,
    agentId,
    issuer: "https://token.actions.githubusercontent.com",
    audience: "k8sdeploy",
    repository: "acme/web",
    repositoryId: "123",
    ref: "",
    environment: "",
    workflowRef: "",
    namespaces: ["web"],
    workloads: [],
    createdAt: new Date(createdAtMs),
    ...extra,
  };
}

function makeDelivery(id: string, dueMs: number, extra: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    id,
    webhookId: "whk_a",
    agentId: "agt_a",
    deploymentId: "dep_1",
    deploymentState: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
    format: "generic",
    state: "pending",
    attempts: 0,
    createdAt: new Date(dueMs),
    nextAttemptAt: new Date(dueMs),
    lastHttpStatus: 0,
    lastError: "",
    ...extra,
  };
}

function makeDeployment(id: string, extra: Partial<Deployment> = {}): Deployment {
  const base: Partial<Deployment> = {
    id,
    agentId: "agt_a",
    keyId: "key_1",
    namespace: "web",
    kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    workload: "frontend",
    containers: ["app"],
    image: "registry.example/app:1",
    timeoutSeconds: 300,
    rollbackOnFailure: true,
    state: DeploymentState.DEPLOYMENT_STATE_QUEUED,
    createdAt: new Date(1_000),
    updatedAt: new Date(1_000),
    message: "queued",
    ...extra,
  };
  return Deployment.fromPartial(base);
}

function makeEvent(message: string): DeploymentEvent {
  return DeploymentEvent.fromPartial({
    seq: 0,
    time: new Date(2_000),
    state: DeploymentState.DEPLOYMENT_STATE_QUEUED,
    message,
  });
}

function makeCommand(id: string, image = "registry.example/app:1"): Command {
  return Command.fromPartial({
    id,
    createdAt: new Date(3_000),
    payload: {
      $case: "deploy",
      value: {
        deploymentId: id,
        namespace: "web",
        kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
        workload: "frontend",
        containers: ["app"],
        image,
        timeoutSeconds: 300,
        rollbackOnFailure: true,
      },
    },
  });
}

async function appendMessage(store: Store, id: string, message: string) {
  return await store.deployments.appendEvent(id, (current) => ({
    deployment: { ...current, message },
    event: makeEvent(message),
  }));
}

const toJson = (d: Deployment | undefined) => (d ? Deployment.toJSON(d) : undefined);
const eventJson = (e: DeploymentEvent) => DeploymentEvent.toJSON(e);
const entryJson = (e: { command: Command; deliveries: number }) => ({
  command: Command.toJSON(e.command),
  deliveries: e.deliveries,
});

/** Drops properties whose value is undefined (a stored record may omit them or keep them). */
function strip<T>(value: T): T {
  if (Array.isArray(value)) return value.map(strip) as T;
  if (value instanceof Date || typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, strip(v)]),
  ) as T;
}

async function collectFeed(store: Store, cursor: string | undefined) {
  const entries: FeedEntry[] = [];
  const subscription = await store.deployments.followFeed(cursor, (entry) => entries.push(entry));
  return { entries, close: () => subscription.close() };
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
