import * as fs from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import test from "ava";
import { ClientConfigError, loadClientConfig } from "./client-config.js";
import { deploymentStateName, parseDeploymentState } from "./output.js";

const TOKEN = "admin-token-admin-token-1";

function tempDir(): string {
  return fs.mkdtempSync(path.join(tmpdir(), "k8sd-client-"));
}

test("defaults to plaintext 127.0.0.1:50051", (t) => {
  const c = loadClientConfig({ K8SDEPLOY_ADMIN_TOKEN: TOKEN });
  t.like(c, { server: "http://127.0.0.1:50051", target: "127.0.0.1:50051", tls: false, ca: undefined });
  t.is(c.adminToken, TOKEN);
  t.is(c.adminTokenSource, "K8SDEPLOY_ADMIN_TOKEN");
});

test("https URLs use TLS, default port 443, IPv6 hosts keep brackets", (t) => {
  t.like(loadClientConfig({ K8SDEPLOY_ADMIN_TOKEN: TOKEN, K8SDEPLOY_SERVER: "https://k8sdeploy.example.com" }), {
    target: "k8sdeploy.example.com:443",
    tls: true,
  });
  t.like(loadClientConfig({ K8SDEPLOY_ADMIN_TOKEN: TOKEN, K8SDEPLOY_SERVER: "http://[::1]:50051/" }), {
    target: "[::1]:50051",
    tls: false,
  });
});

test("bad K8SDEPLOY_SERVER values name the variable", (t) => {
  for (const server of ["localhost:50051", "grpc://x:1", "http://x:1/api", "http://u:p@x:1", "::"]) {
    const err = t.throws(() => loadClientConfig({ K8SDEPLOY_ADMIN_TOKEN: TOKEN, K8SDEPLOY_SERVER: server }), {
      instanceOf: ClientConfigError,
    });
    t.true(err?.message.startsWith(`K8SDEPLOY_SERVER: ${JSON.stringify(server)} `), err?.message);
  }
});

test("K8SDEPLOY_CA_FILE: https only, must be a readable PEM certificate", (t) => {
  const dir = tempDir();
  const ca = path.join(dir, "ca.pem");
  fs.writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  const ok = loadClientConfig({ K8SDEPLOY_ADMIN_TOKEN: TOKEN, K8SDEPLOY_SERVER: "https://h:1", K8SDEPLOY_CA_FILE: ca });
  t.true(ok.ca?.toString().includes("BEGIN CERTIFICATE"));
  t.throws(() => loadClientConfig({ K8SDEPLOY_ADMIN_TOKEN: TOKEN, K8SDEPLOY_CA_FILE: ca }), {
    message: "K8SDEPLOY_CA_FILE is set but K8SDEPLOY_SERVER is not an https:// URL",
  });
  t.throws(
    () =>
      loadClientConfig({
        K8SDEPLOY_ADMIN_TOKEN: TOKEN,
        K8SDEPLOY_SERVER: "https://h:1",
        K8SDEPLOY_CA_FILE: path.join(dir, "missing.pem"),
      }),
    { message: /^K8SDEPLOY_CA_FILE: ".*missing\.pem" cannot be read \(ENOENT\)$/ },
  );
  const notPem = path.join(dir, "x.txt");
  fs.writeFileSync(notPem, "hello");
  t.throws(
    () =>
      loadClientConfig({ K8SDEPLOY_ADMIN_TOKEN: TOKEN, K8SDEPLOY_SERVER: "https://h:1", K8SDEPLOY_CA_FILE: notPem }),
    { message: /holds no PEM certificate/ },
  );
});

test("admin token falls back to <data dir>/admin-token", (t) => {
  const dir = tempDir();
  t.throws(() => loadClientConfig({ K8SDEPLOY_DATA_DIR: dir }), {
    instanceOf: ClientConfigError,
    message: /^no admin token: set K8SDEPLOY_ADMIN_TOKEN, or K8SDEPLOY_DATA_DIR to the server's data directory/,
  });
  fs.writeFileSync(path.join(dir, "admin-token"), `${TOKEN}\n`);
  const c = loadClientConfig({ K8SDEPLOY_DATA_DIR: dir });
  t.is(c.adminToken, TOKEN);
  t.is(c.adminTokenSource, path.join(dir, "admin-token"));
  const env = loadClientConfig({ K8SDEPLOY_DATA_DIR: dir, K8SDEPLOY_ADMIN_TOKEN: "other-token-from-env-xxxxx" });
  t.is(env.adminToken, "other-token-from-env-xxxxx");
});

test("a token that cannot be sent as metadata is refused without echoing it", (t) => {
  const err = t.throws(() => loadClientConfig({ K8SDEPLOY_ADMIN_TOKEN: "secret with spaces" }));
  t.false(err?.message.includes("secret"));
});

test("--state names", (t) => {
  t.is(deploymentStateName(DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK), "rolled_back");
  t.deepEqual(parseDeploymentState("failed"), [DeploymentState.DEPLOYMENT_STATE_FAILED]);
  t.deepEqual(parseDeploymentState("in-progress", [DeploymentState.DEPLOYMENT_STATE_QUEUED]), [
    DeploymentState.DEPLOYMENT_STATE_QUEUED,
    DeploymentState.DEPLOYMENT_STATE_IN_PROGRESS,
  ]);
  t.deepEqual(parseDeploymentState("DEPLOYMENT_STATE_SUCCEEDED"), [DeploymentState.DEPLOYMENT_STATE_SUCCEEDED]);
  t.throws(() => parseDeploymentState("unspecified"), { message: /^expected one of queued, delivered/ });
  t.throws(() => parseDeploymentState("nope"));
});
