// The `k8sdeploy` admin commands against a running orchestrator. Needs `npm run build`.
import test from "ava";
import { deployClient, deployRequest } from "./support/clients.js";
import { type Orchestrator, runCli, startOrchestrator } from "./support/orchestrator.js";
import { freePort, type RunResult, selfSignedCert, tempDir } from "./support/tools.js";

let orch: Orchestrator;

test.before(async () => {
  orch = await startOrchestrator();
});

test.after.always(async () => {
  await orch?.stop();
});

const outputs: RunResult[] = [];

async function cli(args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<RunResult> {
  const result = await runCli(args, { env: orch.cliEnv(extraEnv), timeoutMs: 30_000 });
  outputs.push(result);
  return result;
}

test.after("the admin token is never printed", (t) => {
  for (const r of outputs) {
    t.false(r.stdout.includes(orch.adminToken));
    t.false(r.stderr.includes(orch.adminToken));
  }
});

test.serial("agent create/list/rotate/revoke", async (t) => {
  const created = await cli(["agent", "create", "--name", "edge-1", "--json"]);
  t.is(created.code, 0, created.stderr);
  const agent = JSON.parse(created.stdout) as { id: string; token: string };
  t.deepEqual(Object.keys(agent), ["id", "token"]);
  t.regex(agent.id, /^agt_/);
  t.regex(agent.token, /^kda_/);

  const human = await cli(["agent", "create", "--name", "edge-2"]);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /^ID +agt_/m);
  t.regex(human.stdout, /^TOKEN +kda_/m);
  t.regex(human.stderr, /^warning: the token is shown only this once/m);

  const listJson = await cli(["agent", "list", "--json"]);
  t.is(listJson.code, 0, listJson.stderr);
  const agents = JSON.parse(listJson.stdout) as { id: string; name: string; connectionState: string }[];
  const mine = agents.find((a) => a.id === agent.id);
  t.is(mine?.name, "edge-1");
  t.is(mine?.connectionState, "CONNECTION_STATE_NEVER_CONNECTED");

  const list = await cli(["agent", "list"]);
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /^ID +NAME +STATE +LAST SEEN/);
  t.regex(list.stdout, new RegExp(`^${agent.id} +edge-1 +never_connected `, "m"));

  const rotated = await cli(["agent", "rotate", agent.id, "--grace", "60", "--json"]);
  t.is(rotated.code, 0, rotated.stderr);
  const rotation = JSON.parse(rotated.stdout) as { id: string; token: string };
  t.is(rotation.id, agent.id);
  t.not(rotation.token, agent.token);

  const badGrace = await cli(["agent", "rotate", agent.id, "--grace", "soon"]);
  t.not(badGrace.code, 0);
  t.regex(badGrace.stderr, /--grace.*not a whole number/);

  const revoked = await cli(["agent", "revoke", agent.id]);
  t.is(revoked.code, 0, revoked.stderr);
  t.is(revoked.stdout.trim(), `revoked agent ${agent.id}`);
  const after = JSON.parse((await cli(["agent", "list", "--json", "--include-revoked"])).stdout) as { id: string }[];
  t.true(after.some((a) => a.id === agent.id));
});

test.serial("key create/list/revoke", async (t) => {
  const agent = JSON.parse((await cli(["agent", "create", "--name", "keys", "--json"])).stdout) as { id: string };
  const created = await cli([
    "key",
    "create",
    "--agent",
    agent.id,
    "--namespace",
    "web",
    "--namespace",
    "api",
    "--workload",
    "frontend",
    "--name",
    "ci",
    "--json",
  ]);
  t.is(created.code, 0, created.stderr);
  const key = JSON.parse(created.stdout) as { id: string; key: string };
  t.deepEqual(Object.keys(key), ["id", "key"]);
  t.regex(key.id, /^key_/);
  t.regex(key.key, /^kdk_/);

  const listed = JSON.parse((await cli(["key", "list", "--agent", agent.id, "--json"])).stdout) as {
    id: string;
    namespaces: string[];
    workloads: string[];
  }[];
  t.is(listed.length, 1);
  t.deepEqual(listed[0]?.namespaces, ["web", "api"]);
  t.deepEqual(listed[0]?.workloads, ["frontend"]);

  const human = await cli(["key", "list", "--agent", agent.id]);
  t.regex(human.stdout, new RegExp(`^${key.id} +ci +${agent.id} +web,api +frontend +- +active$`, "m"));

  const revoked = await cli(["key", "revoke", key.id]);
  t.is(revoked.code, 0, revoked.stderr);
  t.is(revoked.stdout.trim(), `revoked deploy key ${key.id}`);
});

test.serial("deployments list and --state parsing", async (t) => {
  const empty = await cli([
    "deployments",
    "list",
    "--state",
    "failed",
    "--state",
    "in-progress",
    "--limit",
    "5",
    "--json",
  ]);
  t.is(empty.code, 0, empty.stderr);
  t.deepEqual(JSON.parse(empty.stdout), []);

  const human = await cli(["deployments", "list"]);
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /^ID +AGENT +NAMESPACE +WORKLOAD +IMAGE +STATE +CREATED$/m);

  const bad = await cli(["deployments", "list", "--state", "exploded"]);
  t.not(bad.code, 0);
  t.regex(
    bad.stderr,
    /expected one of queued, delivered, in_progress, succeeded, failed, rolled_back, timed_out, cancelled, superseded, expired/,
  );

  const badLimit = await cli(["deployments", "list", "--limit", "501"]);
  t.not(badLimit.code, 0);
  t.regex(badLimit.stderr, /must be between 1 and 500/);
});

test.serial("deployments cancel: a queued deployment ends cancelled; a second cancel is refused", async (t) => {
  const agent = JSON.parse((await cli(["agent", "create", "--name", "cancel-me", "--json"])).stdout) as { id: string };
  const { key } = JSON.parse((await cli(["key", "create", "--agent", agent.id, "--json"])).stdout) as { key: string };
  const client = deployClient(orch.grpcAddress, key);
  const { deployment } = await client.deploy(
    deployRequest({ namespace: "shop", workload: "web", image: "nginx:1.27" }),
  );
  client.close();
  const id = deployment?.id ?? "";
  const cancelled = await cli(["deployments", "cancel", id, "--reason", "release rolled back", "--json"]);
  t.is(cancelled.code, 0, cancelled.stderr);
  const json = JSON.parse(cancelled.stdout) as { state: string; message: string };
  t.is(json.state, "DEPLOYMENT_STATE_CANCELLED");
  t.regex(json.message, /cancelled by an admin before delivery: release rolled back/);
  const again = await cli(["deployments", "cancel", id]);
  t.is(again.code, 1);
  t.regex(again.stderr, /^error: FAILED_PRECONDITION: deployment dep_\w+ is cancelled already/m);
  const listed = await cli(["deployments", "list", "--state", "cancelled", "--json"]);
  t.deepEqual(
    (JSON.parse(listed.stdout) as { id: string }[]).map((d) => d.id),
    [id],
  );
});

test("a wrong token gives `error: UNAUTHENTICATED: …` and exit 1", async (t) => {
  const r = await cli(["agent", "list"], { K8SDEPLOY_ADMIN_TOKEN: "x".repeat(40) });
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: UNAUTHENTICATED: /);
  t.is(r.stdout, "");
});

test("no token anywhere is a clear error", async (t) => {
  const r = await cli(["agent", "list"], { K8SDEPLOY_DATA_DIR: await tempDir() });
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: no admin token: set K8SDEPLOY_ADMIN_TOKEN/);
});

test("a bad K8SDEPLOY_SERVER names the variable", async (t) => {
  const r = await cli(["agent", "list"], { K8SDEPLOY_SERVER: "grpc://somewhere:1" });
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: K8SDEPLOY_SERVER: "grpc:\/\/somewhere:1" has scheme grpc:/);
});

test("an unreachable server gives `error: UNAVAILABLE: …`", async (t) => {
  const r = await cli(["agent", "list"], { K8SDEPLOY_SERVER: `http://127.0.0.1:${await freePort()}` });
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: UNAVAILABLE: /);
});

test("https with K8SDEPLOY_CA_FILE", async (t) => {
  const { cert, key } = await selfSignedCert(await tempDir());
  const tls = await startOrchestrator({ env: { K8SDEPLOY_TLS_CERT_FILE: cert, K8SDEPLOY_TLS_KEY_FILE: key } });
  t.teardown(() => tls.stop());
  const ok = await runCli(["agent", "list", "--json"], { env: tls.cliEnv() });
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(JSON.parse(ok.stdout), []);
  // Without the CA the system roots do not trust the self-signed certificate.
  const untrusted = await runCli(["agent", "list"], { env: tls.cliEnv({ K8SDEPLOY_CA_FILE: undefined }) });
  t.is(untrusted.code, 1);
  t.regex(untrusted.stderr, /^error: UNAVAILABLE: /);
});
