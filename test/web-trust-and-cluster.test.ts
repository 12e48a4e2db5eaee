/// <reference lib="dom" />
// The dashboard's GitHub OIDC trust page and the finishing touches of issue 11, in real Chromium
// against the real stack (orchestrator + Redis, two agent bundles on the test bed's Kubernetes,
// the bundled action on Node 24). GitHub cannot be reached here: a STAND-IN issuer
// (orchestrator/src/trust/testing/stand-in-github-issuer.ts) serves the JWKS and the runner's
// token endpoint. The second agent runs with the test bed's RBAC-limited kubeconfig, so the
// cluster browser meets real PERMISSION_DENIED answers.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { loadAllYaml } from "@kubernetes/client-node";
import test from "ava";
import type { Browser, Page } from "playwright-core";
import { StandInGithubIssuer } from "../orchestrator/src/trust/testing/stand-in-github-issuer.js";
import { repoRoot, runBundledAction } from "./support/action.js";
import {
  browserPreflight,
  dashboardOrigin,
  horizontalOverflow,
  launchChromium,
  openPage,
  type WatchedPage,
} from "./support/browser.js";
import { githubEnv, node24, waitConnected } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages } from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Stack, startStack } from "./support/stack.js";

const PUBLIC_URL = "https://deploy.example.com:8443";

let issuer: StandInGithubIssuer;
let stack: Stack;
let browser: Browser;
let front: Awaited<ReturnType<typeof dashboardOrigin>>;
let watched: WatchedPage;
let page: Page;
let namespace: string;
let agentId = "";
let limitedId = "";

const url = (p: string) => `${front.url}${p}`;

// The snippets read K8sDeploy's version from a global vite defines at build time: set it (to the
// root package.json's, as vite does) before loading them.
(globalThis as { __K8SDEPLOY_VERSION__?: string }).__K8SDEPLOY_VERSION__ = (
  JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string }
).version;
const { CLUSTER_WIDE_OVERLAY, namespaceRoleSnippet, namespacesRoleSnippet, oidcWorkflowSnippet } = await import(
  "../web/src/lib/snippets.js"
);

test.before(async () => {
  browserPreflight();
  agentBundleCheck();
  const limitedKubeconfig = process.env.K8SDEPLOY_TESTBED_LIMITED_KUBECONFIG;
  if (!limitedKubeconfig) throw new Error("K8SDEPLOY_TESTBED_LIMITED_KUBECONFIG is not set: eval the test bed's env");
  issuer = await StandInGithubIssuer.start();
  stack = await startStack({ env: { K8SDEPLOY_OIDC_ISSUER: issuer.url, K8SDEPLOY_PUBLIC_URL: PUBLIC_URL } });
  namespace = await createNamespace("web-trust");
  await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1.0.0" }]);
  const grpc = stack.replicas[0]?.grpcAddress ?? "";
  const agent = await stack.createAgent("trusted-cluster");
  agentId = agent.id;
  stack.startAgent({ token: agent.token, servers: [grpc] });
  const limited = await stack.createAgent("limited-rbac");
  limitedId = limited.id;
  stack.startAgent({ token: limited.token, servers: [grpc], env: { KUBECONFIG: limitedKubeconfig } });
  await waitConnected(stack, agentId);
  await waitConnected(stack, limitedId);
  front = await dashboardOrigin(stack.replicas[0]?.httpAddress ?? "");
  browser = await launchChromium();
  watched = await openPage(browser, { adminToken: stack.adminToken, width: 1280 });
  page = watched.page;
});

test.after.always(async () => {
  await browser?.close().catch(() => {});
  await front?.close();
  await stack?.stop();
  await issuer?.stop();
  if (namespace) await deleteNamespace(namespace);
});

async function deployWithOidc(image: string, run: string) {
  return await runBundledAction({
    inputs: {
      server: `http://${stack.replicas[0]?.grpcAddress}`,
      namespace,
      deployment: "web",
      image,
      timeout: "60",
    },
    env: { ...githubEnv(run), ...issuer.runnerEnv() },
    node: node24(),
    timeoutMs: 150_000,
  });
}

test.serial(
  "Trust page: a policy created in the UI comes with a ready workflow; the action deploys with it; the deployment shows the policy and claims",
  async (t) => {
    await page.goto(url("/trust"));
    await page.getByRole("heading", { name: "Trust policies", level: 1 }).waitFor();
    // The issuer comes from /dashboard-config.json, fetched beside the page's own calls: wait for it
    // (under load it arrives after the heading has rendered).
    await page.locator("main code", { hasText: issuer.url }).first().waitFor();
    t.regex((await page.locator("main").textContent()) ?? "", new RegExp(issuer.url.replace(/[.:/]/g, "\\$&")));
    await page.selectOption("#trust-agent", agentId);
    await page.fill("#trust-repository", "acme/web");
    t.is(await page.inputValue("#trust-ref"), "refs/heads/main", "a branch is suggested, not every ref");
    await page.fill("#trust-namespaces", namespace);
    await page.getByRole("button", { name: "Create trust policy" }).click();
    const panel = page.locator("[data-testid=trust-policy-panel]");
    await panel.waitFor();
    const snippet = (await page.locator("[data-testid=oidc-workflow-snippet]").textContent()) ?? "";
    t.regex(snippet, /^ {4}permissions:\n {6}contents: read\n {6}id-token: write/m);
    t.regex(snippet, new RegExp(`^ {10}server: ${PUBLIC_URL.replace(/[.:/]/g, "\\$&")}$`, "m"));
    t.regex(snippet, new RegExp(`^ {10}namespace: ${namespace}$`, "m"));
    t.regex(snippet, /^ {4}branches: \[main\]$/m);
    t.false(/^\s*key:/m.test(snippet), "no deploy key in an OIDC workflow");
    t.is(
      snippet,
      oidcWorkflowSnippet({ serverUrl: PUBLIC_URL, ref: "refs/heads/main", namespace, audience: "k8sdeploy" }),
    );
    await page.getByRole("button", { name: "Done" }).click();
    const row = page.locator("tr[data-policy-id]", { hasText: "acme/web" });
    await row.waitFor();
    t.regex((await row.textContent()) ?? "", /ref refs\/heads\/main/);
    const policyId = (await row.getAttribute("data-policy-id")) ?? "";
    t.regex(policyId, /^tp_/);

    const result = await deployWithOidc("registry.example/acme/web:2.0.0", "3001");
    t.is(result.code, 0, result.stdout);
    t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:2.0.0" });
    const id = result.outputs["deployment-id"] ?? "";
    await page.goto(url(`/deployments/${id}`));
    const requested = page.locator("[data-testid=requested-by]");
    await requested.waitFor();
    t.regex((await requested.textContent()) ?? "", new RegExp(`GitHub OIDC, trust policy ${policyId}`));
    const claims = (await page.locator("[data-testid=oidc-claims]").textContent()) ?? "";
    for (const expected of [
      "acme/web",
      "refs/heads/main",
      "acme/web/.github/workflows/deploy.yml@refs/heads/main",
      "octocat",
    ]) {
      t.true(claims.includes(expected), `claims show ${expected}`);
    }
    await page.goto(url("/trust"));
    await page.locator(`tr[data-policy-id="${policyId}"]`, { hasNotText: "Never" }).waitFor();
  },
);

test.serial("a failed deployment shows its failure text once", async (t) => {
  const result = await deployWithOidc("registry.example/acme/web:fail-pull", "3002");
  t.is(result.outputs.status, "failed", result.stdout);
  const id = result.outputs["deployment-id"] ?? "";
  const failure = result.outputs.message?.replace(/^[A-Z_]+: /, "") ?? "";
  t.true(failure.length > 10, failure);
  await page.goto(url(`/deployments/${id}`));
  await page.locator("[data-testid=failure]").waitFor();
  await page.locator(".timeline-item").last().waitFor();
  const main = (await page.locator("main").textContent()) ?? "";
  t.is(main.split(failure).length - 1, 1, `the failure text appears once: ${failure}`);
  t.true(((await page.locator("[data-testid=failure]").textContent()) ?? "").includes(failure));
});

test.serial("install and workflow snippets use K8SDEPLOY_PUBLIC_URL, never the page's address", async (t) => {
  const config = (await (await fetch(url("/dashboard-config.json"))).json()) as Record<string, string>;
  t.is(config.publicGrpcUrl, PUBLIC_URL);
  await page.goto(url("/agents"));
  await page.fill("#agent-name", "snippets");
  await page.getByRole("button", { name: "Register agent" }).click();
  await page.locator("[data-testid=install-snippet]", { hasText: PUBLIC_URL }).waitFor();
  const install = (await page.locator("[data-testid=install-snippet]").textContent()) ?? "";
  t.true(install.includes(`K8SDEPLOY_SERVER=${PUBLIC_URL}`), install);
  const host = new URL(front.url).hostname;
  t.false(install.includes(`${host}:50051`), "no guess from the page's address");
  await page.goto(url("/keys"));
  await page.selectOption("#key-agent", agentId);
  await page.getByRole("button", { name: "Create deploy key" }).click();
  // /dashboard-config.json may still be on its way: the snippet updates when it arrives.
  await page.locator("[data-testid=workflow-snippet]", { hasText: `server: ${PUBLIC_URL}` }).waitFor();
  const workflow = (await page.locator("[data-testid=workflow-snippet]").textContent()) ?? "";
  t.true(workflow.includes(`server: ${PUBLIC_URL}`), workflow);
});

test.serial(
  "an RBAC denial in the cluster browser says how to grant access: the objects to apply or the overlay",
  async (t) => {
    await page.goto(url(`/cluster?agent=${limitedId}`));
    const denied = page.locator("[data-testid=rbac-denied]");
    await denied.waitFor();
    const text = (await denied.textContent()) ?? "";
    t.regex(text, /The agent may not list namespaces/);
    t.regex(text, /cannot list resource "namespaces"/);
    t.true(text.includes(CLUSTER_WIDE_OVERLAY));
    t.is((await denied.locator("[data-testid=rbac-snippet]").textContent()) ?? "", namespacesRoleSnippet());

    await page.fill("#open-namespace", "default");
    await page.getByRole("button", { name: "Open", exact: true }).click();
    const workloads = page.locator("[data-testid=rbac-denied]", { hasText: "read workloads in default" });
    await workloads.waitFor();
    t.regex((await workloads.textContent()) ?? "", /is forbidden/);
    t.is((await workloads.locator("[data-testid=rbac-snippet]").textContent()) ?? "", namespaceRoleSnippet("default"));
  },
);

test("the RBAC snippets are the install's objects (base namespaces role, target-namespace binding)", (t) => {
  const base = path.join(repoRoot, "agent", "deploy", "kustomize", "base");
  const objects = (snippet: string) => loadAllYaml(snippet.split("\n").slice(1, -1).join("\n"));
  t.deepEqual(
    objects(namespacesRoleSnippet()),
    loadAllYaml(readFileSync(path.join(base, "rbac-namespaces.yaml"), "utf8")),
  );
  const component = path.join(repoRoot, "agent", "deploy", "kustomize", "components", "target-namespace");
  const target = loadAllYaml(readFileSync(path.join(component, "rolebinding.yaml"), "utf8")) as {
    metadata: { namespace: string };
  }[];
  for (const o of target) o.metadata.namespace = "shop";
  t.deepEqual(objects(namespaceRoleSnippet("shop")), target);
});

test.serial("the Agents table's buttons stay on one line at 1280 px", async (t) => {
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.goto(url("/agents"));
  const rows = page.locator("tr[data-agent-id]");
  await rows.first().waitFor();
  const layout = await page.evaluate(() =>
    [...document.querySelectorAll("tr[data-agent-id] .row-actions-inner")].map((inner) =>
      [...inner.querySelectorAll(".btn")].map((b) => {
        const r = b.getBoundingClientRect();
        return { top: Math.round(r.top), height: Math.round(r.height) };
      }),
    ),
  );
  t.true(layout.length >= 2);
  for (const buttons of layout) {
    t.is(buttons.length, 3);
    t.is(new Set(buttons.map((b) => b.top)).size, 1, `one line: ${JSON.stringify(buttons)}`);
    for (const b of buttons) t.true(b.height <= 40, `no wrapped label: ${b.height}px`);
  }
  t.deepEqual(
    watched.problems.filter((p) => !/status of (401|403|503)/.test(p)),
    [],
  );
});

test.serial("the new views fit 390 px without horizontal scrolling", async (t) => {
  const narrow = await openPage(browser, { adminToken: stack.adminToken, width: 390, height: 844 });
  try {
    for (const [p, ready] of [
      ["/trust", "tr[data-policy-id]"],
      [`/cluster?agent=${limitedId}&namespace=default`, "[data-testid=rbac-denied]"],
    ] as const) {
      await narrow.page.goto(url(p));
      await narrow.page.locator(ready).first().waitFor();
      t.is(await horizontalOverflow(narrow.page), 0, `${p} overflows at 390 px`);
    }
  } finally {
    await narrow.context.close();
  }
});
