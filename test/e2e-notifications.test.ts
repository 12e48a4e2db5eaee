// Webhook notifications on real processes: two orchestrator replicas sharing a redis-server, a
// receiver on loopback, deployments ended by cancelling them (their agent is offline, so nothing
// else is needed). A delivery the receiver refused survives a kill -9 of every replica and is
// delivered after the restart; with both replicas sending, every notification arrives once.
import { randomBytes } from "node:crypto";
import test from "ava";
import { createClient } from "redis";
import { Webhook } from "standardwebhooks";
import { startWebhookReceiver, type WebhookReceiver } from "../orchestrator/src/notify/testing/webhook-receiver.js";
import { deployClient, deployRequest } from "./support/clients.js";
import { waitFor } from "./support/kube.js";
import { type Stack, startStack } from "./support/stack.js";

let stack: Stack;
let receiver: WebhookReceiver;
let agentId: string;
let deployKey: string;

test.before(async () => {
  receiver = await startWebhookReceiver();
  stack = await startStack({
    replicas: 2,
    env: {
      K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK: "true",
      K8SDEPLOY_WEBHOOK_BACKOFF_SECONDS: "3",
      K8SDEPLOY_WEBHOOK_KEY: randomBytes(32).toString("base64"),
      K8SDEPLOY_LOG_LEVEL: "info",
    },
  });
  const agent = await stack.createAgent("offline");
  agentId = agent.id;
  deployKey = (await stack.createKey(agent.id)).key;
});

test.after.always(async () => {
  await stack?.stop();
  await receiver?.close();
});

interface DeliveryJson {
  id: string;
  webhookId: string;
  deploymentId: string;
  state: string;
  attempts: number;
  lastHttpStatus: number;
  lastError: string;
}

const deliveries = async (webhookId: string) =>
  JSON.parse(await stack.cli(["webhook", "deliveries", "--webhook", webhookId, "--json"])) as DeliveryJson[];

/** Deploys for the offline agent through `replica` and cancels it there: a final state. */
async function cancelledDeployment(replica: number, workload: string): Promise<string> {
  const r = stack.replicas[replica];
  if (!r) throw new Error(`no replica ${replica}`);
  const client = deployClient(r.grpcAddress, deployKey);
  try {
    const { deployment } = await client.deploy(deployRequest({ namespace: "shop", workload, image: "acme/app:1" }));
    const id = deployment?.id ?? "";
    await stack.cli(["deployments", "cancel", id], replica);
    return id;
  } finally {
    client.close();
  }
}

test.serial(
  "a refused delivery survives kill -9 of every replica and is delivered, signed, after the restart",
  async (t) => {
    const created = JSON.parse(
      await stack.cli([
        "webhook",
        "create",
        "--agent",
        agentId,
        "--url",
        `${receiver.url}/durable`,
        "--on",
        "cancelled",
        "--json",
      ]),
    ) as { id: string; secret: string };
    receiver.respond(() => 500);
    const deploymentId = await cancelledDeployment(0, "web");
    await receiver.waitFor(1);
    // Kill once the refusal is recorded (not mid-attempt, which would hold the delivery for its
    // lease) and before the retry, 3 s later ±20 %.
    await waitFor(
      async () => (await deliveries(created.id))[0]?.attempts === 1,
      "the first attempt to be recorded",
      2000,
    );
    await Promise.all(stack.replicas.map((r) => r.stop("SIGKILL")));
    const refused = receiver.received.length;
    receiver.respond(() => 204);
    await stack.restartReplica(0);
    await stack.restartReplica(1);
    const requests = await receiver.waitFor(refused + 1, 60_000);

    const verifier = new Webhook(created.secret);
    t.is(new Set(requests.map((r) => r.headers["webhook-id"])).size, 1, "every attempt is the same delivery");
    for (const r of requests) {
      const body = verifier.verify(r.body, r.headers as Record<string, string>) as {
        data: { deployment: { id: string; state: string } };
      };
      t.is(body.data.deployment.id, deploymentId);
      t.is(body.data.deployment.state, "DEPLOYMENT_STATE_CANCELLED");
    }
    let log: DeliveryJson[] = [];
    await waitFor(async () => {
      log = await deliveries(created.id);
      return log[0]?.state === "WEBHOOK_DELIVERY_STATE_DELIVERED";
    }, "the delivery log to say delivered");
    t.like(log[0], { deploymentId, attempts: requests.length, lastHttpStatus: 204 });

    // At rest the URL and the secret are encrypted (K8SDEPLOY_WEBHOOK_KEY), and no log shows them.
    const raw = createClient({ url: stack.redis.url });
    await raw.connect();
    try {
      const stored = JSON.stringify(await raw.hGetAll("k8sd:{whk}:hooks"));
      t.true(stored.includes("aes256gcm:"));
      t.false(stored.includes("/hook/durable"));
      t.false(stored.includes(created.secret.slice(6)));
    } finally {
      raw.destroy();
    }
    t.false(stack.allOutput().includes("/hook/durable"));
    t.false(stack.allOutput().includes(created.secret.slice(6)));
    await stack.cli(["webhook", "delete", created.id]);
  },
);

test.serial("two replicas sending at once deliver every notification exactly once (generic and Slack)", async (t) => {
  const before = receiver.received.length;
  const generic = JSON.parse(
    await stack.cli(["webhook", "create", "--agent", agentId, "--url", `${receiver.url}/many`, "--json"]),
  ) as { id: string };
  const slack = JSON.parse(
    await stack.cli(
      ["webhook", "create", "--agent", agentId, "--url", `${receiver.url}/slack`, "--format", "slack", "--json"],
      1,
    ),
  ) as { id: string; secret: string };
  t.is(slack.secret, "");
  // Slow answers: both replicas are busy sending at the same time.
  receiver.respond(() => ({ status: 200, delayMs: 150 }));
  const n = 8;
  const ids = await Promise.all(Array.from({ length: n }, (_, i) => cancelledDeployment(i % 2, `app-${i}`)));
  await receiver.waitFor(before + 2 * n, 60_000);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const received = receiver.received.slice(before);
  t.is(received.length, 2 * n, "no notification was sent twice");
  const byPath = (path: string) => received.filter((r) => r.path === path);
  t.is(new Set(byPath("/hook/many").map((r) => r.headers["webhook-id"])).size, n);
  const reported = byPath("/hook/many").map(
    (r) => (JSON.parse(r.body) as { data: { deployment: { id: string } } }).data.deployment.id,
  );
  t.deepEqual(reported.sort(), [...ids].sort());
  for (const r of byPath("/hook/slack")) {
    const body = JSON.parse(r.body) as { text: string; blocks: { type: string }[] };
    t.regex(body.text, /Deployment cancelled: shop\/deployment\/app-\d/);
    t.deepEqual(
      body.blocks.map((b) => b.type),
      ["section", "context"],
    );
    t.is(r.headers["webhook-signature"], undefined);
  }
  const log = await deliveries(generic.id);
  t.is(log.length, n);
  t.true(log.every((d) => d.state === "WEBHOOK_DELIVERY_STATE_DELIVERED" && d.attempts === 1));
  const listed = JSON.parse(await stack.cli(["webhook", "list", "--agent", agentId, "--json"])) as {
    id: string;
    urlPreview: string;
  }[];
  t.deepEqual(listed.map((w) => w.id).sort(), [generic.id, slack.id].sort());
  t.true(listed.every((w) => /^http:\/\/127\.0\.0\.1:\d+\/…$/.test(w.urlPreview)));
});
