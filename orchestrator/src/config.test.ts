import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { hostname, tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { ConfigError, configMarkdown, configTable, configVariables, loadConfig } from "./config.js";
import { redisTarget } from "./store/redis-url.js";

const TOKEN = "t".repeat(24);

function tempDir(): string {
  return fs.mkdtempSync(path.join(tmpdir(), "k8sd-config-"));
}

/** Env with a token (so no file is written) plus overrides. */
function env(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return { K8SDEPLOY_ADMIN_TOKEN: TOKEN, ...overrides };
}

function configError(t: import("ava").ExecutionContext, e: NodeJS.ProcessEnv): ConfigError {
  const err = t.throws(() => loadConfig(e), { instanceOf: ConfigError });
  return err as ConfigError;
}

test("defaults", (t) => {
  const c = loadConfig(env());
  t.deepEqual(c.grpcListen, { host: "0.0.0.0", port: 50051 });
  t.deepEqual(c.httpListen, { host: "0.0.0.0", port: 8080 });
  t.is(c.redisUrl, undefined);
  t.is(c.adminToken, TOKEN);
  t.deepEqual(c.adminTokenSource, { kind: "env" });
  t.is(c.dataDir, path.resolve(".k8sdeploy"));
  t.is(c.tls, undefined);
  t.regex(c.replicaId, new RegExp(`^${hostname().replace(/[.]/g, "\\.")}-[0-9a-f]{6}$`));
  t.is(c.logLevel, "info");
  t.is(c.keepaliveSeconds, 30);
  t.is(c.keepaliveMinSeconds, 20);
  t.is(c.maxConnectionAgeSeconds, 1800);
  t.is(c.maxConnectionAgeGraceSeconds, 30);
  t.is(c.describeTimeoutSeconds, 10);
  t.deepEqual(c.corsOrigins, []);
  t.is(c.shutdownGraceSeconds, 10);
  t.is(c.redisWaitReplicas, 0);
  t.is(c.maxConcurrentCalls, 256);
  t.is(c.retentionSeconds, 30 * 86_400);
  t.is(c.memoryMaxDeployments, 10_000);
});

test("a Redis Cluster by seed nodes waits for one replica unless told otherwise", (t) => {
  const cluster = loadConfig(
    env({ K8SDEPLOY_REDIS_URL: "redis+cluster://u:p%40ss@10.0.0.1:7000,[::1]:7001,redis-2:7002" }),
  );
  t.is(cluster.redisWaitReplicas, 1);
  t.deepEqual(redisTarget(cluster.redisUrl ?? ""), {
    kind: "cluster",
    nodes: [
      { host: "10.0.0.1", port: 7000 },
      { host: "::1", port: 7001 },
      { host: "redis-2", port: 7002 },
    ],
    username: "u",
    password: "p@ss",
    tls: false,
  });
  t.is(redisTarget("rediss+cluster://h:1").kind === "cluster" && redisTarget("rediss+cluster://h:1").tls, true);
  const off = loadConfig(env({ K8SDEPLOY_REDIS_URL: "redis+cluster://h:7000", K8SDEPLOY_REDIS_WAIT_REPLICAS: "0" }));
  t.is(off.redisWaitReplicas, 0);
  const single = loadConfig(env({ K8SDEPLOY_REDIS_URL: "redis://h:6379", K8SDEPLOY_REDIS_WAIT_REPLICAS: "2" }));
  t.is(single.redisWaitReplicas, 2);
  const limits = loadConfig(
    env({
      K8SDEPLOY_MAX_CONCURRENT_CALLS: "8",
      K8SDEPLOY_RETENTION_DAYS: "1",
      K8SDEPLOY_MEMORY_MAX_DEPLOYMENTS: "100",
    }),
  );
  t.is(limits.maxConcurrentCalls, 8);
  t.is(limits.retentionSeconds, 86_400);
  t.is(limits.memoryMaxDeployments, 100);
});

test("replica ids differ between loads by default", (t) => {
  t.not(loadConfig(env()).replicaId, loadConfig(env()).replicaId);
});

test("empty values count as unset", (t) => {
  const c = loadConfig(env({ K8SDEPLOY_GRPC_LISTEN: "", K8SDEPLOY_KEEPALIVE_SECONDS: " ", K8SDEPLOY_REDIS_URL: "" }));
  t.is(c.grpcListen.port, 50051);
  t.is(c.keepaliveSeconds, 30);
  t.is(c.redisUrl, undefined);
});

test("parses explicit values", (t) => {
  const dir = tempDir();
  const c = loadConfig(
    env({
      K8SDEPLOY_GRPC_LISTEN: "[::]:0",
      K8SDEPLOY_HTTP_LISTEN: "127.0.0.1:9090",
      K8SDEPLOY_REDIS_URL: "rediss://user:pw@redis.example:6380/2",
      K8SDEPLOY_DATA_DIR: dir,
      K8SDEPLOY_REPLICA_ID: "orch-1",
      K8SDEPLOY_LOG_LEVEL: "DEBUG",
      K8SDEPLOY_KEEPALIVE_SECONDS: "10",
      K8SDEPLOY_KEEPALIVE_MIN_SECONDS: "5",
      K8SDEPLOY_MAX_CONNECTION_AGE_SECONDS: "0",
      K8SDEPLOY_MAX_CONNECTION_AGE_GRACE_SECONDS: "0",
      K8SDEPLOY_DESCRIBE_TIMEOUT_SECONDS: "120",
      K8SDEPLOY_CORS_ORIGINS: " https://App.example.com , http://localhost:5173/ ,",
      K8SDEPLOY_SHUTDOWN_GRACE_SECONDS: "0",
    }),
  );
  t.deepEqual(c.grpcListen, { host: "::", port: 0 });
  t.deepEqual(c.httpListen, { host: "127.0.0.1", port: 9090 });
  t.is(c.redisUrl, "rediss://user:pw@redis.example:6380/2");
  t.is(c.dataDir, dir);
  t.is(c.replicaId, "orch-1");
  t.is(c.logLevel, "debug");
  t.is(c.keepaliveSeconds, 10);
  t.is(c.keepaliveMinSeconds, 5);
  t.is(c.maxConnectionAgeSeconds, 0);
  t.is(c.maxConnectionAgeGraceSeconds, 0);
  t.is(c.describeTimeoutSeconds, 120);
  t.deepEqual(c.corsOrigins, ["https://app.example.com", "http://localhost:5173"]);
  t.is(c.shutdownGraceSeconds, 0);
  t.deepEqual(loadConfig(env({ K8SDEPLOY_CORS_ORIGINS: "*" })).corsOrigins, ["*"]);
});

const bad: [variable: string, value: string, message: RegExp][] = [
  ["K8SDEPLOY_GRPC_LISTEN", "abc", /^K8SDEPLOY_GRPC_LISTEN: "abc" is not host:port/],
  ["K8SDEPLOY_GRPC_LISTEN", "127.0.0.1:70000", /"127\.0\.0\.1:70000" is not host:port/],
  ["K8SDEPLOY_GRPC_LISTEN", ":50051", /is not host:port/],
  ["K8SDEPLOY_HTTP_LISTEN", "localhost", /^K8SDEPLOY_HTTP_LISTEN: "localhost" is not host:port/],
  [
    "K8SDEPLOY_REDIS_URL",
    "http://redis:6379",
    /^K8SDEPLOY_REDIS_URL: scheme "http:" is not redis:, rediss:, redis\+cluster:/,
  ],
  [
    "K8SDEPLOY_REDIS_URL",
    "redis+cluster://",
    /^K8SDEPLOY_REDIS_URL: a redis\+cluster:\/\/ URL needs at least one seed node/,
  ],
  ["K8SDEPLOY_REDIS_URL", "redis+cluster://a:1,b", /^K8SDEPLOY_REDIS_URL: cluster node "b" is not host:port/],
  ["K8SDEPLOY_REDIS_WAIT_REPLICAS", "two", /^K8SDEPLOY_REDIS_WAIT_REPLICAS: "two" is not a whole number 0\.\.16/],
  ["K8SDEPLOY_MAX_CONCURRENT_CALLS", "0", /^K8SDEPLOY_MAX_CONCURRENT_CALLS: 0 is out of range 1\.\.100000/],
  ["K8SDEPLOY_REDIS_URL", "redis-host:6379", /^K8SDEPLOY_REDIS_URL: scheme "redis-host:"/],
  ["K8SDEPLOY_REDIS_URL", "not a url", /^K8SDEPLOY_REDIS_URL: is not a URL/],
  ["K8SDEPLOY_REDIS_URL", "redis://:hunter2@redis/x", /^K8SDEPLOY_REDIS_URL: path "\/x" is not a database number/],
  ["K8SDEPLOY_ADMIN_TOKEN", "short-secret", /^K8SDEPLOY_ADMIN_TOKEN: must be at least 24 characters \(has 12\)/],
  ["K8SDEPLOY_ADMIN_TOKEN", "has a space in the middle of it", /^K8SDEPLOY_ADMIN_TOKEN: must be printable ASCII/],
  ["K8SDEPLOY_REPLICA_ID", "bad id", /^K8SDEPLOY_REPLICA_ID: "bad id" must be 1\.\.128 letters/],
  ["K8SDEPLOY_LOG_LEVEL", "verbose", /^K8SDEPLOY_LOG_LEVEL: "verbose" is not one of fatal, error/],
  ["K8SDEPLOY_KEEPALIVE_SECONDS", "5", /^K8SDEPLOY_KEEPALIVE_SECONDS: 5 is out of range 10\.\.55$/],
  ["K8SDEPLOY_KEEPALIVE_SECONDS", "56", /^K8SDEPLOY_KEEPALIVE_SECONDS: 56 is out of range 10\.\.55$/],
  ["K8SDEPLOY_KEEPALIVE_SECONDS", "30s", /^K8SDEPLOY_KEEPALIVE_SECONDS: "30s" is not a whole number/],
  ["K8SDEPLOY_KEEPALIVE_MIN_SECONDS", "0", /^K8SDEPLOY_KEEPALIVE_MIN_SECONDS: 0 is out of range 1\.\.3600$/],
  [
    "K8SDEPLOY_MAX_CONNECTION_AGE_SECONDS",
    "30",
    /^K8SDEPLOY_MAX_CONNECTION_AGE_SECONDS: 30 must be 0 \(unlimited\) or at least 60$/,
  ],
  ["K8SDEPLOY_MAX_CONNECTION_AGE_SECONDS", "-1", /is not a whole number/],
  [
    "K8SDEPLOY_MAX_CONNECTION_AGE_GRACE_SECONDS",
    "3601",
    /^K8SDEPLOY_MAX_CONNECTION_AGE_GRACE_SECONDS: 3601 is out of range 0\.\.3600$/,
  ],
  ["K8SDEPLOY_DESCRIBE_TIMEOUT_SECONDS", "0", /^K8SDEPLOY_DESCRIBE_TIMEOUT_SECONDS: 0 is out of range 1\.\.120$/],
  ["K8SDEPLOY_DESCRIBE_TIMEOUT_SECONDS", "121", /out of range 1\.\.120/],
  ["K8SDEPLOY_CORS_ORIGINS", "example.com", /^K8SDEPLOY_CORS_ORIGINS: "example\.com" is not an origin/],
  ["K8SDEPLOY_CORS_ORIGINS", "https://a.example/path", /"https:\/\/a\.example\/path" is not an origin/],
  ["K8SDEPLOY_CORS_ORIGINS", "*,https://a.example", /^K8SDEPLOY_CORS_ORIGINS: `\*` cannot be combined/],
  ["K8SDEPLOY_SHUTDOWN_GRACE_SECONDS", "1.5", /^K8SDEPLOY_SHUTDOWN_GRACE_SECONDS: "1\.5" is not a whole number/],
];

for (const [variable, value, message] of bad) {
  test(`bad ${variable}=${JSON.stringify(value)} names the variable`, (t) => {
    const err = configError(t, env({ [variable]: value }));
    t.regex(err.message, message);
    t.deepEqual(
      err.issues.map((i) => i.variable),
      [variable],
    );
  });
}

test("secrets are never echoed in errors", (t) => {
  const redis = configError(t, env({ K8SDEPLOY_REDIS_URL: "redis://:hunter2@redis/x" }));
  t.false(redis.message.includes("hunter2"));
  const token = configError(t, env({ K8SDEPLOY_ADMIN_TOKEN: "sekrit-sekrit" }));
  t.false(token.message.includes("sekrit"));
  const unparsable = configError(t, env({ K8SDEPLOY_REDIS_URL: "redis://:hunter2@[bad" }));
  t.false(unparsable.message.includes("hunter2"));
});

test("every bad variable is reported at once", (t) => {
  const err = configError(t, env({ K8SDEPLOY_GRPC_LISTEN: "x", K8SDEPLOY_LOG_LEVEL: "loud" }));
  t.deepEqual(err.issues.map((i) => i.variable).sort(), ["K8SDEPLOY_GRPC_LISTEN", "K8SDEPLOY_LOG_LEVEL"]);
  t.is(err.message.split("\n").length, 2);
});

// ---------------------------------------------------------------------------------------------
// TLS

function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"].concat([
      "-subj",
      "/CN=localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ]),
    { stdio: "ignore" },
  );
  return { cert, key };
}

test("TLS: both or neither", (t) => {
  const dir = tempDir();
  const { cert, key } = selfSigned(dir, "a");
  const onlyCert = configError(t, env({ K8SDEPLOY_TLS_CERT_FILE: cert }));
  t.is(onlyCert.message, "K8SDEPLOY_TLS_KEY_FILE: must be set when K8SDEPLOY_TLS_CERT_FILE is set (both or neither)");
  const onlyKey = configError(t, env({ K8SDEPLOY_TLS_KEY_FILE: key }));
  t.is(onlyKey.message, "K8SDEPLOY_TLS_CERT_FILE: must be set when K8SDEPLOY_TLS_KEY_FILE is set (both or neither)");
  const c = loadConfig(env({ K8SDEPLOY_TLS_CERT_FILE: cert, K8SDEPLOY_TLS_KEY_FILE: key }));
  t.deepEqual(c.tls, { certFile: cert, keyFile: key });
});

test("TLS: files are checked at load", (t) => {
  const dir = tempDir();
  const a = selfSigned(dir, "a");
  const b = selfSigned(dir, "b");
  const missing = path.join(dir, "missing.pem");

  const noCert = configError(t, env({ K8SDEPLOY_TLS_CERT_FILE: missing, K8SDEPLOY_TLS_KEY_FILE: a.key }));
  t.is(noCert.message, `K8SDEPLOY_TLS_CERT_FILE: ${JSON.stringify(missing)} does not exist`);

  const noKey = configError(t, env({ K8SDEPLOY_TLS_CERT_FILE: a.cert, K8SDEPLOY_TLS_KEY_FILE: missing }));
  t.is(noKey.message, `K8SDEPLOY_TLS_KEY_FILE: ${JSON.stringify(missing)} does not exist`);

  const dirAsCert = configError(t, env({ K8SDEPLOY_TLS_CERT_FILE: dir, K8SDEPLOY_TLS_KEY_FILE: a.key }));
  t.regex(dirAsCert.message, /^K8SDEPLOY_TLS_CERT_FILE: ".*" is not a file$/);

  const swapped = configError(t, env({ K8SDEPLOY_TLS_CERT_FILE: a.key, K8SDEPLOY_TLS_KEY_FILE: a.cert }));
  t.deepEqual(
    swapped.issues.map((i) => i.variable),
    ["K8SDEPLOY_TLS_CERT_FILE", "K8SDEPLOY_TLS_KEY_FILE"],
  );
  t.regex(swapped.message, /is not a PEM certificate/);

  const mismatch = configError(t, env({ K8SDEPLOY_TLS_CERT_FILE: a.cert, K8SDEPLOY_TLS_KEY_FILE: b.key }));
  t.regex(mismatch.message, /^K8SDEPLOY_TLS_KEY_FILE: ".*b\.key" does not match the certificate/);
});

// ---------------------------------------------------------------------------------------------
// Admin token file

test("admin token: generated into <data dir>/admin-token with mode 0600, then reused", (t) => {
  const dir = path.join(tempDir(), "nested", "data");
  const first = loadConfig({ K8SDEPLOY_DATA_DIR: dir });
  const file = path.join(dir, "admin-token");
  t.deepEqual(first.adminTokenSource, { kind: "file", path: file, created: true, mode: 0o600 });
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  t.is(fs.statSync(dir).mode & 0o777, 0o700);
  t.true(first.adminToken.length >= 24);
  t.is(fs.readFileSync(file, "utf8").trim(), first.adminToken);

  const second = loadConfig({ K8SDEPLOY_DATA_DIR: dir });
  t.is(second.adminToken, first.adminToken);
  t.deepEqual(second.adminTokenSource, { kind: "file", path: file, created: false, mode: 0o600 });
});

test("admin token: the variable wins and no file is written", (t) => {
  const dir = tempDir();
  const c = loadConfig({ K8SDEPLOY_DATA_DIR: dir, K8SDEPLOY_ADMIN_TOKEN: ` ${TOKEN} ` });
  t.is(c.adminToken, TOKEN);
  t.false(fs.existsSync(path.join(dir, "admin-token")));
});

test("admin token: an existing file is used as is, and a bad one is an error", (t) => {
  const dir = tempDir();
  const file = path.join(dir, "admin-token");
  fs.writeFileSync(file, `${"a".repeat(30)}\n`, { mode: 0o644 });
  const c = loadConfig({ K8SDEPLOY_DATA_DIR: dir });
  t.is(c.adminToken, "a".repeat(30));
  t.like(c.adminTokenSource, { kind: "file", created: false, mode: 0o644 });

  fs.writeFileSync(file, "short\n");
  const err = configError(t, { K8SDEPLOY_DATA_DIR: dir });
  t.is(
    err.message,
    `K8SDEPLOY_ADMIN_TOKEN: unset, and the token in ${JSON.stringify(file)} must be at least 24 characters (has 5)`,
  );
  t.false(err.message.includes("short"));
});

test("admin token: an unusable data dir names K8SDEPLOY_DATA_DIR", (t) => {
  const file = path.join(tempDir(), "a-file");
  fs.writeFileSync(file, "");
  const err = configError(t, { K8SDEPLOY_DATA_DIR: file });
  t.regex(err.message, /^K8SDEPLOY_DATA_DIR: ".*a-file" cannot be created \(EEXIST\)$/);
});

test("nothing is written when validation fails", (t) => {
  const dir = path.join(tempDir(), "data");
  configError(t, { K8SDEPLOY_DATA_DIR: dir, K8SDEPLOY_GRPC_LISTEN: "nope" });
  t.false(fs.existsSync(dir));
});

// ---------------------------------------------------------------------------------------------
// Docs

test("configTable documents exactly the variables loadConfig reads", (t) => {
  t.deepEqual(
    configTable.map((r) => r.variable),
    [...configVariables],
  );
  for (const row of configTable) t.true(row.description.length > 0, row.variable);
});

/** Markdown with table cells trimmed, so column padding does not matter. */
function normalizeMarkdown(md: string): string {
  return md
    .split("\n")
    .map((line) =>
      line.startsWith("|")
        ? line
            .split(/(?<!\\)\|/)
            .map((c) => c.trim().replace(/^-{3,}$/, "---"))
            .join("|")
        : line.trimEnd(),
    )
    .join("\n")
    .trim();
}

test("orchestrator/CONFIG.md is generated from configTable", (t) => {
  const file = fileURLToPath(new URL("../CONFIG.md", import.meta.url));
  if (process.env.K8SDEPLOY_UPDATE_DOCS === "1") fs.writeFileSync(file, configMarkdown());
  const current = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  t.is(
    normalizeMarkdown(current),
    normalizeMarkdown(configMarkdown()),
    "orchestrator/CONFIG.md is stale: run K8SDEPLOY_UPDATE_DOCS=1 npx ava orchestrator/src/config.test.ts",
  );
});

// ---------------------------------------------------------------------------------------------
// Hardening settings: HTTP TLS, GitHub server URL, the failed-authentication limit

test("HTTP TLS, GitHub server URL and the auth failure limit: defaults and explicit values", (t) => {
  const d = loadConfig(env());
  t.is(d.httpTls, undefined);
  t.is(d.githubServerUrl, "https://github.com");
  t.is(d.authFailuresPerMinute, 30);
  const dir = tempDir();
  const a = selfSigned(dir, "h");
  const c = loadConfig(
    env({
      K8SDEPLOY_HTTP_TLS_CERT_FILE: a.cert,
      K8SDEPLOY_HTTP_TLS_KEY_FILE: a.key,
      K8SDEPLOY_GITHUB_SERVER_URL: "https://GHE.example.com:8443/",
      K8SDEPLOY_AUTH_FAILURES_PER_MINUTE: "5",
    }),
  );
  t.deepEqual(c.httpTls, { certFile: a.cert, keyFile: a.key });
  t.is(c.tls, undefined, "the gRPC pair is separate");
  t.is(c.githubServerUrl, "https://ghe.example.com:8443");
  t.is(c.authFailuresPerMinute, 5);
});

test("HTTP TLS, GitHub server URL and the auth failure limit: bad values name the variable", (t) => {
  const dir = tempDir();
  const a = selfSigned(dir, "a");
  const b = selfSigned(dir, "b");
  t.is(
    configError(t, env({ K8SDEPLOY_HTTP_TLS_KEY_FILE: a.key })).message,
    "K8SDEPLOY_HTTP_TLS_CERT_FILE: must be set when K8SDEPLOY_HTTP_TLS_KEY_FILE is set (both or neither)",
  );
  t.regex(
    configError(t, env({ K8SDEPLOY_HTTP_TLS_CERT_FILE: a.cert, K8SDEPLOY_HTTP_TLS_KEY_FILE: b.key })).message,
    /^K8SDEPLOY_HTTP_TLS_KEY_FILE: ".*b\.key" does not match the certificate in K8SDEPLOY_HTTP_TLS_CERT_FILE$/,
  );
  for (const value of [
    "github.com",
    "ftp://github.com",
    "https://ghe.example.com/org",
    "https://u:p@ghe.example.com",
  ]) {
    t.regex(
      configError(t, env({ K8SDEPLOY_GITHUB_SERVER_URL: value })).message,
      /^K8SDEPLOY_GITHUB_SERVER_URL: .* is not an origin like https:\/\/github\.example\.com/,
      value,
    );
  }
  t.regex(
    configError(t, env({ K8SDEPLOY_AUTH_FAILURES_PER_MINUTE: "0" })).message,
    /^K8SDEPLOY_AUTH_FAILURES_PER_MINUTE: 0 is out of range 1\.\.100000/,
  );
});

test("webhooks: defaults, explicit values, and bad values name the variable without echoing the key", (t) => {
  t.deepEqual(loadConfig(env()).webhooks, {
    key: undefined,
    maxAttempts: 8,
    backoffSeconds: 10,
    timeoutSeconds: 10,
    allowLoopback: false,
  });
  const key = Buffer.alloc(32, 9);
  const c = loadConfig(
    env({
      K8SDEPLOY_WEBHOOK_KEY: key.toString("base64"),
      K8SDEPLOY_WEBHOOK_MAX_ATTEMPTS: "3",
      K8SDEPLOY_WEBHOOK_BACKOFF_SECONDS: "1",
      K8SDEPLOY_WEBHOOK_TIMEOUT_SECONDS: "2",
      K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK: "true",
    }),
  );
  t.deepEqual(c.webhooks, { key, maxAttempts: 3, backoffSeconds: 1, timeoutSeconds: 2, allowLoopback: true });
  const short = Buffer.alloc(16, 1).toString("base64");
  const message = configError(t, env({ K8SDEPLOY_WEBHOOK_KEY: short })).message;
  t.is(message, "K8SDEPLOY_WEBHOOK_KEY: must decode to 32 bytes, not 16 (openssl rand -base64 32)");
  t.false(message.includes(short));
  t.regex(
    configError(t, env({ K8SDEPLOY_WEBHOOK_KEY: "not base64!" })).message,
    /^K8SDEPLOY_WEBHOOK_KEY: is not base64/,
  );
  t.regex(
    configError(t, env({ K8SDEPLOY_WEBHOOK_MAX_ATTEMPTS: "0" })).message,
    /^K8SDEPLOY_WEBHOOK_MAX_ATTEMPTS: 0 is out of range 1\.\.50/,
  );
  t.regex(
    configError(t, env({ K8SDEPLOY_WEBHOOK_TIMEOUT_SECONDS: "61" })).message,
    /^K8SDEPLOY_WEBHOOK_TIMEOUT_SECONDS: 61 is out of range 1\.\.60/,
  );
  t.regex(
    configError(t, env({ K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK: "yes" })).message,
    /^K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK: "yes" is not true or false/,
  );
});

test("agent release channel: variables, a manifest file, and what is wrong with them", (t) => {
  const image = `ghcr.io/k8sdeploy/agent:0.2.0@sha256:${"a".repeat(64)}`;
  t.is(loadConfig(env()).agentRelease, undefined);
  const c = loadConfig(
    env({
      K8SDEPLOY_AGENT_RELEASE_VERSION: "0.2.0",
      K8SDEPLOY_AGENT_RELEASE_IMAGE: image,
      K8SDEPLOY_AGENT_AUTO_UPDATE: "false",
      K8SDEPLOY_AGENT_UPDATE_CONCURRENCY: "3",
      K8SDEPLOY_AGENT_UPDATE_READY_SECONDS: "60",
      K8SDEPLOY_AGENT_UPDATE_INTERVAL_SECONDS: "5",
    }),
  );
  t.deepEqual(c.agentRelease, { kind: "env", release: { version: "0.2.0", image } });
  t.like(c, {
    agentAutoUpdate: false,
    agentUpdateConcurrency: 3,
    agentUpdateReadySeconds: 60,
    agentUpdateIntervalSeconds: 5,
  });
  t.like(loadConfig(env()), { agentAutoUpdate: true, agentUpdateConcurrency: 1, agentUpdateReadySeconds: 180 });

  const vars = (e: NodeJS.ProcessEnv) => configError(t, env(e)).issues.map((i) => `${i.variable}: ${i.message}`);
  t.regex(
    vars({ K8SDEPLOY_AGENT_RELEASE_VERSION: "0.2.0" })[0]!,
    /^K8SDEPLOY_AGENT_RELEASE_IMAGE: must be set together/,
  );
  t.regex(
    vars({ K8SDEPLOY_AGENT_RELEASE_VERSION: "two", K8SDEPLOY_AGENT_RELEASE_IMAGE: image })[0]!,
    /^K8SDEPLOY_AGENT_RELEASE_VERSION: version "two" is not a semantic version/,
  );
  t.regex(
    vars({
      K8SDEPLOY_AGENT_RELEASE_VERSION: "0.2.0",
      K8SDEPLOY_AGENT_RELEASE_IMAGE: "ghcr.io/k8sdeploy/agent:0.2.0",
    })[0]!,
    /^K8SDEPLOY_AGENT_RELEASE_IMAGE: image "ghcr.io\/k8sdeploy\/agent:0.2.0" is not pinned by digest/,
  );

  const dir = tempDir();
  const file = path.join(dir, "release.json");
  fs.writeFileSync(file, JSON.stringify({ version: "0.3.0", image }));
  t.deepEqual(loadConfig(env({ K8SDEPLOY_AGENT_RELEASE_FILE: file })).agentRelease, { kind: "file", path: file });
  fs.writeFileSync(file, "{");
  t.regex(
    vars({ K8SDEPLOY_AGENT_RELEASE_FILE: file })[0]!,
    /^K8SDEPLOY_AGENT_RELEASE_FILE: ".*release.json" is not JSON/,
  );
  t.regex(
    vars({ K8SDEPLOY_AGENT_RELEASE_FILE: path.join(dir, "nope.json") })[0]!,
    /^K8SDEPLOY_AGENT_RELEASE_FILE: ".*nope.json" cannot be read \(ENOENT\)/,
  );
  t.regex(
    vars({
      K8SDEPLOY_AGENT_RELEASE_FILE: file,
      K8SDEPLOY_AGENT_RELEASE_VERSION: "0.2.0",
      K8SDEPLOY_AGENT_RELEASE_IMAGE: image,
    })[0]!,
    /not both/,
  );
});

// ---------------------------------------------------------------------------------------------
// GitHub OIDC trust (issue 11)

test("OIDC issuer: GitHub.com by default, GitHub Enterprise and loopback http accepted, trailing slash dropped", (t) => {
  t.is(loadConfig(env()).oidcIssuer, "https://token.actions.githubusercontent.com");
  t.is(
    loadConfig(env({ K8SDEPLOY_OIDC_ISSUER: "https://ghe.example.com/_services/token/" })).oidcIssuer,
    "https://ghe.example.com/_services/token",
  );
  t.is(loadConfig(env({ K8SDEPLOY_OIDC_ISSUER: "http://127.0.0.1:4000" })).oidcIssuer, "http://127.0.0.1:4000");
});

for (const value of [
  "http://ghe.example.com",
  "token.actions.githubusercontent.com",
  "https://a.example/?x=1",
  "ftp://x",
]) {
  test(`bad K8SDEPLOY_OIDC_ISSUER=${JSON.stringify(value)} names the variable`, (t) => {
    const err = configError(t, env({ K8SDEPLOY_OIDC_ISSUER: value }));
    t.is(err.issues[0]?.variable, "K8SDEPLOY_OIDC_ISSUER");
    t.regex(err.message, /https, no query; http only on a loopback host/);
  });
}

test("public URL: unset by default; normalised to scheme://host[:port]; paths and other schemes refused", (t) => {
  t.is(loadConfig(env()).publicUrl, undefined);
  t.is(
    loadConfig(env({ K8SDEPLOY_PUBLIC_URL: "https://Deploy.Example.com:443/" })).publicUrl,
    "https://deploy.example.com",
  );
  t.is(loadConfig(env({ K8SDEPLOY_PUBLIC_URL: "http://10.0.0.5:50051" })).publicUrl, "http://10.0.0.5:50051");
  for (const bad of ["deploy.example.com:50051", "grpc://x:1", "https://x/api", "https://u:p@x"]) {
    const err = configError(t, env({ K8SDEPLOY_PUBLIC_URL: bad }));
    t.is(err.issues[0]?.variable, "K8SDEPLOY_PUBLIC_URL", bad);
  }
});
