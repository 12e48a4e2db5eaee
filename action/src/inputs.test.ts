import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { defaultIdempotencyKey, InputError, inputsFromEnv, parseServer, readInputs } from "./inputs.js";

const base = {
  server: "https://deploy.example.com:8443",
  key: "kdk_abc",
  namespace: "shop",
  deployment: "web",
  image: "registry.example.com/acme/web:1.2.3",
};

const getter =
  (values: Record<string, string>) =>
  (name: string): string =>
    values[name] ?? "";

function read(values: Record<string, string>, env: NodeJS.ProcessEnv = {}) {
  return readInputs(getter(values), env);
}

function error(values: Record<string, string>): InputError {
  return catchInputError(() => read(values));
}

function catchInputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error("expected an InputError");
}

test("unset optional inputs take the action.yml defaults", (t) => {
  const inputs = read(base);
  t.like(inputs, {
    server: { url: "https://deploy.example.com:8443", target: "deploy.example.com:8443", tls: true },
    key: "kdk_abc",
    namespace: "shop",
    workload: "web",
    kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    kindName: "Deployment",
    image: "registry.example.com/acme/web:1.2.3",
    wait: true,
    timeoutSeconds: 300,
    queueTimeoutSeconds: 120,
    queueTimeoutSet: false,
    rollbackOnFailure: false,
  });
  // Outside a workflow run: a random key, so that this run's own retries of Deploy are safe.
  t.regex(inputs.idempotencyKey, /^local-[0-9a-f-]{36}$/);
  t.not(read(base).idempotencyKey, inputs.idempotencyKey);
  t.deepEqual(inputs.containers, []);
  t.is(inputs.ca, undefined);
});

test("every input is read and converted", (t) => {
  const inputs = read({
    ...base,
    server: "http://127.0.0.1:50051",
    kind: "daemonSET",
    container: " web, sidecar ,,web\ninit-db",
    wait: "False",
    timeout: "900",
    "queue-timeout": "30",
    "rollback-on-failure": "TRUE",
    "idempotency-key": "release-42",
  });
  t.like(inputs, {
    server: { url: "http://127.0.0.1:50051", target: "127.0.0.1:50051", tls: false },
    kind: WorkloadKind.WORKLOAD_KIND_DAEMON_SET,
    kindName: "DaemonSet",
    wait: false,
    timeoutSeconds: 900,
    queueTimeoutSeconds: 30,
    queueTimeoutSet: true,
    rollbackOnFailure: true,
    idempotencyKey: "release-42",
  });
  t.deepEqual(inputs.containers, ["web", "sidecar", "init-db"]);
});

test("kind is case-insensitive", (t) => {
  t.is(read({ ...base, kind: "statefulset" }).kind, WorkloadKind.WORKLOAD_KIND_STATEFUL_SET);
  t.is(read({ ...base, kind: "StatefulSet" }).kindName, "StatefulSet");
  t.is(read({ ...base, kind: "DEPLOYMENT" }).kind, WorkloadKind.WORKLOAD_KIND_DEPLOYMENT);
});

test("server URLs: default ports, IPv6, and what is refused", (t) => {
  t.deepEqual(parseServer("https://deploy.example.com"), {
    url: "https://deploy.example.com:443",
    target: "deploy.example.com:443",
    tls: true,
  });
  t.is(parseServer("http://orchestrator").target, "orchestrator:80");
  t.is(parseServer("http://[::1]:50051/").target, "[::1]:50051");
  for (const bad of ["deploy.example.com:443", "grpc://x:1", "https://x:1/api", "https://u:p@x:1", "https://x?y=1"]) {
    const e = catchInputError(() => parseServer(bad));
    t.is(e.input, "server");
    t.regex(e.message, /^Input "server" must be/);
  }
});

test("required inputs are named when missing", (t) => {
  for (const name of ["server", "key", "namespace", "deployment", "image"] as const) {
    const { [name]: _, ...rest } = base;
    const e = error(rest);
    t.is(e.input, name);
    t.true(e.message.startsWith(`Input "${name}" is required and was not supplied.`), e.message);
  }
});

test("malformed inputs get messages naming the input and what is allowed", (t) => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ kind: "constructor" }, "kind", /got "constructor"/],
    [{ kind: "Job" }, "kind", /must be one of Deployment, StatefulSet, DaemonSet \(case-insensitive\); got "Job"/],
    [{ timeout: "abc" }, "timeout", /must be a whole number of seconds from 1 to 3600; got "abc"/],
    [{ timeout: "0" }, "timeout", /from 1 to 3600; got 0/],
    [{ timeout: "3601" }, "timeout", /from 1 to 3600; got 3601/],
    [{ timeout: "1.5" }, "timeout", /got "1.5"/],
    [{ "queue-timeout": "0" }, "queue-timeout", /from 1 to 604800; got 0/],
    [{ "queue-timeout": "2h" }, "queue-timeout", /must be a whole number of seconds from 1 to 604800; got "2h"/],
    [{ wait: "yes" }, "wait", /^Input "wait" must be true or false; got "yes"\.$/],
    [{ "rollback-on-failure": "1" }, "rollback-on-failure", /must be true or false/],
    [{ namespace: "Shop" }, "namespace", /^Input "namespace": namespace "Shop": must be a lowercase RFC 1123 label/],
    [
      { deployment: "web_app" },
      "deployment",
      /^Input "deployment": workload name "web_app": must be a lowercase RFC 1123 subdomain/,
    ],
    [{ container: "web,Side Car" }, "container", /container "Side Car": must be a lowercase RFC 1123 label/],
    [{ image: "registry.example.com/Web:1" }, "image", /^Input "image": invalid image reference .*must be lowercase/],
    [{ image: "web:1 --privileged" }, "image", /contains whitespace/],
    [{ image: "web@sha256:abc" }, "image", /needs exactly 64 lowercase hexadecimal characters/],
    [{ image: `web:${"x".repeat(600)}` }, "image", /at most 512/],
    [{ key: "kdk abc" }, "key", /must not contain whitespace/],
    [{ "idempotency-key": "k".repeat(129) }, "idempotency-key", /at most 128/],
    [{ "ca-file": "/nonexistent/ca.pem" }, "ca-file", /cannot read "\/nonexistent\/ca.pem" \(ENOENT\)/],
    [{ server: "http://x:1", "ca-file": "/etc/hostname" }, "ca-file", /only applies to an https:\/\/ server/],
  ];
  for (const [change, input, message] of cases) {
    const e = error({ ...base, ...change });
    t.is(e.input, input, JSON.stringify(change));
    t.regex(e.message, message);
    t.true(e.message.startsWith(`Input "${input}"`), e.message);
  }
});

test("the key never appears in an error message", (t) => {
  const key = "kdk_zq9x value";
  const e = error({ ...base, key });
  t.false(e.message.includes("zq9x"));
});

test("image references that registries accept are accepted", (t) => {
  for (const image of [
    "nginx",
    "nginx:1.27",
    "library/nginx:1.27-alpine",
    "localhost:5000/team/app:v1",
    "ghcr.io/acme/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "ghcr.io/acme/web:1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "[::1]:5000/app:1",
    "registry.example.com/a__b/c.d-e:TAG_1.0",
  ]) {
    t.is(read({ ...base, image }).image, image);
  }
});

test("ca-file: a PEM file is read for https servers", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "k8sdeploy-inputs-"));
  const pem = join(dir, "ca.pem");
  writeFileSync(pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  const inputs = read({ ...base, "ca-file": pem });
  t.is(inputs.caFile, pem);
  t.true(inputs.ca?.toString().includes("BEGIN CERTIFICATE"));
  const notPem = join(dir, "not.pem");
  writeFileSync(notPem, "hello");
  t.regex(error({ ...base, "ca-file": notPem }).message, /holds no PEM certificate/);
});

test("default idempotency key: same for a retried step, new for a new attempt, other step or other inputs", (t) => {
  const env = { GITHUB_RUN_ID: "100", GITHUB_RUN_ATTEMPT: "1", GITHUB_JOB: "deploy", GITHUB_ACTION: "web" };
  const key = read(base, env).idempotencyKey;
  t.regex(key, /^gha-100-1-[0-9a-f]{32}$/);
  t.true(key.length <= 128);
  t.is(read(base, env).idempotencyKey, key);
  t.not(read(base, { ...env, GITHUB_RUN_ATTEMPT: "2" }).idempotencyKey, key);
  t.regex(read(base, { ...env, GITHUB_RUN_ATTEMPT: "2" }).idempotencyKey, /^gha-100-2-/);
  t.not(read(base, { ...env, GITHUB_JOB: "deploy-eu" }).idempotencyKey, key);
  t.not(read(base, { ...env, GITHUB_ACTION: "web_2" }).idempotencyKey, key);
  t.not(read({ ...base, image: "registry.example.com/acme/web:1.2.4" }, env).idempotencyKey, key);
  t.not(read({ ...base, namespace: "shop-eu" }, env).idempotencyKey, key);
  // The deploy key is not part of it.
  t.is(read({ ...base, key: "kdk_other" }, env).idempotencyKey, key);
  // An explicit key wins; outside a workflow run a random one is used.
  t.is(read({ ...base, "idempotency-key": "mine" }, env).idempotencyKey, "mine");
  t.regex(read(base, {}).idempotencyKey, /^local-/);
  t.is(
    defaultIdempotencyKey(
      {
        server: "s",
        namespace: "n",
        kindName: "Deployment",
        workload: "w",
        containers: [],
        image: "i",
        timeoutSeconds: 1,
        rollbackOnFailure: false,
      },
      { GITHUB_RUN_ID: "not-a-number" },
    ),
    "",
  );
});

test("inputsFromEnv reads INPUT_<NAME> upper-cased with dashes kept, trimmed", (t) => {
  const get = inputsFromEnv({ "INPUT_ROLLBACK-ON-FAILURE": " true ", INPUT_IMAGE: "nginx" });
  t.is(get("rollback-on-failure"), "true");
  t.is(get("image"), "nginx");
  t.is(get("kind"), "");
});

test("an empty key with an ID token available selects GitHub OIDC with the audience input (default k8sdeploy)", (t) => {
  const { key: _, ...noKey } = base;
  const oidcEnv = { ACTIONS_ID_TOKEN_REQUEST_URL: "http://127.0.0.1:1/token", ACTIONS_ID_TOKEN_REQUEST_TOKEN: "x" };
  const inputs = readInputs((name) => noKey[name as keyof typeof noKey] ?? "", oidcEnv);
  t.is(inputs.key, "");
  t.is(inputs.oidcAudience, "k8sdeploy");
  const custom = readInputs((name) => ({ ...noKey, audience: "https://deploy.example.com" })[name] ?? "", oidcEnv);
  t.is(custom.oidcAudience, "https://deploy.example.com");
  t.is(readInputs((name) => base[name as keyof typeof base] ?? "", oidcEnv).oidcAudience, undefined, "a key wins");
  const e = catchInputError(() => readInputs((name) => noKey[name as keyof typeof noKey] ?? "", {}));
  t.is(e.input, "key");
  t.regex(e.message, /permissions: id-token: write/);
});
