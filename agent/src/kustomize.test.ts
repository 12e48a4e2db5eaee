// Renders agent/deploy/kustomize (base, overlays, and both components combined) with
// `kubectl kustomize` and checks what would be applied: objects, RBAC verbs, pod security.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAllYaml } from "@kubernetes/client-node";
import test from "ava";
import { CONFIG_VARIABLES } from "./config.js";

const ROOT = fileURLToPath(new URL("../deploy/kustomize/", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked structurally
type Obj = any;

function render(dir: string): Obj[] {
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  // loadAllYaml builds client-node model classes; a JSON round trip leaves plain objects.
  return loadAllYaml(out)
    .filter((o: Obj) => o !== null)
    .map((o: Obj) => JSON.parse(JSON.stringify(o)));
}

/** Renders a throw-away overlay of the base and/or components (paths relative to deploy/kustomize/). */
function renderOverlay(o: { namespace?: string; resources?: string[]; components: string[] }): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), "k8sdeploy-kustomize-"));
  const list = (paths: string[]) => `[${paths.map((p) => JSON.stringify(relative(dir, join(ROOT, p)))).join(", ")}]`;
  const lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization"];
  if (o.namespace) lines.push(`namespace: ${o.namespace}`);
  if (o.resources) lines.push(`resources: ${list(o.resources)}`);
  lines.push(`components: ${list(o.components)}`);
  writeFileSync(join(dir, "kustomization.yaml"), `${lines.join("\n")}\n`);
  return render(dir);
}

const find = (objs: Obj[], kind: string, name: string) => objs.find((o) => o.kind === kind && o.metadata.name === name);
const ids = (objs: Obj[]) => objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`).sort();
const rules = (role: Obj) =>
  role.rules.map((r: Obj) => ({ groups: r.apiGroups, resources: r.resources, names: r.resourceNames, verbs: r.verbs }));

const WORKLOAD_RULES = [
  {
    groups: ["apps"],
    resources: ["deployments", "statefulsets", "daemonsets"],
    names: undefined,
    verbs: ["get", "list", "watch", "patch"],
  },
  {
    groups: ["apps"],
    resources: ["replicasets", "controllerrevisions"],
    names: undefined,
    verbs: ["get", "list", "watch"],
  },
  { groups: [""], resources: ["pods"], names: undefined, verbs: ["get", "list", "watch", "delete"] },
  // Image pre-flight: pull secrets named by workloads and their service accounts.
  { groups: [""], resources: ["secrets", "serviceaccounts"], names: undefined, verbs: ["get"] },
];

function agentDeployment(objs: Obj[]): Obj {
  const d = find(objs, "Deployment", "k8sdeploy-agent");
  if (d === undefined) throw new Error("no agent Deployment");
  return d;
}

function env(objs: Obj[]): Map<string, Obj> {
  const c = agentDeployment(objs).spec.template.spec.containers[0];
  return new Map(c.env.map((e: Obj) => [e.name, e]));
}

function assertNoWildcards(t: import("ava").ExecutionContext, objs: Obj[]) {
  for (const o of objs.filter((x) => x.kind === "Role" || x.kind === "ClusterRole")) {
    for (const r of o.rules) {
      t.false(
        [...r.verbs, ...r.resources, ...r.apiGroups].includes("*"),
        `${o.kind}/${o.metadata.name} has a wildcard`,
      );
      if (r.resources.includes("secrets")) {
        // Only `get`, never list/watch: the agent reads the secrets a workload names (or its own one).
        t.deepEqual(r.verbs, ["get"], `${o.kind}/${o.metadata.name} grants more than get on secrets`);
      }
    }
  }
}

const SA = { kind: "ServiceAccount", name: "k8sdeploy-agent", namespace: "k8sdeploy" };

test("base: one hardened agent pod in k8sdeploy, RBAC to list namespaces, deploy rights bound nowhere", (t) => {
  const objs = render(join(ROOT, "base"));
  const configMap = objs.find((o) => o.kind === "ConfigMap")!;
  t.deepEqual(ids(objs), [
    "ClusterRole//k8sdeploy-agent-deployer",
    "ClusterRole//k8sdeploy-agent-namespaces",
    "ClusterRole//k8sdeploy-agent-nodes",
    "ClusterRoleBinding//k8sdeploy-agent-namespaces",
    "ClusterRoleBinding//k8sdeploy-agent-nodes",
    `ConfigMap/k8sdeploy/${configMap.metadata.name}`,
    "Deployment/k8sdeploy/k8sdeploy-agent",
    "Namespace//k8sdeploy",
    "ServiceAccount/k8sdeploy/k8sdeploy-agent",
  ]);
  // One ApplySet prunes only one namespace (plus cluster-scoped objects): nothing namespaced
  // may live elsewhere.
  t.deepEqual([...new Set(objs.map((o) => o.metadata.namespace).filter(Boolean))], ["k8sdeploy"]);
  t.false(
    objs.some((o) => o.kind === "Secret"),
    "the token Secret is created by the user, never shipped",
  );
  assertNoWildcards(t, objs);

  t.deepEqual(rules(find(objs, "ClusterRole", "k8sdeploy-agent-namespaces")), [
    { groups: [""], resources: ["namespaces"], names: undefined, verbs: ["get", "list"] },
  ]);
  t.deepEqual(rules(find(objs, "ClusterRole", "k8sdeploy-agent-nodes")), [
    { groups: [""], resources: ["nodes"], names: undefined, verbs: ["list"] },
  ]);
  t.deepEqual(rules(find(objs, "ClusterRole", "k8sdeploy-agent-deployer")), WORKLOAD_RULES);
  t.deepEqual(find(objs, "ClusterRoleBinding", "k8sdeploy-agent-namespaces").subjects, [SA]);

  const d = agentDeployment(objs);
  t.is(d.spec.replicas, 1);
  // Surge, no unavailability: the old agent stays until the new one is Ready (self-update rollback).
  t.deepEqual(d.spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  const pod = d.spec.template.spec;
  t.is(pod.serviceAccountName, "k8sdeploy-agent");
  t.true(pod.terminationGracePeriodSeconds > 20, "longer than the agent's 20 s shutdown grace");
  t.like(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } });
  t.is(pod.containers.length, 1);
  const c = pod.containers[0];
  t.regex(c.image, /^ghcr\.io\/k8sdeploy\/agent@sha256:[0-9a-f]{64}$/, "pinned by digest");
  t.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
  });
  t.truthy(c.resources.requests.memory);
  t.truthy(c.resources.limits.memory);
  t.deepEqual(c.readinessProbe.httpGet, { path: "/readyz", port: "health" });
  t.deepEqual(c.livenessProbe.httpGet, { path: "/livez", port: "health" });
  t.deepEqual(c.ports, [{ name: "health", containerPort: 8081, protocol: "TCP" }]);
  t.deepEqual(c.volumeMounts, [{ name: "tmp", mountPath: "/tmp" }]);

  const e = env(objs);
  t.deepEqual(e.get("K8SDEPLOY_AGENT_TOKEN").valueFrom, { secretKeyRef: { name: "k8sdeploy-agent", key: "token" } });
  t.deepEqual(e.get("K8SDEPLOY_SERVER").valueFrom, {
    configMapKeyRef: { name: configMap.metadata.name, key: "K8SDEPLOY_SERVER" },
  });
  t.regex(configMap.data.K8SDEPLOY_SERVER, /^https:\/\//);
  t.is(e.get("K8SDEPLOY_AUTO_UPDATE").value, "false");
  t.is(e.get("K8SDEPLOY_HEALTH_LISTEN").value, "0.0.0.0:8081");
  t.is(e.get("POD_NAME").valueFrom.fieldRef.fieldPath, "metadata.name");
  t.is(e.get("POD_NAMESPACE").valueFrom.fieldRef.fieldPath, "metadata.namespace");
  const known = new Set(CONFIG_VARIABLES.flatMap((v) => v.name.split(" / ")));
  for (const name of e.keys()) t.true(known.has(name), `${name} is a documented agent variable`);
});

test("overlay cluster-wide: binds the deployer ClusterRole cluster-wide", (t) => {
  const objs = render(join(ROOT, "overlays", "cluster-wide"));
  const binding = find(objs, "ClusterRoleBinding", "k8sdeploy-agent-deployer");
  t.deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: "k8sdeploy-agent-deployer",
  });
  t.deepEqual(binding.subjects, [SA]);
  t.is(env(objs).get("K8SDEPLOY_AUTO_UPDATE").value, "false");
  assertNoWildcards(t, objs);
});

test("component target-namespace: a RoleBinding in the app's namespace for the agent's ServiceAccount", (t) => {
  const objs = renderOverlay({ namespace: "shop", components: ["components/target-namespace"] });
  t.deepEqual(ids(objs), ["RoleBinding/shop/k8sdeploy-agent"]);
  t.deepEqual(objs[0].roleRef.name, "k8sdeploy-agent-deployer");
  t.deepEqual(objs[0].subjects, [SA], "the subject keeps the agent's namespace");
});

test("overlay auto-update: opt-in flag and patch rights on its own Deployment only", (t) => {
  const objs = render(join(ROOT, "overlays", "auto-update"));
  t.is(env(objs).get("K8SDEPLOY_AUTO_UPDATE").value, "true");
  t.is(env(objs).get("K8SDEPLOY_AGENT_DEPLOYMENT").value, "k8sdeploy-agent");
  const role = find(objs, "Role", "k8sdeploy-agent-self-update");
  t.is(role.metadata.namespace, "k8sdeploy");
  t.deepEqual(rules(role), [
    { groups: ["apps"], resources: ["deployments"], names: ["k8sdeploy-agent"], verbs: ["get", "patch"] },
  ]);
  const binding = find(objs, "RoleBinding", "k8sdeploy-agent-self-update");
  t.is(binding.metadata.namespace, "k8sdeploy");
  t.is(binding.roleRef.name, "k8sdeploy-agent-self-update");
  t.deepEqual([...new Set(objs.map((o) => o.metadata.namespace).filter(Boolean))], ["k8sdeploy"]);
  assertNoWildcards(t, objs);
});

test("the components combine: cluster-wide with auto-update", (t) => {
  const objs = renderOverlay({
    resources: ["base"],
    components: ["components/cluster-wide", "components/auto-update"],
  });
  t.truthy(find(objs, "ClusterRoleBinding", "k8sdeploy-agent-deployer"));
  t.deepEqual(find(objs, "Role", "k8sdeploy-agent-self-update").rules[0].resourceNames, ["k8sdeploy-agent"]);
  t.is(env(objs).get("K8SDEPLOY_AUTO_UPDATE").value, "true");
});

test("component registry-secret: get on the agent's own registry Secret only", (t) => {
  const objs = renderOverlay({ resources: ["base"], components: ["components/registry-secret"] });
  t.is(env(objs).get("K8SDEPLOY_REGISTRY_SECRET").value, "k8sdeploy-registry");
  const role = find(objs, "Role", "k8sdeploy-agent-registry-secret");
  t.is(role.metadata.namespace, "k8sdeploy");
  t.deepEqual(rules(role), [{ groups: [""], resources: ["secrets"], names: ["k8sdeploy-registry"], verbs: ["get"] }]);
  assertNoWildcards(t, objs);
});
