// Renders orchestrator/deploy/kustomize (base, with the redis and no-tls components) with
// `kubectl kustomize` and checks what would be applied. Applying it to the test bed, and running
// the image as its pods, is test/install-orchestrator.test.ts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAllYaml } from "@kubernetes/client-node";
import test from "ava";
import { configTable } from "./config.js";

const ROOT = fileURLToPath(new URL("../deploy/kustomize/", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked structurally
type Obj = any;

function render(components: string[] = []): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), "k8sdeploy-orch-kustomize-"));
  const rel = (p: string) => JSON.stringify(relative(dir, join(ROOT, p)));
  writeFileSync(
    join(dir, "kustomization.yaml"),
    `resources: [${rel("base")}]\ncomponents: [${components.map((c) => rel(`components/${c}`)).join(", ")}]\n`,
  );
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  return loadAllYaml(out)
    .filter((o: Obj) => o !== null)
    .map((o: Obj) => JSON.parse(JSON.stringify(o)));
}

const find = (objs: Obj[], kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name);
const container = (objs: Obj[]) => find(objs, "Deployment", "k8sdeploy-orchestrator").spec.template.spec.containers[0];
const env = (objs: Obj[]) => new Map(container(objs).env.map((e: Obj) => [e.name, e]));

test("base: 2 hardened replicas, gRPC and HTTP Services, PDB, probes, Secrets for token and TLS", (t) => {
  const objs = render();
  t.deepEqual(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    "Deployment/k8sdeploy-orchestrator",
    "PodDisruptionBudget/k8sdeploy-orchestrator",
    "Service/k8sdeploy-orchestrator-grpc",
    "Service/k8sdeploy-orchestrator-http",
  ]);
  t.true(objs.every((o) => o.metadata.namespace === "k8sdeploy"));
  const d = find(objs, "Deployment", "k8sdeploy-orchestrator");
  t.is(d.spec.replicas, 2);
  t.is(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
  t.is(find(objs, "PodDisruptionBudget", "k8sdeploy-orchestrator").spec.minAvailable, 1);
  const pod = d.spec.template.spec;
  t.like(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532 });
  t.false(pod.automountServiceAccountToken, "the orchestrator needs no Kubernetes API access");
  const c = container(objs);
  t.regex(c.image, /^ghcr\.io\/k8sdeploy\/orchestrator@sha256:[0-9a-f]{64}$/);
  t.like(c.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
  t.deepEqual(c.readinessProbe.httpGet, { path: "/readyz", port: "http" });
  t.deepEqual(c.livenessProbe.httpGet, { path: "/healthz", port: "http" });
  const e = env(objs);
  t.deepEqual((e.get("K8SDEPLOY_ADMIN_TOKEN") as Obj).valueFrom.secretKeyRef, {
    name: "k8sdeploy-orchestrator",
    key: "admin-token",
  });
  t.is((e.get("K8SDEPLOY_TLS_CERT_FILE") as Obj).value, "/etc/k8sdeploy/tls/tls.crt");
  t.is((e.get("K8SDEPLOY_TLS_KEY_FILE") as Obj).value, "/etc/k8sdeploy/tls/tls.key");
  t.is((e.get("K8SDEPLOY_REPLICA_ID") as Obj).valueFrom.fieldRef.fieldPath, "metadata.name");
  t.is(pod.volumes.find((v: Obj) => v.name === "tls").secret.secretName, "k8sdeploy-orchestrator-tls");
  const known = new Set(configTable.map((r) => r.variable));
  for (const name of e.keys()) t.true(known.has(name as string), `${name} is an orchestrator variable`);
  t.deepEqual(
    c.ports.map((p: Obj) => [p.name, p.containerPort]),
    [
      ["grpc", 50051],
      ["http", 8080],
    ],
  );
  t.is(find(objs, "Service", "k8sdeploy-orchestrator-grpc").spec.ports[0].appProtocol, "grpc");
});

test("component redis: a StatefulSet with AOF on a claim, reachable only from the orchestrator, and its URL Secret", (t) => {
  const objs = render(["redis"]);
  const sts = find(objs, "StatefulSet", "k8sdeploy-redis");
  const args = sts.spec.template.spec.containers[0].args.join(" ");
  t.regex(args, /--appendonly yes/);
  t.is(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage, "1Gi");
  const np = find(objs, "NetworkPolicy", "k8sdeploy-redis");
  // client-node names the field `_from` (`from` is reserved in its models).
  t.deepEqual(np.spec.ingress[0]._from[0].podSelector.matchLabels, {
    "app.kubernetes.io/name": "k8sdeploy-orchestrator",
  });
  const secret = objs.find((o) => o.kind === "Secret");
  t.is(Buffer.from(secret.data.url, "base64").toString(), "redis://k8sdeploy-redis:6379");
  t.is((env(objs).get("K8SDEPLOY_REDIS_URL") as Obj).valueFrom.secretKeyRef.name, secret.metadata.name);
});

test("component no-tls: no TLS variables or Secret volume, h2c on the gRPC Service", (t) => {
  const objs = render(["no-tls"]);
  const e = env(objs);
  t.false(e.has("K8SDEPLOY_TLS_CERT_FILE"));
  t.false(e.has("K8SDEPLOY_TLS_KEY_FILE"));
  t.true(e.has("K8SDEPLOY_ADMIN_TOKEN"));
  const pod = find(objs, "Deployment", "k8sdeploy-orchestrator").spec.template.spec;
  t.deepEqual(
    pod.volumes.map((v: Obj) => v.name),
    ["tmp"],
  );
  t.deepEqual(
    container(objs).volumeMounts.map((v: Obj) => v.mountPath),
    ["/tmp"],
  );
  t.is(find(objs, "Service", "k8sdeploy-orchestrator-grpc").spec.ports[0].appProtocol, "kubernetes.io/h2c");
});
