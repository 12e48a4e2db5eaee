import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { ApiException } from "@kubernetes/client-node";
import test from "ava";
import { ExecutorError } from "./executor.js";
import { apiErrorInfo, describeOp, loadKubeConfig, toFailure } from "./kube.js";

const patchWeb = {
  verb: "patch",
  resource: "deployments.apps",
  kind: "deployment",
  name: "web",
  namespace: "default",
};

function apiError(code: number, reason: string, message: string) {
  return new ApiException(
    code,
    "Unknown API Status Code!",
    JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code }),
    { "content-type": "application/json", authorization: "should never show" },
  );
}

test("describeOp", (t) => {
  t.is(describeOp(patchWeb), 'patching deployment "web" in namespace "default"');
  t.is(describeOp({ verb: "list", resource: "namespaces" }), "listing namespaces");
});

test("403 keeps the API message and prefixes what we were doing", (t) => {
  const msg =
    'deployments.apps "web" is forbidden: User "x" cannot patch resource "deployments" in API group "apps" in the namespace "default"';
  t.deepEqual(toFailure(apiError(403, "Forbidden", msg), patchWeb), {
    reason: FailureReason.FAILURE_REASON_PERMISSION_DENIED,
    message: `patching deployment "web" in namespace "default": ${msg}`,
  });
});

test("403 without a Status body still names verb and resource", (t) => {
  const f = toFailure(new ApiException(403, "Forbidden", "", {}), patchWeb);
  t.is(f.reason, FailureReason.FAILURE_REASON_PERMISSION_DENIED);
  t.is(
    f.message,
    'patching deployment "web" in namespace "default": forbidden: the agent may not patch deployments.apps in namespace "default"',
  );
});

test("404 of a workload → WORKLOAD_NOT_FOUND; of something else → KUBERNETES_API", (t) => {
  t.deepEqual(toFailure(apiError(404, "NotFound", 'deployments.apps "web" not found'), { ...patchWeb, verb: "get" }), {
    reason: FailureReason.FAILURE_REASON_WORKLOAD_NOT_FOUND,
    message: 'deployment "web" not found in namespace "default"',
  });
  t.is(
    toFailure(apiError(404, "NotFound", 'pods "p" not found'), {
      verb: "delete",
      resource: "pods",
      name: "p",
      namespace: "x",
    }).reason,
    FailureReason.FAILURE_REASON_KUBERNETES_API,
  );
});

test("other errors → KUBERNETES_API with the status message and code, never headers", (t) => {
  const f = toFailure(apiError(500, "InternalError", "etcdserver: request timed out"), patchWeb);
  t.deepEqual(f, {
    reason: FailureReason.FAILURE_REASON_KUBERNETES_API,
    message: 'patching deployment "web" in namespace "default": etcdserver: request timed out (HTTP 500)',
  });
  const bare = toFailure(
    new ApiException(502, "Unknown API Status Code!", undefined, { authorization: "secret" }),
    patchWeb,
  );
  t.is(bare.message, 'patching deployment "web" in namespace "default": HTTP 502');
  t.false(bare.message.includes("secret"));
  t.is(
    toFailure(new ApiException(401, "Unauthorized", undefined, {}), patchWeb).message,
    `patching deployment "web" in namespace "default": the Kubernetes API rejected the agent's credentials (401 Unauthorized)`,
  );
});

test("network errors and ExecutorErrors", (t) => {
  const net = toFailure(new Error("request to https://10.0.0.1/apis failed, reason: connect ECONNREFUSED"), patchWeb);
  t.is(net.reason, FailureReason.FAILURE_REASON_KUBERNETES_API);
  t.regex(net.message, /^patching deployment "web" in namespace "default": request to .* ECONNREFUSED$/);
  t.deepEqual(toFailure(new ExecutorError(FailureReason.FAILURE_REASON_CONTAINER_NOT_FOUND, "m"), patchWeb), {
    reason: FailureReason.FAILURE_REASON_CONTAINER_NOT_FOUND,
    message: "m",
  });
});

test("watch errors carry statusCode", (t) => {
  t.deepEqual(apiErrorInfo(Object.assign(new Error("Forbidden"), { statusCode: 403 })), {
    code: 403,
    message: "HTTP 403 Forbidden",
  });
});

test.serial("loadKubeConfig: KUBECONFIG is used; nothing found is an error, not localhost:8080", (t) => {
  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME };
  const dir = mkdtempSync(join(tmpdir(), "k8sd-kube-"));
  try {
    const file = join(dir, "config");
    writeFileSync(
      file,
      "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://10.9.8.7:6443'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    );
    process.env.KUBECONFIG = file;
    t.is(loadKubeConfig().getCurrentCluster()?.server, "https://10.9.8.7:6443");
    delete process.env.KUBECONFIG;
    process.env.HOME = dir; // no .kube/config there
    t.throws(() => loadKubeConfig(), { message: /^no Kubernetes configuration found: set KUBECONFIG/ });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
