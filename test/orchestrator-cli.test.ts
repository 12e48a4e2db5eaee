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

test("an orchestrator that is down is explained in one line", async (t) => {
  const port = await freePort();
  const r = await cli(["agent", "list"], { K8SDEPLOY_SERVER: `http://127.0.0.1:${port}` });
  t.is(r.code, 1);
  t.is(
    r.stderr,
    `error: cannot reach the orchestrator at http://127.0.0.1:${port}: connection refused (is \`k8sdeploy serve\` running, and is 127.0.0.1:${port} its gRPC port?)\n`,
  );
});

test("the HTTP port instead of the gRPC port is explained in one line, with http:// and https://", async (t) => {
  for (const scheme of ["http", "https"]) {
    const r = await cli(["agent", "list"], { K8SDEPLOY_SERVER: `${scheme}://${orch.httpAddress}` });
    t.is(r.code, 1);
    t.regex(
      r.stderr,
      /^error: cannot use the orchestrator at https?:\/\/127\.0\.0\.1:\d+: it answers HTTP\/1\.1, not gRPC: that is probably the orchestrator's HTTP port .*use its gRPC port \(K8SDEPLOY_GRPC_LISTEN, default 50051\)\n$/,
    );
    t.is(r.stderr.split("\n").length, 2, "one line");
  }
});

test("https:// to a plaintext gRPC port is explained in one line", async (t) => {
  const r = await cli(["agent", "list"], { K8SDEPLOY_SERVER: `https://${orch.grpcAddress}` });
  t.is(r.code, 1);
  t.is(
    r.stderr,
    `error: cannot use the orchestrator at https://${orch.grpcAddress}: the server does not speak TLS; use http://${orch.grpcAddress} (or give the orchestrator K8SDEPLOY_TLS_CERT_FILE/KEY_FILE)\n`,
  );
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
  t.is(
    untrusted.stderr,
    `error: cannot use the orchestrator at https://${tls.grpcAddress}: its TLS certificate is not signed by a CA this client trusts; set K8SDEPLOY_CA_FILE to the PEM CA that signed it\n`,
  );
  // http:// to the TLS port.
  const plaintext = await runCli(["agent", "list"], {
    env: tls.cliEnv({ K8SDEPLOY_CA_FILE: undefined, K8SDEPLOY_SERVER: `http://${tls.grpcAddress}` }),
  });
  t.is(plaintext.code, 1);
  t.is(
    plaintext.stderr,
    `error: cannot use the orchestrator at http://${tls.grpcAddress}: the server expects TLS; use https://${tls.grpcAddress}\n`,
  );
});

test("--server and --token win over K8SDEPLOY_SERVER and K8SDEPLOY_ADMIN_TOKEN, before or after the command", async (t) => {
  const env = { K8SDEPLOY_SERVER: `http://127.0.0.1:${await freePort()}`, K8SDEPLOY_ADMIN_TOKEN: "w".repeat(30) };
  const flags = ["--server", `http://${orch.grpcAddress}`, "--token", orch.adminToken];
  const after = await cli(["agent", "list", ...flags, "--output", "json"], env);
  t.is(after.code, 0, after.stderr);
  t.true(Array.isArray(JSON.parse(after.stdout)));
  const before = await cli([...flags, "key", "list"], env);
  t.is(before.code, 0, before.stderr);
  t.regex(before.stdout, /^ID +NAME +AGENT/);
  const wrongToken = await cli(["agent", "list", "--token", "z".repeat(30)]);
  t.regex(wrongToken.stderr, /^error: UNAUTHENTICATED: invalid admin token/);
  const badServer = await cli(["agent", "list", "--server", "grpc://x:1"]);
  t.regex(badServer.stderr, /^error: --server: "grpc:\/\/x:1" has scheme grpc:/);
});

test("--output json|table works on every command and --json stays an alias", async (t) => {
  const agent = JSON.parse((await cli(["agent", "create", "--name", "output", "--output", "json"])).stdout) as {
    id: string;
  };
  for (const args of [
    ["agent", "list"],
    ["key", "list"],
    ["trust", "list"],
    ["deployments", "list"],
  ]) {
    const json = await cli([...args, "--output", "json"]);
    t.is(json.code, 0, json.stderr);
    t.true(Array.isArray(JSON.parse(json.stdout)), args.join(" "));
    const alias = await cli([...args, "--json"]);
    t.is(alias.stdout, json.stdout, `${args.join(" ")}: --json is --output json`);
    const table = await cli([...args, "-o", "table"]);
    t.regex(table.stdout, /^ID +/, args.join(" "));
  }
  const key = JSON.parse((await cli(["key", "create", "--agent", agent.id, "-o", "json"])).stdout) as { id: string };
  t.regex(key.id, /^key_/);
  const bad = await cli(["agent", "list", "--output", "yaml"]);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /argument 'yaml' is invalid\. Allowed choices are table, json/);
});

test.serial("trust create/list/delete", async (t) => {
  const agent = JSON.parse((await cli(["agent", "create", "--name", "trusted", "--json"])).stdout) as { id: string };
  const created = await cli([
    "trust",
    "create",
    "--agent",
    agent.id,
    "--repository",
    "acme/web",
    "--ref",
    "refs/tags/v*",
    "--environment",
    "production",
    "--namespace",
    "web",
    "--workload",
    "frontend",
    "--json",
  ]);
  t.is(created.code, 0, created.stderr);
  const policy = JSON.parse(created.stdout) as Record<string, unknown>;
  t.regex(String(policy.id), /^tp_/);
  t.like(policy, {
    agentId: agent.id,
    repository: "acme/web",
    ref: "refs/tags/v*",
    environment: "production",
    audience: "k8sdeploy",
    issuer: "https://token.actions.githubusercontent.com",
    namespaces: ["web"],
    workloads: ["frontend"],
  });
  const human = await cli(["trust", "list", "--agent", agent.id]);
  t.regex(
    human.stdout,
    new RegExp(`^${policy.id} +${agent.id} +acme/web +refs/tags/v\\* +production +web +frontend +- +active$`, "m"),
  );
  const wide = await cli(["trust", "create", "--agent", agent.id, "--repository", "acme/api"]);
  t.is(wide.code, 0, wide.stderr);
  t.regex(wide.stderr, /^warning: any branch, tag and workflow of the repository may deploy/m);
  const bad = await cli(["trust", "create", "--agent", agent.id, "--repository", "not a repo", "--ref", "main*x"]);
  t.is(bad.code, 1);
  t.regex(
    bad.stderr,
    /^error: INVALID_ARGUMENT: invalid trust policy: repository: required, as owner\/name .*ref: `\*` may only be the last character/,
  );
  const unknownAgent = await cli(["trust", "create", "--agent", "agt_nope", "--repository", "acme/web"]);
  t.regex(unknownAgent.stderr, /^error: NOT_FOUND: /);
  const deleted = await cli(["trust", "delete", String(policy.id)]);
  t.is(deleted.stdout, `deleted trust policy ${policy.id}\n`);
  const after = JSON.parse((await cli(["trust", "list", "--agent", agent.id, "--json"])).stdout) as { id: string }[];
  t.false(after.some((p) => p.id === policy.id));
});

test.serial(
  "deployments get and watch: fields, timeline, the failure text once, exit 1 unless it succeeded",
  async (t) => {
    const agent = JSON.parse((await cli(["agent", "create", "--name", "watch-me", "--json"])).stdout) as { id: string };
    const { key, id: keyId } = JSON.parse((await cli(["key", "create", "--agent", agent.id, "--json"])).stdout) as {
      key: string;
      id: string;
    };
    const client = deployClient(orch.grpcAddress, key);
    const { deployment } = await client.deploy(
      deployRequest({ namespace: "shop", workload: "web", image: "nginx:1.27" }),
    );
    client.close();
    const id = deployment?.id ?? "";
    const watching = cli(["deployments", "watch", id]);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    t.is((await cli(["deployments", "cancel", id, "--reason", "changed my mind"])).code, 0);
    const watched = await watching;
    t.is(watched.code, 1);
    t.regex(watched.stdout, /^\[\d{4}-\d\d-\d\dT[\d:]+Z\] queued: queued for agent agt_\w+$/m);
    t.regex(
      watched.stdout,
      /^\[[\dT:Z-]+\] cancelled: cancelled by an admin before delivery: changed my mind; the workload was not changed$/m,
    );
    t.regex(watched.stderr, /^error: deployment dep_\w+ ended cancelled/);

    const got = await cli(["deployments", "get", id]);
    t.is(got.code, 0, got.stderr);
    t.regex(got.stdout, new RegExp(`^ID +${id}$`, "m"));
    t.regex(got.stdout, /^STATE +cancelled$/m);
    t.regex(got.stdout, /^TARGET +shop\/deployment\/web$/m);
    t.regex(got.stdout, new RegExp(`^REQUESTED BY +deploy key ${keyId}$`, "m"));
    t.regex(got.stdout, /^SEQ +TIME +STATE +MESSAGE$/m);
    t.is(got.stdout.match(/changed my mind/g)?.length, 2, "once in the fields, once in the timeline");
    const json = JSON.parse((await cli(["deployments", "get", id, "-o", "json"])).stdout) as {
      deployment: { id: string; state: string };
      events: unknown[];
    };
    t.is(json.deployment.state, "DEPLOYMENT_STATE_CANCELLED");
    t.is(json.events.length, 2);
    const ndjson = await cli(["deployments", "watch", id, "--json"]);
    const lines = ndjson.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: { seq: number } });
    t.deepEqual(
      lines.map((l) => l.event.seq),
      [1, 2],
    );
    const missing = await cli(["deployments", "get", "dep_missing"]);
    t.regex(missing.stderr, /^error: NOT_FOUND: deployment dep_missing not found/);
    const rollback = await cli(["deployments", "rollback", id]);
    t.is(rollback.code, 1);
    t.regex(rollback.stderr, /^error: FAILED_PRECONDITION: /);
  },
);
