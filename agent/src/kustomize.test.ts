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

test("base: least-privilege RBAC, one hardened agent pod", (t) => {
  const objs = render(join(ROOT, "base"));
  const configMap = objs.find((o) => o.kind === "ConfigMap")!;
  t.deepEqual(ids(objs), [
    "ClusterRole//k8sdeploy-agent-namespaces",
    "ClusterRole//k8sdeploy-agent-nodes",
    "ClusterRoleBinding//k8sdeploy-agent-namespaces",
    "ClusterRoleBinding//k8sdeploy-agent-nodes",
    `ConfigMap/k8sdeploy/${configMap.metadata.name}`,
    "Deployment/k8sdeploy/k8sdeploy-agent",
    "Namespace//k8sdeploy",
    "Role/default/k8sdeploy-agent",
    "RoleBinding/default/k8sdeploy-agent",
    "ServiceAccount/k8sdeploy/k8sdeploy-agent",
  ]);
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
  t.deepEqual(rules(find(objs, "Role", "k8sdeploy-agent")), WORKLOAD_RULES);
  const sa = { kind: "ServiceAccount", name: "k8sdeploy-agent", namespace: "k8sdeploy" };
  t.deepEqual(find(objs, "RoleBinding", "k8sdeploy-agent").subjects, [sa]);
  t.deepEqual(find(objs, "ClusterRoleBinding", "k8sdeploy-agent-namespaces").subjects, [sa]);

  const d = agentDeployment(objs);
  t.is(d.spec.replicas, 1);
  // Surge, no unavailability: the old agent stays until the new one is Ready (self-update rollback).
  t.deepEqual(d.spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  const pod = d.spec.template.spec;
  t.is(pod.serviceAccountName, "k8sdeploy-agent");
  t.true(pod.terminationGracePeriodSeconds > 20, "longer than the agent's 20 s shutdown grace");
  t.like(pod.securityContext, { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } });
  t.is(pod.containers.length, 1);
  const c = pod.containers[0];
  t.is(c.image, "ghcr.io/k8sdeploy/agent:0.1.0");
  t.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
  });
  t.deepEqual(c.resources, { requests: { cpu: "20m", memory: "96Mi" }, limits: { memory: "128Mi" } });

  const e = env(objs);
  t.deepEqual(e.get("K8SDEPLOY_AGENT_TOKEN").valueFrom, { secretKeyRef: { name: "k8sdeploy-agent", key: "token" } });
  t.deepEqual(e.get("K8SDEPLOY_SERVER").valueFrom, {
    configMapKeyRef: { name: configMap.metadata.name, key: "K8SDEPLOY_SERVER" },
  });
  t.regex(configMap.data.K8SDEPLOY_SERVER, /^https:\/\//);
  t.is(e.get("K8SDEPLOY_AUTO_UPDATE").value, "false");
  t.is(e.get("POD_NAME").valueFrom.fieldRef.fieldPath, "metadata.name");
  t.is(e.get("POD_NAMESPACE").valueFrom.fieldRef.fieldPath, "metadata.namespace");
  const known = new Set(CONFIG_VARIABLES.flatMap((v) => v.name.split(" / ")));
  for (const name of e.keys()) t.true(known.has(name), `${name} is a documented agent variable`);
});

test("overlay cluster-wide: a ClusterRole replaces the per-namespace Role", (t) => {
  const objs = render(join(ROOT, "overlays", "cluster-wide"));
  t.is(find(objs, "Role", "k8sdeploy-agent"), undefined);
  t.is(find(objs, "RoleBinding", "k8sdeploy-agent"), undefined);
  t.deepEqual(rules(find(objs, "ClusterRole", "k8sdeploy-agent-workloads")), WORKLOAD_RULES);
  const binding = find(objs, "ClusterRoleBinding", "k8sdeploy-agent-workloads");
  t.is(binding.roleRef.name, "k8sdeploy-agent-workloads");
  t.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "k8sdeploy-agent", namespace: "k8sdeploy" }]);
  t.truthy(find(objs, "ClusterRole", "k8sdeploy-agent-namespaces"));
  t.is(env(objs).get("K8SDEPLOY_AUTO_UPDATE").value, "false");
  assertNoWildcards(t, objs);
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
  t.truthy(find(objs, "Role", "k8sdeploy-agent"), "the base's target-namespace Role stays");
  assertNoWildcards(t, objs);
});

test("the components combine: cluster-wide with auto-update", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "k8sdeploy-kustomize-"));
  const rel = (p: string) => relative(dir, join(ROOT, p));
  writeFileSync(
    join(dir, "kustomization.yaml"),
    `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [${JSON.stringify(rel("base"))}]
components: [${JSON.stringify(rel("components/cluster-wide"))}, ${JSON.stringify(rel("components/auto-update"))}]
`,
  );
  const objs = render(dir);
  t.truthy(find(objs, "ClusterRole", "k8sdeploy-agent-workloads"));
  t.deepEqual(find(objs, "Role", "k8sdeploy-agent-self-update").rules[0].resourceNames, ["k8sdeploy-agent"]);
  t.is(find(objs, "Role", "k8sdeploy-agent"), undefined);
  t.is(env(objs).get("K8SDEPLOY_AUTO_UPDATE").value, "true");
});

test("component registry-secret: get on the agent's own registry Secret only", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "k8sdeploy-kustomize-"));
  const rel = (p: string) => relative(dir, join(ROOT, p));
  writeFileSync(
    join(dir, "kustomization.yaml"),
    `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [${JSON.stringify(rel("base"))}]
components: [${JSON.stringify(rel("components/registry-secret"))}]
`,
  );
  const objs = render(dir);
  t.is(env(objs).get("K8SDEPLOY_REGISTRY_SECRET").value, "k8sdeploy-registry");
  const role = find(objs, "Role", "k8sdeploy-agent-registry-secret");
  t.is(role.metadata.namespace, "k8sdeploy");
  t.deepEqual(rules(role), [{ groups: [""], resources: ["secrets"], names: ["k8sdeploy-registry"], verbs: ["get"] }]);
  assertNoWildcards(t, objs);
});
