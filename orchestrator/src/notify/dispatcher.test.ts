// Webhook deliveries end to end inside one process: the dispatcher against a real HTTP receiver on
// loopback, on the memory store and on a real redis-server (two replicas sharing it). Signatures
// are checked with the standardwebhooks package.
import { randomBytes } from "node:crypto";
import { WebhookDeliveryState, WebhookFormat } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { Deployment, DeploymentState, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import pino from "pino";
import { Webhook } from "standardwebhooks";
import { AdminAgents } from "../agents/admin-agents.js";
import { AgentUpdates } from "../agents/agent-updates.js";
import { ReleaseChannel } from "../agents/release-channel.js";
import { createMetrics } from "../metrics.js";
import { MemoryStore } from "../store/memory-store.js";
import { createRedisStore } from "../store/redis-store.js";
import type { Store } from "../store/store.js";
import { AdminWebhooks } from "./admin-webhooks.js";
import { WebhookDispatcher } from "./dispatcher.js";
import { Sealer } from "./sealed-secret.js";
import { startWebhookReceiver, type WebhookReceiver } from "./testing/webhook-receiver.js";

interface RedisServer {
  url: string;
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
}
// Outside this project's rootDir (see redis-store.test.ts): loaded at run time.
const supportModule: string = "../../../test/support/redis-server.js";
const { startRedisServer } = (await import(supportModule)) as {
  startRedisServer(options: { appendonly?: boolean }): Promise<RedisServer>;
};

let redis: RedisServer | undefined;
test.after.always(async () => {
  await redis?.stop("SIGKILL");
});

const log = pino({ level: "silent" });
/** The real AdminAgents (webhooks look agents up through it), without a release channel. */
const adminAgents = (store: Store) =>
  new AdminAgents(store, new AgentUpdates(store, new ReleaseChannel(undefined), { readySeconds: 180, concurrency: 1 }));
const key = Buffer.alloc(32, 3);

function replica(store: Store, options: { maxAttempts?: number } = {}) {
  const metrics = createMetrics({ defaultMetrics: false });
  const sealer = new Sealer(key);
  const dispatcher = new WebhookDispatcher({
    store,
    log,
    metrics,
    sealer,
    userAgent: "K8sDeploy-Webhook/test",
    options: {
      maxAttempts: options.maxAttempts ?? 4,
      backoffSeconds: 1,
      timeoutSeconds: 1,
      allowLoopback: true,
      githubServerUrl: "https://github.com",
      pollMs: 100,
    },
  });
  const admin = new AdminWebhooks(store, adminAgents(store), sealer, true);
  return { dispatcher, admin, metrics };
}

async function agentIn(store: Store): Promise<string> {
  const id = `agt_${randomBytes(4).toString("hex")}`;
  await store.agents.createAgent({ id, name: "homelab", createdAt: new Date(), tokens: [] });
  return id;
}

function finished(
  agentId: string,
  state = DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
  id = `dep_${randomBytes(6).toString("hex")}`,
) {
  return Deployment.fromPartial({
    id,
    agentId,
    namespace: "shop",
    kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    workload: "web",
    image: "ghcr.io/acme/web:2",
    state,
    message: "web runs ghcr.io/acme/web:2",
    createdAt: new Date(Date.now() - 30_000),
    updatedAt: new Date(),
  });
}

async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`not reached in time: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function withReceiver(fn: (receiver: WebhookReceiver) => Promise<void>): Promise<void> {
  const receiver = await startWebhookReceiver();
  try {
    await fn(receiver);
  } finally {
    await receiver.close();
  }
}

test("generic: signed, retried after 500s and a timeout with the same webhook-id, then delivered", async (t) => {
  const store = new MemoryStore();
  const { dispatcher, admin, metrics } = replica(store);
  await withReceiver(async (receiver) => {
    const agentId = await agentIn(store);
    const { webhook, secret } = await admin.createWebhook({
      agentId,
      url: `${receiver.url}?token=abc`,
      format: WebhookFormat.WEBHOOK_FORMAT_GENERIC,
      states: [],
      name: "ci",
    });
    t.regex(secret, /^whsec_/);
    t.is(webhook?.urlPreview, receiver.url.replace(/\/hook$/, "/…"));
    // 500, 503, then no answer at all (timeout after 1 s), then 204.
    receiver.respond((_, n) => [500, 503, "hang" as const][n] ?? 204);
    dispatcher.start();
    const deployment = finished(agentId);
    dispatcher.deploymentFinished(deployment);
    const requests = await receiver.waitFor(4, 30_000);
    await dispatcher.stop();

    const verifier = new Webhook(secret);
    const ids = new Set(requests.map((r) => r.headers["webhook-id"]));
    t.is(ids.size, 1, "every attempt carries the same webhook-id");
    for (const r of requests) {
      const payload = verifier.verify(r.body, r.headers as Record<string, string>) as {
        type: string;
        data: { deployment: { id: string; state: string } };
      };
      t.is(payload.type, "deployment.finished");
      t.is(payload.data.deployment.id, deployment.id);
      t.is(payload.data.deployment.state, "DEPLOYMENT_STATE_SUCCEEDED");
      t.is(r.headers["user-agent"], "K8sDeploy-Webhook/test");
      t.is(r.path, "/hook?token=abc");
    }
    // Backoff: about 1 s, then 3 s between attempts (±20 %), plus the 1 s timeout.
    const gaps = requests.slice(1).map((r, i) => r.at - (requests[i]?.at ?? 0));
    t.true((gaps[0] ?? 0) >= 750, `gaps ${gaps}`);
    t.true((gaps[1] ?? 0) >= 2300, `gaps ${gaps}`);

    const [delivery] = (await admin.listWebhookDeliveries({ webhookId: webhook?.id ?? "", deploymentId: "", limit: 0 }))
      .deliveries;
    t.like(delivery, {
      state: WebhookDeliveryState.WEBHOOK_DELIVERY_STATE_DELIVERED,
      attempts: 4,
      lastHttpStatus: 204,
      deploymentId: deployment.id,
      lastError: "",
    });
    const text = await metrics.registry.metrics();
    t.regex(text, /k8sdeploy_webhook_attempts_total\{format="generic",result="http_error"\} 2/);
    t.regex(text, /k8sdeploy_webhook_attempts_total\{format="generic",result="timeout"\} 1/);
    t.regex(text, /k8sdeploy_webhook_deliveries_total\{format="generic",outcome="delivered"\} 1/);
  });
});

test("slack and discord receive their shapes, unsigned; only the states a webhook asked for", async (t) => {
  const store = new MemoryStore();
  const { dispatcher, admin } = replica(store);
  await withReceiver(async (receiver) => {
    const agentId = await agentIn(store);
    const slack = await admin.createWebhook({
      agentId,
      url: `${receiver.url}/slack`,
      format: WebhookFormat.WEBHOOK_FORMAT_SLACK,
      states: [],
      name: "",
    });
    t.is(slack.secret, "", "slack webhooks are not signed");
    await admin.createWebhook({
      agentId,
      url: `${receiver.url}/discord`,
      format: WebhookFormat.WEBHOOK_FORMAT_DISCORD,
      states: [DeploymentState.DEPLOYMENT_STATE_FAILED, DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK],
      name: "",
    });
    dispatcher.start();
    dispatcher.deploymentFinished(finished(agentId, DeploymentState.DEPLOYMENT_STATE_SUCCEEDED));
    dispatcher.deploymentFinished(finished(agentId, DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK));
    const requests = await receiver.waitFor(3);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await dispatcher.stop();
    t.is(requests.length, 3, "discord was not told about the success");
    const slackBodies = requests.filter((r) => r.path === "/hook/slack").map((r) => JSON.parse(r.body));
    const discordBodies = requests.filter((r) => r.path === "/hook/discord").map((r) => JSON.parse(r.body));
    t.is(slackBodies.length, 2);
    for (const body of slackBodies) {
      t.is(typeof body.text, "string");
      t.deepEqual(
        body.blocks.map((b: { type: string }) => b.type),
        ["section", "context"],
      );
    }
    t.is(discordBodies.length, 1);
    t.regex(discordBodies[0].embeds[0].title, /rolled back: web/);
    t.true(requests.every((r) => r.headers["webhook-signature"] === undefined));
  });
});

test("a 4xx is not retried; 5xx are retried until the attempts are used up; a deleted webhook is given up", async (t) => {
  const store = new MemoryStore();
  const { dispatcher, admin } = replica(store, { maxAttempts: 2 });
  await withReceiver(async (receiver) => {
    const agentId = await agentIn(store);
    const gone = await admin.createWebhook({
      agentId,
      url: `${receiver.url}/gone`,
      format: WebhookFormat.WEBHOOK_FORMAT_GENERIC,
      states: [],
      name: "",
    });
    const broken = await admin.createWebhook({
      agentId,
      url: `${receiver.url}/broken`,
      format: WebhookFormat.WEBHOOK_FORMAT_GENERIC,
      states: [],
      name: "",
    });
    receiver.respond((r) => (r.path.endsWith("/gone") ? 404 : 502));
    dispatcher.start();
    dispatcher.deploymentFinished(finished(agentId, DeploymentState.DEPLOYMENT_STATE_FAILED));
    const list = () => admin.listWebhookDeliveries({ webhookId: "", deploymentId: "", limit: 10 });
    const done = await eventually(
      list,
      (r) =>
        r.deliveries.length === 2 &&
        r.deliveries.every((d) => d.state === WebhookDeliveryState.WEBHOOK_DELIVERY_STATE_FAILED),
    );
    const byHook = new Map(done.deliveries.map((d) => [d.webhookId, d]));
    t.like(byHook.get(gone.webhook?.id ?? ""), { attempts: 1, lastHttpStatus: 404 });
    t.regex(byHook.get(gone.webhook?.id ?? "")?.lastError ?? "", /^HTTP 404: error 404 \(not retried\)$/);
    t.like(byHook.get(broken.webhook?.id ?? ""), { attempts: 2, lastHttpStatus: 502 });
    t.regex(byHook.get(broken.webhook?.id ?? "")?.lastError ?? "", /gave up after 2 attempts/);

    // Deleted before its first attempt: given up without a request.
    receiver.respond(() => "hang");
    const before = receiver.received.length;
    await admin.deleteWebhook({ id: gone.webhook?.id ?? "" });
    await admin.deleteWebhook({ id: broken.webhook?.id ?? "" });
    const late = await admin.createWebhook({ agentId, url: receiver.url, format: 1, states: [], name: "" });
    const queued = await dispatcher.enqueue(finished(agentId));
    t.is(queued, 1);
    await admin.deleteWebhook({ id: late.webhook?.id ?? "" });
    const lost = await eventually(
      () => admin.listWebhookDeliveries({ webhookId: late.webhook?.id ?? "", deploymentId: "", limit: 10 }),
      (r) => r.deliveries[0]?.state === WebhookDeliveryState.WEBHOOK_DELIVERY_STATE_FAILED,
    );
    t.is(lost.deliveries[0]?.lastError, "the webhook was deleted");
    t.is(receiver.received.length, before);
    await dispatcher.stop();
  });
});

test("creating a webhook refuses bad input with a message naming the field, and never echoes the URL", async (t) => {
  const store = new MemoryStore();
  const sealer = new Sealer();
  const admin = new AdminWebhooks(store, adminAgents(store), sealer, false);
  const agentId = await agentIn(store);
  const create = (extra: Record<string, unknown>) =>
    admin.createWebhook({ agentId, url: "https://hooks.example/x", format: 1, states: [], name: "", ...extra });
  await t.throwsAsync(create({ url: "http://127.0.0.1/secret-path" }), { message: /url: 127\.0\.0\.1 is a loopback/ });
  await t.throwsAsync(create({ url: "gopher://x/secret-path" }), { message: /scheme gopher: is not allowed/ });
  await t.throwsAsync(create({ format: 9 }), { message: /format: 9 is not a WebhookFormat/ });
  await t.throwsAsync(create({ states: [DeploymentState.DEPLOYMENT_STATE_QUEUED] }), {
    message: /states: queued is not a final state/,
  });
  await t.throwsAsync(create({ agentId: "agt_missing" }), { message: /agent agt_missing not found/ });
  const error = await t.throwsAsync(create({ url: "http://169.254.169.254/secret-path" }));
  t.false(error?.message.includes("secret-path"));
  // Stored plain without a key: the record holds it, the API shows only the preview.
  const { webhook } = await create({ url: "https://hooks.slack.com/services/T0/B0/SECRET" });
  t.is(webhook?.urlPreview, "https://hooks.slack.com/…");
  t.is((await admin.listWebhooks({ agentId: "" })).webhooks[0]?.urlPreview, "https://hooks.slack.com/…");
});

test("two replicas on one Redis deliver every notification exactly once", async (t) => {
  redis ??= await startRedisServer({ appendonly: false });
  const keyPrefix = `k8sd:test-${randomBytes(4).toString("hex")}:`;
  const a = await createRedisStore(redis.url, { replicaId: "a", keyPrefix });
  const b = await createRedisStore(redis.url, { replicaId: "b", keyPrefix });
  const ra = replica(a);
  const rb = replica(b);
  await withReceiver(async (receiver) => {
    try {
      const agentId = await agentIn(a);
      await ra.admin.createWebhook({ agentId, url: receiver.url, format: 1, states: [], name: "" });
      // Slow answers keep both replicas busy at once, each claiming batches while the other sends.
      receiver.respond(() => ({ status: 200, delayMs: 100 }));
      const n = 40;
      for (let i = 0; i < n; i++) {
        // Half the notifications are queued by each replica, as deployments end on either.
        await (i % 2 ? ra : rb).dispatcher.enqueue(finished(agentId));
      }
      ra.dispatcher.start();
      rb.dispatcher.start();
      await receiver.waitFor(n);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const ids = receiver.received.map((r) => String(r.headers["webhook-id"]));
      t.is(ids.length, n, "no request was sent twice");
      t.is(new Set(ids).size, n);
      const deliveries = await a.webhooks.listDeliveries({}, 100);
      t.is(deliveries.length, n);
      t.true(deliveries.every((d) => d.state === "delivered" && d.attempts === 1));
      const sent = async (r: ReturnType<typeof replica>) =>
        Number(/k8sdeploy_webhook_deliveries_total\{[^}]*\} (\d+)/.exec(await r.metrics.registry.metrics())?.[1] ?? 0);
      const [byA, byB] = [await sent(ra), await sent(rb)];
      t.is(byA + byB, n);
      t.true(byA > 0 && byB > 0, `both replicas sent (a ${byA}, b ${byB})`);
    } finally {
      await ra.dispatcher.stop();
      await rb.dispatcher.stop();
      await a.close();
      await b.close();
    }
  });
});
