// Observability on real processes: an orchestrator (k8sdeploy serve, Redis store) and the agent
// bundle on Node 24 (as the image runs it) against the test bed, exercised through both
// transports. Checks the logs (one outcome line per deployment, audit events, the agent's
// account of what it changed, nothing but JSON from start), the metrics both processes export,
// and that every expression of the Grafana dashboard names a metric one of them really exports.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { AdminServiceClient } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { Webhook } from "standardwebhooks";
import { startWebhookReceiver, type WebhookReceiver } from "../orchestrator/src/notify/testing/webhook-receiver.js";
import { repoRoot } from "./support/action.js";
import { deployClient, deployRequest } from "./support/clients.js";
import { node24, waitConnected, waitState } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, waitFor } from "./support/kube.js";
import { dashboardExpressions, exportedMetricNames, promqlMetricNames, sampleValue } from "./support/metrics.js";
import { agentBundleCheck } from "./support/preflight.js";
import type { Proc } from "./support/processes.js";
import { type Stack, startStack } from "./support/stack.js";
import { freePort } from "./support/tools.js";

/** The one K8sDeploy version every part reports (the root package.json's). */
const VERSION = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }).version;

let stack: Stack;
let receiver: WebhookReceiver;
let namespace: string;
let agentProc: Proc;
let agentMetricsUrl: string;
const ids: { agentA: string; agentB: string; keyA: string; keyB: string; tokenA: string; secret: string } = {
  agentA: "",
  agentB: "",
  keyA: "",
  keyB: "",
  tokenA: "",
  secret: "",
};

test.before(async () => {
  agentBundleCheck();
  receiver = await startWebhookReceiver();
  stack = await startStack({
    replicas: 1,
    env: {
      K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK: "true",
      K8SDEPLOY_WEBHOOK_BACKOFF_SECONDS: "1",
      K8SDEPLOY_LOG_LEVEL: "info",
    },
  });
  namespace = await createNamespace("e2e-observe");
  const a = await stack.createAgent("observed");
  const b = await stack.createAgent("offline");
  ids.agentA = a.id;
  ids.tokenA = a.token;
  ids.agentB = b.id;
  ids.keyA = (await stack.createKey(a.id, { namespaces: [namespace] })).key;
  ids.keyB = (await stack.createKey(b.id)).key;
  const hook = JSON.parse(
    await stack.cli(["webhook", "create", "--agent", a.id, "--url", `${receiver.url}/ci?t=secret-query`, "--json"]),
  ) as { id: string; secret: string };
  ids.secret = hook.secret;
  const port = await freePort();
  agentMetricsUrl = `http://127.0.0.1:${port}/metrics`;
  const [replica] = stack.replicas;
  if (!replica) throw new Error("no replica");
  agentProc = stack.startAgent({
    token: a.token,
    servers: [replica.grpcAddress],
    node: [node24()],
    env: { K8SDEPLOY_HEALTH_LISTEN: `127.0.0.1:${port}`, K8SDEPLOY_LOG_LEVEL: "info" },
  });
  await waitConnected(stack, a.id);
});

test.after.always(async () => {
  await stack?.stop();
  await receiver?.close();
  if (namespace) await deleteNamespace(namespace);
});

const replica = () => {
  const r = stack.replicas[0];
  if (!r) throw new Error("no replica");
  return r;
};

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test.serial(
  "a deploy through the real agent: one outcome line on the orchestrator; the agent logs what it changed and how it ended; the webhook is signed",
  async (t) => {
    await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1" }]);
    const client = deployClient(replica().grpcAddress, ids.keyA);
    try {
      const { deployment } = await client.deploy(
        deployRequest({
          namespace,
          workload: "web",
          image: "registry.example/acme/web:2",
          origin: { repository: "acme/web", sha: "0123456789abcdef", ref: "", actor: "", runUrl: "", workflow: "" },
        }),
      );
      const id = deployment?.id ?? "";
      await waitState(client, id, [DeploymentState.DEPLOYMENT_STATE_SUCCEEDED]);
      const outcome = await waitForEntries(() =>
        replica()
          .logEntries()
          .filter((e) => e.event === "deployment_finished" && e.deploymentId === id),
      );
      t.is(outcome.length, 1, "exactly one outcome line");
      t.like(outcome[0], {
        msg: "deployment finished",
        agentId: ids.agentA,
        namespace,
        kind: "deployment",
        workload: "web",
        image: "registry.example/acme/web:2",
        state: "succeeded",
        repository: "acme/web",
      });
      t.true(typeof outcome[0]?.durationSeconds === "number" && typeof outcome[0]?.rolloutSeconds === "number");

      await agentProc.waitFor(/"event":"command_finished"/);
      const agentLines = jsonLines(agentProc.output());
      const changed = agentLines.filter((e) => e.event === "workload_changed" && e.deploymentId === id);
      t.is(changed.length, 1);
      t.like(changed[0], { namespace, workload: "web", image: "registry.example/acme/web:2", kind: "deployment" });
      t.deepEqual(changed[0]?.previousImages, ["web=registry.example/acme/web:1"]);
      t.regex(String(changed[0]?.message), /^patched deployment/);
      const ended = agentLines.filter((e) => e.event === "command_finished" && e.deploymentId === id);
      t.is(ended.length, 1);
      t.like(ended[0], { type: "deploy", state: "succeeded" });

      const [request] = await receiver.waitFor(1);
      if (!request) throw new Error("no webhook request");
      const payload = new Webhook(ids.secret).verify(request.body, request.headers as Record<string, string>) as {
        data: { deployment: { id: string } };
      };
      t.is(payload.data.deployment.id, id);
    } finally {
      client.close();
    }
  },
);

test.serial(
  "admin changes, a cancel and failed authentications are audit events: who, what, from where; no secret anywhere",
  async (t) => {
    // A deploy for the offline agent, cancelled (admin), and another left waiting in its queue.
    const clientB = deployClient(replica().grpcAddress, ids.keyB);
    try {
      const cancelled = (
        await clientB.deploy(deployRequest({ namespace: "shop", workload: "api", image: "acme/api:1" }))
      ).deployment?.id;
      await stack.cli(["deployments", "cancel", cancelled ?? "", "--reason", "audit test"]);
      await clientB.deploy(deployRequest({ namespace: "shop", workload: "worker", image: "acme/worker:1" }));
      // And one whose queue deadline passes: it ends EXPIRED on the orchestrator's side.
      const expiring = (
        await clientB.deploy(
          deployRequest({ namespace: "shop", workload: "cron", image: "acme/cron:1", queueTimeoutSeconds: 1 }),
        )
      ).deployment?.id;
      await waitState(clientB, expiring ?? "", [DeploymentState.DEPLOYMENT_STATE_EXPIRED], 30_000);
      const expired = replica()
        .logEntries()
        .filter((e) => e.event === "deployment_finished" && e.deploymentId === expiring);
      t.is(expired.length, 1);
      t.like(expired[0], {
        state: "expired",
        reason: "queue_deadline_exceeded",
        agentId: ids.agentB,
        workload: "cron",
      });
    } finally {
      clientB.close();
    }
    // Failed authentications on both ports.
    const wrong = await fetch(`${replica().httpUrl}/k8sdeploy.v1.AdminService/ListAgents`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer kdk_key_nosuchkey_${"wrong".repeat(8)}xy1`,
      },
      body: "{}",
    });
    t.is(wrong.status, 401);
    const admin = new AdminServiceClient(replica().grpcAddress, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("authorization", "Bearer not-the-admin-token-at-all-xxxx");
    const code = await new Promise<number>((resolve) =>
      admin.listAgents({ includeRevoked: false }, md, (err) => resolve(err?.code ?? 0)),
    );
    admin.close();
    t.is(code, grpc.status.UNAUTHENTICATED);

    const audits = await waitForEntries(
      () =>
        replica()
          .logEntries()
          .filter((e) => e.audit === true),
      (list) => list.filter((e) => e.event === "auth.failed").length >= 2,
    );
    const find = (event: string) => audits.filter((e) => e.event === event);
    t.like(find("agent.create")[0], {
      actor: "admin",
      peer: "127.0.0.1",
      outcome: "ok",
      name: "observed",
      agentId: ids.agentA,
    });
    t.like(find("deploy_key.create")[0], { actor: "admin", peer: "127.0.0.1", outcome: "ok", agentId: ids.agentA });
    t.like(find("webhook.create")[0], { actor: "admin", outcome: "ok", agentId: ids.agentA, format: 1 });
    t.regex(String(find("webhook.create")[0]?.urlPreview), /^http:\/\/127\.0\.0\.1:\d+\/…$/);
    t.like(find("deployment.cancel")[0], { actor: "admin", outcome: "ok", reason: "audit test" });
    const failures = find("auth.failed");
    t.true(
      failures.some((e) => e.credential === "deploy_key" && e.actor === "key_nosuchkey" && e.transport === "http"),
    );
    t.true(failures.some((e) => e.credential === "admin" && e.transport === "grpc" && e.peer === "127.0.0.1"));
    t.true(failures.every((e) => e.outcome === "UNAUTHENTICATED" && typeof e.method === "string"));

    const logs = stack.allOutput();
    for (const secret of [
      stack.adminToken,
      ids.tokenA,
      ids.keyA,
      ids.keyB,
      ids.secret,
      "secret-query",
      "wrongwrongwrong",
    ]) {
      t.false(logs.includes(secret), `a secret appears in a log: ${secret.slice(0, 8)}…`);
    }
    // The receiver gets a signature, never the secret.
    t.false(receiver.received.some((r) => JSON.stringify(r.headers).includes(ids.secret.slice(6))));
  },
);

test.serial(
  "every line both processes wrote since they started is JSON (the agent on Node 24, as in the image)",
  (t) => {
    for (const [name, text] of [
      ["orchestrator", replica().logs()],
      ["agent", agentProc.output()],
    ] as const) {
      const lines = text.split("\n").filter((l) => l.trim() !== "");
      t.true(lines.length > 5, name);
      const plain = lines.filter((l) => {
        try {
          return typeof JSON.parse(l) !== "object";
        } catch {
          return true;
        }
      });
      t.deepEqual(plain, [], `${name} wrote plain-text lines`);
    }
    // Node 24 warns about punycode while loading the bundle: it arrives as a JSON line.
    t.true(jsonLines(agentProc.output()).some((e) => e.msg === "node warning" && e.source === "node"));
  },
);

test.serial(
  "metrics: both transports, deployment latencies, queues with top agents, agents by state and version, auth, Redis errors, webhooks; the agent's own",
  async (t) => {
    // Connect traffic (the dashboard's transport).
    const ok = await fetch(`${replica().httpUrl}/k8sdeploy.v1.AdminService/ListAgents`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${stack.adminToken}` },
      body: "{}",
    });
    t.is(ok.status, 200);
    // A Redis outage: connection errors are counted; the store comes back by itself.
    await stack.redis.stop("SIGKILL");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await stack.redis.restart();
    await waitFor(
      async () => (await fetch(`${replica().httpUrl}/readyz`)).ok,
      "the orchestrator to be ready again",
      30_000,
    );

    const text = await scrapeUntil(
      replica().httpUrl,
      (m) => (sampleValue(m, "k8sdeploy_queue_commands", { state: "waiting" }) ?? 0) >= 1,
    );
    const v = (name: string, labels: Record<string, string> = {}) => sampleValue(text, name, labels) ?? 0;
    const deploy = { service: "k8sdeploy.v1.DeployService", method: "Deploy" };
    t.true(v("k8sdeploy_rpc_handled_total", { transport: "grpc", ...deploy, code: "OK" }) >= 3);
    t.true(v("k8sdeploy_rpc_duration_seconds_count", { transport: "grpc", ...deploy, code: "OK" }) >= 3);
    const listAgents = { service: "k8sdeploy.v1.AdminService", method: "ListAgents" };
    t.true(v("k8sdeploy_rpc_handled_total", { transport: "connect", ...listAgents, code: "OK" }) >= 1);
    t.true(v("k8sdeploy_rpc_handled_total", { transport: "connect", ...listAgents, code: "UNAUTHENTICATED" }) >= 1);
    t.true(v("k8sdeploy_rpc_handled_total", { transport: "grpc", ...listAgents, code: "UNAUTHENTICATED" }) >= 1);
    t.true(v("k8sdeploy_deployment_delivery_seconds_count") >= 1);
    t.true(v("k8sdeploy_deployment_run_seconds_count", { state: "succeeded" }) >= 1);
    t.true(v("k8sdeploy_deployment_duration_seconds_count", { state: "cancelled" }) >= 1);
    t.true(v("k8sdeploy_deployment_duration_seconds_count", { state: "expired" }) >= 1);
    t.true(v("k8sdeploy_deployments_ended_unapplied_total", { state: "expired" }) >= 1);
    t.true(v("k8sdeploy_deployments_finished_total", { state: "succeeded" }) >= 1);
    t.true(v("k8sdeploy_queue_commands", { state: "waiting" }) >= 1);
    t.true(v("k8sdeploy_agent_queue_commands", { agent: ids.agentB, state: "waiting" }) >= 1);
    t.true(v("k8sdeploy_agent_queue_oldest_waiting_seconds", { agent: ids.agentB }) > 0);
    t.true(v("k8sdeploy_queue_oldest_waiting_seconds") > 0);
    t.is(
      sampleValue(text, "k8sdeploy_agent_queue_commands", { agent: ids.agentA }),
      undefined,
      "only agents with waiting commands",
    );
    t.is(v("k8sdeploy_agents", { state: "connected", version: VERSION }), 1);
    t.is(v("k8sdeploy_agents", { state: "never_connected", version: "unknown" }), 1);
    t.is(v("k8sdeploy_agent_streams", { version: VERSION }), 1);
    t.true(v("k8sdeploy_auth_failures_total", { kind: "deploy_key" }) >= 1);
    t.true(v("k8sdeploy_redis_errors_total", { connection: "main" }) >= 1);
    t.true(v("k8sdeploy_webhook_attempts_total", { format: "generic", result: "delivered" }) >= 1);

    const agentText = await (await fetch(agentMetricsUrl)).text();
    const a = (name: string, labels: Record<string, string> = {}) => sampleValue(agentText, name, labels);
    t.is(a("k8sdeploy_agent_info", { version: VERSION, arch: process.arch }), 1);
    t.is(a("k8sdeploy_agent_connected"), 1);
    t.is(a("k8sdeploy_agent_commands_total", { type: "deploy", state: "succeeded" }), 1);
    t.is(a("k8sdeploy_agent_deploy_duration_seconds_count", { state: "succeeded" }), 1);
    t.true((a("k8sdeploy_agent_connects_total") ?? 0) >= 1);
    t.true((a("process_resident_memory_bytes") ?? 0) > 10_000_000);
  },
);

test.serial(
  "every expression of the Grafana dashboard names metrics the orchestrator or the agent exports",
  async (t) => {
    const dashboard = JSON.parse(
      readFileSync(join(repoRoot, "orchestrator", "deploy", "grafana", "k8sdeploy.json"), "utf8"),
    );
    const exported = new Set([
      ...exportedMetricNames(await (await fetch(`${replica().httpUrl}/metrics`)).text()),
      ...exportedMetricNames(await (await fetch(agentMetricsUrl)).text()),
    ]);
    const expressions = dashboardExpressions(dashboard);
    t.true(expressions.length >= 30, `only ${expressions.length} expressions`);
    const missing: string[] = [];
    const used = new Set<string>();
    for (const { panel, expr } of expressions) {
      const names = promqlMetricNames(expr);
      if (names.length === 0) missing.push(`${panel}: no metric in ${expr}`);
      for (const name of names) {
        used.add(name);
        if (!exported.has(name)) missing.push(`${panel}: ${name}`);
      }
    }
    t.deepEqual(missing, []);
    // The checker itself: it finds the names, and would catch a wrong one.
    t.deepEqual(promqlMetricNames('histogram_quantile(0.95, sum by (le) (rate(foo_bucket{a="b"}[5m])))'), [
      "foo_bucket",
    ]);
    t.false(exported.has("k8sdeploy_no_such_metric_total"));
    t.true(used.has("k8sdeploy_rpc_handled_total") && used.has("k8sdeploy_agent_commands_total"));
  },
);

async function waitForEntries<T>(read: () => T[], done: (list: T[]) => boolean = (l) => l.length > 0): Promise<T[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const list = read();
    if (done(list) || Date.now() > deadline) return list;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Scrapes until `ok` (the fleet gauges are cached for 10 s). */
async function scrapeUntil(httpUrl: string, ok: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await (await fetch(`${httpUrl}/metrics`)).text();
    if (ok(text) || Date.now() > deadline) return text;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
