// Copy-paste snippets: installing an agent, rotating its token, using a deploy key in a workflow.
// Names match agent/deploy/kustomize (Secret `k8sdeploy-agent` with key `token`; the server URL
// in the generated ConfigMap `k8sdeploy-agent-config`, key K8SDEPLOY_SERVER; Deployment
// `k8sdeploy-agent`; namespace `k8sdeploy`) and the inputs of the root action.yml. The README's
// "Install the agent" block is installSnippet(…, "cluster-wide") (test/readme-install.test.ts).
import { VERSION } from "./version.js";

export const AGENT_NAMESPACE = "k8sdeploy";
export const AGENT_SECRET = "k8sdeploy-agent";
export const AGENT_CONFIG = "k8sdeploy-agent-config";
export const AGENT_DEPLOYMENT = "k8sdeploy-agent";
export const AGENT_APPLYSET = "k8sdeploy-agent-install";
export const AGENT_SERVICE_ACCOUNT = "k8sdeploy-agent";
export const KUSTOMIZE_ROOT = "https://github.com/k8sdeploy/k8sdeploy//agent/deploy/kustomize";
export const RELEASE_REF = `v${VERSION}`;
export const ACTION_REF = `k8sdeploy/k8sdeploy@v${VERSION.split(".")[0]}`;

/** Which published kustomization to install. */
export type InstallVariant = "namespace" | "cluster-wide" | "auto-update";

export const installVariants: { value: InstallVariant; label: string; components: string[]; bindNamespace: boolean }[] =
  [
    {
      value: "namespace",
      label: "Least privilege: deploy to the namespaces you bind it in",
      components: [],
      bindNamespace: true,
    },
    {
      value: "cluster-wide",
      label: "Deploy to every namespace (ClusterRoleBinding)",
      components: ["cluster-wide"],
      bindNamespace: false,
    },
    {
      value: "auto-update",
      label: "Least privilege, and allow remote agent updates",
      components: ["auto-update"],
      bindNamespace: true,
    },
  ];

const server = (url: string) => url.trim() || "<ORCHESTRATOR_GRPC_URL>";

/** Shell single-quoting, so any token pastes safely. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The whole agent install: the token Secret, an overlay of the released base (pinned by
 * `?ref=`), and one server-side apply as an ApplySet, so that switching components later prunes
 * what they left behind (and re-applying after a self-update reports a conflict instead of
 * reverting the agent's image).
 */
export function installSnippet(token: string, serverUrl: string, variant: InstallVariant = "namespace"): string {
  const v = installVariants.find((x) => x.value === variant) ?? installVariants[0]!;
  const lines = [
    `kubectl create namespace ${AGENT_NAMESPACE}`,
    `kubectl -n ${AGENT_NAMESPACE} create secret generic ${AGENT_SECRET} --from-literal=token=${shellQuote(token)}`,
    "mkdir -p k8sdeploy-agent",
    "cat > k8sdeploy-agent/kustomization.yaml <<'EOF'",
    "apiVersion: kustomize.config.k8s.io/v1beta1",
    "kind: Kustomization",
    "resources:",
    `  - ${KUSTOMIZE_ROOT}/base?ref=${RELEASE_REF}`,
  ];
  if (v.components.length > 0) {
    lines.push("components:");
    for (const c of v.components) lines.push(`  - ${KUSTOMIZE_ROOT}/components/${c}?ref=${RELEASE_REF}`);
  }
  lines.push(
    "configMapGenerator:",
    `  - name: ${AGENT_CONFIG}`,
    `    namespace: ${AGENT_NAMESPACE}`,
    "    behavior: merge",
    "    literals:",
    `      - K8SDEPLOY_SERVER=${server(serverUrl)}`,
    "EOF",
    `KUBECTL_APPLYSET=true kubectl apply --server-side -n ${AGENT_NAMESPACE} --applyset=${AGENT_APPLYSET} --prune -k k8sdeploy-agent`,
  );
  if (v.bindNamespace) {
    lines.push(
      "# for each namespace it may deploy to:",
      `kubectl -n <namespace> create rolebinding ${AGENT_DEPLOYMENT} --clusterrole=k8sdeploy-agent-deployer --serviceaccount=${AGENT_NAMESPACE}:${AGENT_DEPLOYMENT}`,
    );
  }
  return lines.join("\n");
}

export function rotateSnippet(token: string): string {
  return [
    `kubectl -n ${AGENT_NAMESPACE} create secret generic ${AGENT_SECRET} \\`,
    `  --from-literal=token=${shellQuote(token)} \\`,
    "  --dry-run=client -o yaml | kubectl apply -f -",
    `kubectl -n ${AGENT_NAMESPACE} rollout restart deployment/${AGENT_DEPLOYMENT}`,
  ].join("\n");
}

function yamlScalar(value: string): string {
  return /^[A-Za-z0-9_./:@-]+$/.test(value) && !/^[-:@]/.test(value) ? value : JSON.stringify(value);
}

export function workflowSnippet(options: { serverUrl: string; namespace?: string; workload?: string }): string {
  return [
    "# .github/workflows/deploy.yml (after the job step that pushes the image)",
    "- name: Deploy to Kubernetes",
    `  uses: ${ACTION_REF}`,
    "  with:",
    `    server: ${yamlScalar(server(options.serverUrl))}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression, not a JS template
    "    key: ${{ secrets.K8SDEPLOY_KEY }}",
    `    namespace: ${options.namespace ? yamlScalar(options.namespace) : "<namespace>"}`,
    `    deployment: ${options.workload ? yamlScalar(options.workload) : "<workload>"}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression, not a JS template
    "    image: ghcr.io/${{ github.repository }}:${{ github.sha }}",
  ].join("\n");
}

/**
 * A complete workflow that deploys with the job's GitHub OIDC token instead of a deploy key: the
 * job needs `permissions: id-token: write` (and `contents: read` to check out), and `key` is left out.
 */
export function oidcWorkflowSnippet(options: {
  serverUrl: string;
  ref?: string;
  environment?: string;
  namespace?: string;
  workload?: string;
  audience?: string;
}): string {
  const branch = options.ref?.startsWith("refs/heads/") && !options.ref.endsWith("*") ? options.ref.slice(11) : "";
  const tags = options.ref?.startsWith("refs/tags/") ? options.ref.slice(10) : "";
  const on = branch
    ? ["on:", "  push:", `    branches: [${yamlScalar(branch)}]`]
    : tags
      ? ["on:", "  push:", `    tags: [${JSON.stringify(tags)}]`]
      : ["on:", "  push:"];
  return [
    "# .github/workflows/deploy.yml",
    "name: Deploy",
    ...on,
    "jobs:",
    "  deploy:",
    "    runs-on: ubuntu-latest",
    ...(options.environment ? [`    environment: ${yamlScalar(options.environment)}`] : []),
    "    permissions:",
    "      contents: read",
    "      id-token: write # lets the action request the job's OIDC token; no deploy key is stored",
    "    steps:",
    "      # … build and push the image first …",
    `      - uses: ${ACTION_REF}`,
    "        with:",
    `          server: ${yamlScalar(server(options.serverUrl))}`,
    ...(options.audience && options.audience !== "k8sdeploy"
      ? [`          audience: ${yamlScalar(options.audience)}`]
      : []),
    `          namespace: ${options.namespace ? yamlScalar(options.namespace) : "<namespace>"}`,
    `          deployment: ${options.workload ? yamlScalar(options.workload) : "<workload>"}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression, not a JS template
    "          image: ghcr.io/${{ github.repository }}:${{ github.sha }}",
  ].join("\n");
}

/**
 * The Role and RoleBinding that let the agent deploy to and read one namespace: the objects of
 * agent/deploy/kustomize/base/rbac-target.yaml with `namespace` changed (kept equal by a test).
 */
export function namespaceRoleSnippet(namespace: string): string {
  // What components/target-namespace adds: a RoleBinding of the base's ClusterRole
  // k8sdeploy-agent-deployer in the namespace (a test keeps the two identical).
  const ns = yamlScalar(namespace);
  return [
    "kubectl apply -f - <<'EOF'",
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: RoleBinding",
    "metadata:",
    "  name: k8sdeploy-agent",
    `  namespace: ${ns}`,
    "  labels:",
    "    app.kubernetes.io/name: k8sdeploy-agent",
    "    app.kubernetes.io/part-of: k8sdeploy",
    "roleRef:",
    "  apiGroup: rbac.authorization.k8s.io",
    "  kind: ClusterRole",
    "  name: k8sdeploy-agent-deployer",
    "subjects:",
    "  - kind: ServiceAccount",
    `    name: ${AGENT_SERVICE_ACCOUNT}`,
    `    namespace: ${AGENT_NAMESPACE}`,
    "EOF",
  ].join("\n");
}

export function namespacesRoleSnippet(): string {
  // The base's rbac-namespaces.yaml (a test keeps the two identical).
  return [
    "kubectl apply -f - <<'EOF'",
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: ClusterRole",
    "metadata:",
    "  name: k8sdeploy-agent-namespaces",
    "rules:",
    '  - apiGroups: [""]',
    '    resources: ["namespaces"]',
    '    verbs: ["get", "list"]',
    "---",
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: ClusterRoleBinding",
    "metadata:",
    "  name: k8sdeploy-agent-namespaces",
    "roleRef:",
    "  apiGroup: rbac.authorization.k8s.io",
    "  kind: ClusterRole",
    "  name: k8sdeploy-agent-namespaces",
    "subjects:",
    "  - kind: ServiceAccount",
    `    name: ${AGENT_SERVICE_ACCOUNT}`,
    `    namespace: ${AGENT_NAMESPACE}`,
    "EOF",
  ].join("\n");
}

/** The overlay that grants the agent every namespace instead. */
export const CLUSTER_WIDE_OVERLAY = "agent/deploy/kustomize/overlays/cluster-wide";
