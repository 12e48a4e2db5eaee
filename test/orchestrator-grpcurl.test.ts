// The built orchestrator as a real client sees it: grpcurl over reflection, health, HTTP probes,
// TLS, and a clean exit on SIGTERM. Needs `npm run build` and grpcurl (`npm run testbed -- up`).
import test from "ava";
import { cleanEnv, runCli, startOrchestrator } from "./support/orchestrator.js";
import { findGrpcurl, grpcurl, selfSignedCert, tempDir } from "./support/tools.js";

test.before(() => {
  // Fail (never skip) when grpcurl is missing: the message says how to get it.
  findGrpcurl();
});

test("plaintext: reflection lists and describes every service, health is SERVING, SIGTERM exits 0", async (t) => {
  const orch = await startOrchestrator();
  t.teardown(() => orch.stop("SIGKILL"));
  t.regex(orch.grpcAddress, /^127\.0\.0\.1:\d+$/);
  t.regex(orch.httpAddress, /^127\.0\.0\.1:\d+$/);

  const list = await grpcurl(["-plaintext", orch.grpcAddress, "list"]);
  t.is(list.code, 0, list.stderr);
  const services = list.stdout.trim().split("\n");
  for (const name of [
    "k8sdeploy.v1.AgentService",
    "k8sdeploy.v1.DeployService",
    "k8sdeploy.v1.AdminService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
  ]) {
    t.true(services.includes(name), `${name} missing from:\n${list.stdout}`);
  }

  const describe = await grpcurl(["-plaintext", orch.grpcAddress, "describe", "k8sdeploy.v1.DeployService"]);
  t.is(describe.code, 0, describe.stderr);
  t.regex(
    describe.stdout,
    /rpc Deploy \( \.k8sdeploy\.v1\.DeployRequest \) returns \( \.k8sdeploy\.v1\.DeployResponse \)/,
  );

  // A message that imports google/protobuf/timestamp.proto resolves too (raw descriptors).
  const message = await grpcurl(["-plaintext", orch.grpcAddress, "describe", "k8sdeploy.v1.Agent"]);
  t.is(message.code, 0, message.stderr);
  t.regex(message.stdout, /\.google\.protobuf\.Timestamp created_at = 3;/);

  const health = await grpcurl(["-plaintext", "-d", '{"service":""}', orch.grpcAddress, "grpc.health.v1.Health/Check"]);
  t.is(health.code, 0, health.stderr);
  t.is(JSON.parse(health.stdout).status, "SERVING");

  // The health proto's map field survives reflection (grpcurl rejects protobufjs' entry names).
  const healthList = await grpcurl(["-plaintext", "-d", "{}", orch.grpcAddress, "grpc.health.v1.Health/List"]);
  t.is(healthList.code, 0, healthList.stderr);
  t.is(JSON.parse(healthList.stdout).statuses[""].status, "SERVING");

  const healthz = await fetch(`${orch.httpUrl}/healthz`);
  t.is(healthz.status, 200);
  t.is((await healthz.text()).trim(), "ok");
  t.is((await fetch(`${orch.httpUrl}/readyz`)).status, 200);
  const metricsText = await (await fetch(`${orch.httpUrl}/metrics`)).text();
  t.regex(metricsText, /^k8sdeploy_agents_connected \d+$/m);
  t.regex(metricsText, /^process_cpu_seconds_total /m);
  // Client-side routes fall back to the dashboard once it is built; a missing file is a 404.
  t.is((await fetch(`${orch.httpUrl}/no-such-file.js`)).status, 404);

  // Only the path of the generated admin token is logged, never the token.
  t.true(orch.logs().includes(`${orch.dataDir}/admin-token`));
  t.false(orch.logs().includes(orch.adminToken));

  const started = Date.now();
  const status = await orch.stop("SIGTERM");
  t.deepEqual(status, { code: 0, signal: null }, orch.logs());
  t.true(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  t.true(orch.logEntries().some((e) => e.msg === "stopped"));
});

test("a bad K8SDEPLOY_GRPC_LISTEN stops serve with a message naming the variable", async (t) => {
  const result = await runCli(["serve"], {
    env: cleanEnv({ K8SDEPLOY_GRPC_LISTEN: "abc", K8SDEPLOY_DATA_DIR: await tempDir() }),
    timeoutMs: 30_000,
  });
  t.not(result.code, 0);
  t.is(result.signal, null);
  t.regex(result.stderr, /K8SDEPLOY_GRPC_LISTEN: "abc" is not host:port/);
});

test("TLS: grpcurl with the CA lists services; plaintext is refused", async (t) => {
  const dir = await tempDir();
  const { cert, key } = await selfSignedCert(dir);
  const orch = await startOrchestrator({ env: { K8SDEPLOY_TLS_CERT_FILE: cert, K8SDEPLOY_TLS_KEY_FILE: key } });
  t.teardown(() => orch.stop("SIGKILL"));
  t.true(orch.logEntries().some((e) => e.msg === "listening" && e.tls === true));

  const list = await grpcurl(["-cacert", cert, orch.grpcAddress, "list"]);
  t.is(list.code, 0, list.stderr);
  t.true(list.stdout.includes("k8sdeploy.v1.AdminService"));
  t.true(list.stdout.includes("grpc.health.v1.Health"));

  const health = await grpcurl([
    "-cacert",
    cert,
    "-d",
    '{"service":""}',
    orch.grpcAddress,
    "grpc.health.v1.Health/Check",
  ]);
  t.is(health.code, 0, health.stderr);
  t.is(JSON.parse(health.stdout).status, "SERVING");

  const untrusted = await grpcurl(["-max-time", "3", orch.grpcAddress, "list"]);
  t.not(untrusted.code, 0);
  const plaintext = await grpcurl(["-plaintext", "-max-time", "3", orch.grpcAddress, "list"]);
  t.not(plaintext.code, 0);

  t.is((await orch.stop("SIGTERM")).code, 0);
});
