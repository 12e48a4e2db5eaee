/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The dashboard in a real browser (Debian's Chromium through playwright-core) against the real
// stack: orchestrator + Redis, the agent bundle on the test bed's Kubernetes, and the bundled
// GitHub Action. One journey, step by step: sign in; register an agent in the UI and start it with
// the token read from the page; create a deploy key in the UI; deploy with the action while the
// Deployments page is open and watch the row go from queued to succeeded live; the timeline;
// roll back; browse the cluster; stop the agent and see it offline. Screenshots of every page in
// both themes go to test-output/screenshots/, size and render metrics to test-output/web-metrics.json.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import test from "ava";
import type { Browser, Locator, Page } from "playwright-core";
import { repoRoot, runBundledAction } from "./support/action.js";
import {
  browserPreflight,
  bundleSize,
  dashboardOrigin,
  horizontalOverflow,
  launchChromium,
  measureFirstRender,
  median,
  openPage,
  type RenderTiming,
  screenshot,
  startTestFront,
  type Theme,
  useTheme,
  type WatchedPage,
  writeMetrics,
} from "./support/browser.js";
import { deployClient, deployRequest } from "./support/clients.js";
import { githubEnv } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages } from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import type { Proc } from "./support/processes.js";
import { type Stack, startStack } from "./support/stack.js";

const run = promisify(execFile);
const themes: Theme[] = ["light", "dark"];

let stack: Stack;
let browser: Browser;
let front: Awaited<ReturnType<typeof dashboardOrigin>>;
let main: WatchedPage;
let page: Page;
let namespace: string;
let agentId = "";
let agentToken = "";
let agentProc: Proc | undefined;
let deployKey = "";
let deploymentId = "";
let rollbackId = "";

const url = (p: string) => `${front.url}${p}`;

/** A locator's text (textContent: what the DOM holds, whatever the layout). */
async function textOf(locator: Locator): Promise<string> {
  return (await locator.textContent()) ?? "";
}

/** Errors the journey provokes on purpose: a wrong token (401) and asking an offline agent (503). */
const expectedProblem = (p: string) => /status of (401|503)/.test(p);

test.before(async () => {
  browserPreflight();
  agentBundleCheck();
  stack = await startStack({ replicas: 1 });
  namespace = await createNamespace("web-ui");
  await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1.0.0" }]);
  const replica = stack.replicas[0];
  if (!replica) throw new Error("no replica");
  front = await dashboardOrigin(replica.httpAddress);
  browser = await launchChromium();
  main = await openPage(browser);
  page = main.page;
});

test.after.always(async () => {
  await browser?.close().catch(() => {});
  await front?.close();
  await agentProc?.kill("SIGKILL");
  await stack?.stop();
  if (namespace) await deleteNamespace(namespace);
});

/**
 * Records every (deployment, state) the table shows, with the browser's clock, from now on.
 * (A string, not a function: tsx would wrap inner functions in a `__name` helper the page lacks.)
 */
async function recordRowStates(p: Page): Promise<void> {
  await p.evaluate(`(() => {
    window.__rows = [];
    const record = () => {
      for (const tr of document.querySelectorAll("tr[data-deployment-id]")) {
        const key = tr.dataset.deploymentId + ":" + tr.dataset.state;
        if (!window.__rows.some((r) => r.key === key)) window.__rows.push({ key, at: Date.now() });
      }
    };
    record();
    new MutationObserver(record).observe(document.body, {
      subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"],
    });
  })()`);
}

async function deployImage(tag: string, runId: string): Promise<string> {
  const result = await runBundledAction({
    inputs: {
      server: `http://${stack.replicas[0]?.grpcAddress}`,
      key: deployKey,
      namespace,
      deployment: "web",
      image: `registry.example/acme/web:${tag}`,
      timeout: "60",
    },
    env: githubEnv(runId),
    timeoutMs: 120_000,
  });
  if (result.code !== 0 || result.outputs.status !== "succeeded") {
    throw new Error(`deploy of ${tag} failed:\n${result.stdout}\n${result.stderr}`);
  }
  return result.outputs["deployment-id"] ?? "";
}

/** The JSON of a Connect streaming request body (one enveloped message). */
function envelopeJson(body: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(body, "latin1").subarray(5).toString("utf8")) as Record<string, unknown>;
}

async function markNoReload(p: Page): Promise<void> {
  await p.evaluate(() => {
    (window as unknown as { __noReload: boolean }).__noReload = true;
  });
}

async function stillSamePage(p: Page): Promise<boolean> {
  return p.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true);
}

async function adminCall<T>(service: "AdminService" | "DeployService", method: string, body: unknown): Promise<T> {
  const res = await fetch(url(`/k8sdeploy.v1.${service}/${method}`), {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.adminToken}` },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

test.serial("sign in: follows the system theme, rejects a wrong token inline, accepts the admin token", async (t) => {
  t.log(`dashboard served by: ${front.mode} (${front.url})`);
  // prefers-color-scheme decides until the toggle is used; the toggle's choice survives a reload.
  const dark = await openPage(browser, { colorScheme: "dark" });
  await dark.page.goto(url("/"));
  t.is(await dark.page.evaluate(() => document.documentElement.dataset.theme), "dark");
  await useTheme(dark.page, "light");
  await dark.page.reload();
  t.is(await dark.page.evaluate(() => document.documentElement.dataset.theme), "light");
  await dark.context.close();

  await page.goto(url("/deployments"));
  await page.waitForSelector("#admin-token");
  t.true(await page.evaluate(() => document.activeElement?.id === "admin-token"), "the token field has focus");
  for (const theme of themes) {
    await useTheme(page, theme);
    await screenshot(page, "signin", theme);
  }
  await useTheme(page, "light");

  await page.fill("#admin-token", "definitely-not-the-admin-token-000");
  await page.press("#admin-token", "Enter");
  const error = page.locator("form [role=alert]");
  await error.waitFor();
  t.regex(await textOf(error), /did not accept this token/);
  t.is(await page.locator("nav[aria-label=Main]").count(), 0, "still signed out");

  await page.fill("#admin-token", stack.adminToken);
  await page.press("#admin-token", "Enter");
  await page.locator("h1", { hasText: "Deployments" }).waitFor();
  t.is(new URL(page.url()).pathname, "/deployments", "lands where it was going");
  await page.locator(".empty", { hasText: "No deployments yet" }).waitFor();
  t.is(await page.evaluate(() => sessionStorage.getItem("k8sdeploy.adminToken")), stack.adminToken);
  t.is(await page.evaluate(() => localStorage.getItem("k8sdeploy.adminToken")), null, "never in localStorage");
});

test.serial(
  "register an agent in the UI; started with the token from the page it shows as connected, live",
  async (t) => {
    await page.click("nav >> text=Agents");
    await page.locator(".empty", { hasText: "No agents yet" }).waitFor();
    await page.fill("#agent-name", "web-ui-cluster");
    await page.press("#agent-name", "Enter");
    const panel = page.locator("[data-testid=agent-token-panel]");
    await panel.waitFor();
    agentToken = (await textOf(page.locator("[data-testid=agent-token]"))).trim();
    agentId = (await panel.getAttribute("data-agent-id")) ?? "";
    t.regex(agentToken, /^kda_/);
    t.regex(agentId, /^agt_/);

    // The install snippet uses the real names of agent/deploy/kustomize and builds with kubectl.
    const grpcUrl = `http://${stack.replicas[0]?.grpcAddress}`;
    await page.fill("input[type=url]", grpcUrl);
    const snippet = await textOf(page.locator("[data-testid=install-snippet]"));
    t.true(snippet.includes(`--from-literal=token=${agentToken}`));
    t.regex(snippet, /kubectl -n k8sdeploy create secret generic k8sdeploy-agent /);
    t.true(snippet.includes(`K8SDEPLOY_SERVER=${grpcUrl}`));
    t.regex(snippet, /name: k8sdeploy-agent-config/);
    await checkInstallSnippet(t, snippet, grpcUrl);
    for (const theme of themes) {
      await useTheme(page, theme);
      await screenshot(page, "agents-register", theme);
    }
    await useTheme(page, "light");

    const row = page.locator(`tr[data-agent-id="${agentId}"]`);
    t.is(await row.getAttribute("data-connection"), "never_connected");
    await markNoReload(page);
    const started = Date.now();
    agentProc = stack.startAgent({ token: agentToken, servers: [stack.replicas[0]?.grpcAddress ?? ""] });
    await page.locator(`tr[data-agent-id="${agentId}"][data-connection=connected]`).waitFor({ timeout: 60_000 });
    t.log(`agent shown as connected ${Date.now() - started} ms after its process started`);
    t.true(await stillSamePage(page), "no reload happened");
    const text = await textOf(row);
    t.regex(text, /Connected/);
    t.regex(text, /v1\.\d+/, "Kubernetes version");
    t.regex(text, /x64|arm64/, "arch");
    await page.click("text=I have copied it");
    t.is(await page.locator("[data-testid=agent-token]").count(), 0, "the token is gone once dismissed");
  },
);

async function checkInstallSnippet(
  t: { log: (m: string) => void; is: (a: unknown, b: unknown) => void },
  snippet: string,
  grpcUrl: string,
) {
  // Rebuild the heredoc'd kustomization with the repository's local base instead of GitHub.
  const yaml = /<<'EOF'\n([\s\S]*?)\nEOF/.exec(snippet)?.[1];
  if (!yaml) throw new Error(`no kustomization in the snippet:\n${snippet}`);
  const dir = await mkdtemp(path.join(repoRoot, "test-output", "kustomize-"));
  try {
    const base = path.relative(dir, path.join(repoRoot, "agent", "deploy", "kustomize"));
    await writeFile(
      path.join(dir, "kustomization.yaml"),
      yaml
        .replaceAll("https://github.com/k8sdeploy/k8sdeploy//agent/deploy/kustomize", base)
        .replace(/\?ref=v[0-9][^\s]*/g, ""),
    );
    const { stdout } = await run("kubectl", ["kustomize", dir]).catch((err) => {
      t.log(`kubectl kustomize unavailable or failed, snippet not built: ${err}`);
      return { stdout: "" };
    });
    if (stdout) {
      t.is(new RegExp(`K8SDEPLOY_SERVER: ${grpcUrl.replace(/[.:/]/g, "\\$&")}`).test(stdout), true);
      t.is(/secretKeyRef:\s+key: token\s+name: k8sdeploy-agent\b/.test(stdout), true);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test.serial("create a deploy key in the UI: shown once with a workflow snippet, listed with its scope", async (t) => {
  await page.click("nav >> text=Deploy keys");
  await page.locator("#key-agent").waitFor();
  await page.selectOption("#key-agent", agentId);
  await page.fill("#key-name", "acme/web");
  await page.fill("#key-namespaces", namespace);
  await page.fill("#key-workloads", "web");
  await page.press("#key-workloads", "Enter");
  await page.locator("[data-testid=deploy-key-panel]").waitFor();
  deployKey = (await textOf(page.locator("[data-testid=deploy-key]"))).trim();
  t.regex(deployKey, /^kdk_/);
  const workflow = await textOf(page.locator("[data-testid=workflow-snippet]"));
  t.regex(workflow, /uses: k8sdeploy\/k8sdeploy@v\d+\n/);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression
  t.true(workflow.includes("key: ${{ secrets.K8SDEPLOY_KEY }}"));
  t.true(workflow.includes(`namespace: ${namespace}`));
  t.regex(workflow, /deployment: web/);
  t.regex(workflow, /image: /);
  t.regex(workflow, /server: /);
  for (const theme of themes) {
    await useTheme(page, theme);
    await screenshot(page, "deploy-keys-created", theme);
  }
  await useTheme(page, "light");
  await page.click("text=I have copied it");
  const row = page.locator("tr[data-key-id]", { hasText: "acme/web" });
  t.regex(await textOf(row), new RegExp(namespace));
  t.regex(await textOf(row), /Never/);
});

test.serial(
  "a deploy through the action appears on the open Deployments page and goes queued → succeeded live",
  async (t) => {
    await page.click("nav >> text=Deployments");
    await page.locator(".live[data-live=live]").waitFor();
    await markNoReload(page);
    await recordRowStates(page);
    const result = await runBundledAction({
      inputs: {
        server: `http://${stack.replicas[0]?.grpcAddress}`,
        key: deployKey,
        namespace,
        deployment: "web",
        image: "registry.example/acme/web:1.1.0",
        timeout: "60",
      },
      env: githubEnv("7001"),
      timeoutMs: 120_000,
    });
    t.is(result.code, 0, `${result.stdout}\n${result.stderr}`);
    t.is(result.outputs.status, "succeeded");
    deploymentId = result.outputs["deployment-id"] ?? "";
    const row = page.locator(`tr[data-deployment-id="${deploymentId}"]`);
    await page.locator(`tr[data-deployment-id="${deploymentId}"][data-state=succeeded]`).waitFor({ timeout: 10_000 });
    t.true(await stillSamePage(page), "no reload happened");
    t.regex(await textOf(row), /Succeeded/);
    t.regex(await textOf(row), /acme\/web/);
    t.regex(await textOf(row), /octocat/);

    const seen = (await page.evaluate(() => (window as unknown as { __rows: { key: string; at: number }[] }).__rows))
      .filter((r) => r.key.startsWith(`${deploymentId}:`))
      .map((r) => ({ state: r.key.split(":")[1] ?? "", at: r.at }));
    t.log(`states shown: ${seen.map((s) => s.state).join(" → ")}`);
    t.true(
      ["queued", "delivered", "in_progress"].includes(seen[0]?.state ?? ""),
      "the row appeared before it finished",
    );
    t.is(seen.at(-1)?.state, "succeeded");

    // Each state reached the screen within a second of the orchestrator recording it.
    const { events } = await adminCall<{ events: { state: string; time: string }[] }>(
      "DeployService",
      "GetDeployment",
      {
        id: deploymentId,
      },
    );
    const latencies = seen.map((s) => {
      const event = events.find((e) => e.state === `DEPLOYMENT_STATE_${s.state.toUpperCase()}`);
      return { state: s.state, ms: event ? s.at - Date.parse(event.time) : Number.NaN };
    });
    t.log(`event → screen: ${latencies.map((l) => `${l.state} ${l.ms} ms`).join(", ")}`);
    for (const l of latencies) t.true(l.ms < 1000, `${l.state} took ${l.ms} ms to show`);
  },
);

test.serial("filters are in the URL and narrow the live list", async (t) => {
  await page.click("label.chip:has-text('Failed')");
  await page.waitForURL(/state=failed/);
  await page.locator(".empty", { hasText: "No deployments match" }).waitFor();
  await page.click("label.chip:has-text('Failed')");
  await page.selectOption("#filter-agent", agentId);
  await page.waitForURL(new RegExp(`agent=${agentId}`));
  await page.locator(`tr[data-deployment-id="${deploymentId}"]`).waitFor();
  await page.reload();
  t.is(await page.inputValue("#filter-agent"), agentId, "filters survive a reload");
  await page.locator(`tr[data-deployment-id="${deploymentId}"]`).waitFor();
  await page.goto(url("/deployments"));
  t.pass();
});

test.serial(
  "the deployment page shows origin, images and the event timeline; Roll back deploys the previous image",
  async (t) => {
    await page.click(`tr[data-deployment-id="${deploymentId}"] a`);
    await page.locator(".timeline").waitFor();
    t.is(new URL(page.url()).pathname, `/deployments/${deploymentId}`);
    const origin = page.locator("section[aria-labelledby=origin-h]");
    t.is(await origin.locator("a", { hasText: "acme/web" }).getAttribute("href"), "https://github.com/acme/web");
    t.regex(
      (await origin.locator("a", { hasText: "0123456" }).getAttribute("href")) ?? "",
      /\/acme\/web\/commit\/0123456789abcdef/,
    );
    t.regex(await textOf(origin), /@octocat/);
    const images = await textOf(page.locator("section[aria-labelledby=images-h]"));
    t.regex(images, /web:1\.0\.0/);
    t.regex(images, /web:1\.1\.0/);
    const steps = await page.locator(".timeline-item").count();
    t.true(steps >= 4, `${steps} timeline events`);
    t.regex(await textOf(page.locator(".timeline")), /Queued[\s\S]*Succeeded/);
    for (const theme of themes) {
      await useTheme(page, theme);
      await screenshot(page, "deployment", theme);
    }
    await useTheme(page, "light");

    await page.click("button:has-text('Roll back')");
    const dialog = page.locator("dialog[open]");
    await dialog.waitFor();
    t.regex(await textOf(dialog), /web:1\.0\.0/);
    await dialog.locator("button", { hasText: "Cancel" }).click();
    await dialog.waitFor({ state: "detached" }).catch(() => {});
    t.is(await page.locator("dialog[open]").count(), 0, "Cancel closes the dialog");
    await page.click("button:has-text('Roll back')");
    await page.locator("dialog[open] button[type=submit]").click();
    await page.waitForURL((u) => /\/deployments\/dep_/.test(u.pathname) && !u.pathname.endsWith(deploymentId));
    rollbackId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop() ?? "");
    await page.locator(".subtitle [data-state=succeeded]").waitFor({ timeout: 60_000 });
    t.regex(
      await textOf(page.locator("section[aria-labelledby=what-h]")),
      new RegExp(`Rollback of\\s*${deploymentId}`),
    );
    t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:1.0.0" });
  },
);

test.serial("deploy keys show when they were last used", async (t) => {
  await page.goto(url("/keys"));
  const row = page.locator("tr[data-key-id]", { hasText: "acme/web" });
  await row.waitFor();
  const lastUsed = await textOf(row.locator("td[data-label='Last used']"));
  t.notRegex(lastUsed, /Never/);
  for (const theme of themes) {
    await useTheme(page, theme);
    await screenshot(page, "deploy-keys", theme);
  }
  await useTheme(page, "light");
});

test.serial("Cluster: namespaces and workloads of the agent, read live", async (t) => {
  await page.click("nav >> text=Cluster");
  await page.locator(`.ns-list a:text-is("${namespace}")`).click();
  await page.waitForURL(new RegExp(`namespace=${namespace}`));
  const row = page.locator("tr[data-workload=web]");
  await row.waitFor();
  const text = await textOf(row);
  t.regex(text, /Deployment/);
  t.regex(text, /registry\.example\/acme\/web:1\.0\.0/);
  t.regex(text, /2\/2 ready/);
  t.regex(text, new RegExp(rollbackId));
  for (const theme of themes) {
    await useTheme(page, theme);
    await screenshot(page, "cluster", theme);
  }
  await useTheme(page, "light");
});

test.serial("every page in both themes, and at 390 px without horizontal scrolling", async (t) => {
  const pages: [string, string][] = [
    ["deployments", "/deployments"],
    ["agents", "/agents"],
    ["deploy-keys", "/keys"],
    ["cluster", `/cluster?agent=${agentId}&namespace=${namespace}`],
    ["deployment", `/deployments/${deploymentId}`],
  ];
  const wide = await openPage(browser, { adminToken: stack.adminToken });
  const narrow = await openPage(browser, { adminToken: stack.adminToken, width: 390, height: 844 });
  try {
    for (const [name, p] of pages) {
      for (const [view, suffix] of [
        [wide, ""],
        [narrow, "-390px"],
      ] as const) {
        await view.page.goto(url(p));
        await view.page.waitForFunction(() => performance.getEntriesByName("k8sdeploy:first-content").length > 0);
        if (name === "deployments") await view.page.locator(".live[data-live=live]").waitFor();
        await view.page.waitForTimeout(300);
        for (const theme of themes) {
          await useTheme(view.page, theme);
          await screenshot(view.page, `${name}${suffix}`, theme);
        }
        if (suffix) t.is(await horizontalOverflow(view.page), 0, `${name} overflows at 390 px`);
      }
    }
    t.deepEqual(
      [...wide.problems, ...narrow.problems].filter((p) => !expectedProblem(p)),
      [],
      "console errors",
    );
  } finally {
    await wide.context.close();
    await narrow.context.close();
  }
});

test.serial(
  "after a network drop the live list resumes from its cursor and catches up on what it missed",
  async (t) => {
    const lossy = await startTestFront(stack.replicas[0]?.httpAddress ?? "");
    const view = await openPage(browser, { adminToken: stack.adminToken });
    try {
      await view.page.goto(`${lossy.url}/deployments`);
      await view.page.locator(".live[data-live=live]").waitFor();
      await markNoReload(view.page);
      // A change while connected gives the page a cursor.
      const first = await deployImage("1.1.0", "7101");
      await view.page.locator(`tr[data-deployment-id="${first}"][data-state=succeeded]`).waitFor();

      // The network drops: the stream dies and reconnect attempts fail.
      lossy.setOffline(true);
      lossy.cutConnections();
      await view.page.locator(".live[data-live=reconnecting]").waitFor();
      const seenBefore = lossy.requests.length;
      const missed = await deployImage("1.2.0", "7102");
      t.is(await view.page.locator(`tr[data-deployment-id="${missed}"]`).count(), 0, "not shown while offline");

      // Back online: the page reconnects from its cursor and the server replays what it missed.
      const back = Date.now();
      lossy.setOffline(false);
      await view.page.locator(`tr[data-deployment-id="${missed}"][data-state=succeeded]`).waitFor({ timeout: 30_000 });
      t.log(`caught up ${Date.now() - back} ms after the network came back`);
      t.true(await stillSamePage(view.page), "no reload happened");
      const after = lossy.requests.slice(seenBefore);
      const watch = after.find((r) => r.path.endsWith("/WatchDeployments"));
      t.truthy(watch, "the stream was reopened");
      t.regex(String(envelopeJson(watch?.body ?? "\0\0\0\0\0{}").cursor ?? ""), /.+/, "resumed with a cursor");
      t.is(after.filter((r) => r.path.endsWith("/ListDeployments")).length, 0, "caught up from the stream, no re-list");
      t.deepEqual(
        view.problems.filter((p) => !/Failed to load resource|ERR_|net::/.test(p)),
        [],
        "no errors other than the dropped requests",
      );
    } finally {
      await view.context.close();
      await lossy.close();
    }
  },
);

test.serial("stopping the agent shows it offline in Agents and in Cluster, without reload", async (t) => {
  await page.goto(url("/agents"));
  const row = page.locator(`tr[data-agent-id="${agentId}"]`);
  await page.locator(`tr[data-agent-id="${agentId}"][data-connection=connected]`).waitFor();
  await markNoReload(page);
  const stopped = Date.now();
  await agentProc?.kill();
  await page.locator(`tr[data-agent-id="${agentId}"][data-connection=disconnected]`).waitFor({ timeout: 20_000 });
  t.log(`agent shown offline ${Date.now() - stopped} ms after it was stopped`);
  t.true(await stillSamePage(page));
  t.regex(await textOf(row), /Offline[\s\S]*last seen/);
  for (const theme of themes) {
    await useTheme(page, theme);
    await screenshot(page, "agents-offline", theme);
  }
  await useTheme(page, "light");

  await page.goto(url(`/cluster?agent=${agentId}&namespace=${namespace}`));
  const offline = page.locator("[data-testid=agent-offline]").first();
  await offline.waitFor();
  t.regex(await textOf(offline), /offline since/);
  for (const theme of themes) {
    await useTheme(page, theme);
    await screenshot(page, "cluster-offline", theme);
  }
  await useTheme(page, "light");
  t.deepEqual(
    main.problems.filter((p) => !expectedProblem(p)),
    [],
    "console errors on the main page",
  );
});

test.serial("rotate an agent token and revoke the agent and the deploy key, each after a confirmation", async (t) => {
  await page.goto(url("/agents"));
  const row = page.locator(`tr[data-agent-id="${agentId}"]`);
  await row.waitFor();
  await row.locator("button", { hasText: "Rotate token" }).click();
  const rotate = page.locator("dialog[open]");
  await rotate.waitFor();
  await rotate.locator("select").selectOption("0");
  await rotate.locator("button[type=submit]").click();
  await page.locator("[data-testid=agent-token-panel]").waitFor();
  const newToken = (await textOf(page.locator("[data-testid=agent-token]"))).trim();
  t.regex(newToken, /^kda_/);
  t.not(newToken, agentToken);
  const snippet = await textOf(page.locator("[data-testid=install-snippet]"));
  t.true(snippet.includes(`--from-literal=token=${newToken}`));
  t.regex(snippet, /rollout restart deployment\/k8sdeploy-agent/);
  await page.click("text=I have copied it");

  await row.locator("button", { hasText: "Revoke" }).click();
  const revoke = page.locator("dialog[open]");
  await revoke.waitFor();
  t.regex(await textOf(revoke), /cannot be undone/);
  await revoke.locator("button[type=submit]").click();
  await row.waitFor({ state: "detached" });
  await page.check("text=Show revoked agents");
  await page.locator(`tr[data-agent-id="${agentId}"]`, { hasText: "Revoked" }).waitFor();

  await page.goto(url("/keys"));
  const keyRow = page.locator("tr[data-key-id]", { hasText: "acme/web" });
  await keyRow.waitFor();
  await keyRow.locator("button", { hasText: "Revoke" }).click();
  await page.locator("dialog[open] button[type=submit]").click();
  await keyRow.waitFor({ state: "detached" });
  await page.check("text=Show revoked keys");
  await page.locator("tr[data-key-id]", { hasText: "acme/web" }).locator(".badge", { hasText: "Revoked" }).waitFor();
  const { deployKeys } = await adminCall<{ deployKeys?: { revokedAt?: string }[] }>("AdminService", "ListDeployKeys", {
    includeRevoked: true,
  });
  t.true((deployKeys ?? []).every((k) => k.revokedAt !== undefined));
});

test.serial("metrics: bundle size (gzip) and time to first render", async (t) => {
  const size = bundleSize();
  const runs: { signIn: RenderTiming[]; deployments: RenderTiming[] } = { signIn: [], deployments: [] };
  for (let i = 0; i < 5; i++) {
    runs.signIn.push(await measureFirstRender(browser, url("/")));
    runs.deployments.push(await measureFirstRender(browser, url("/deployments"), stack.adminToken));
  }
  const summarize = (list: RenderTiming[], key: keyof RenderTiming) =>
    Math.round(median(list.map((r) => r[key]).filter((v): v is number => v !== null)) * 10) / 10;
  const metrics = {
    measuredAt: new Date().toISOString(),
    servedBy: front.mode,
    bundle: {
      totalGzipBytes: size.totalGzipBytes,
      totalBytes: size.totalBytes,
      files: size.files,
    },
    firstRender: {
      runs: 5,
      note: "median ms from navigation start, cold cache, loopback; first-content = first page data on screen",
      signIn: {
        firstContentfulPaintMs: summarize(runs.signIn, "firstContentfulPaintMs"),
        firstContentMs: summarize(runs.signIn, "firstContentMs"),
      },
      deployments: {
        firstContentfulPaintMs: summarize(runs.deployments, "firstContentfulPaintMs"),
        appRenderedMs: summarize(runs.deployments, "appRenderedMs"),
        firstContentMs: summarize(runs.deployments, "firstContentMs"),
      },
    },
  };
  const file = await writeMetrics(metrics);
  t.log(
    `web bundle: ${(size.totalGzipBytes / 1024).toFixed(1)} KiB gzip (${(size.totalBytes / 1024).toFixed(1)} KiB raw)`,
  );
  for (const f of size.files) t.log(`  ${f.file}: ${(f.gzipBytes / 1024).toFixed(1)} KiB gzip`);
  t.log(
    `first render: sign-in form ${metrics.firstRender.signIn.firstContentMs} ms, deployments list ${metrics.firstRender.deployments.firstContentMs} ms (FCP ${metrics.firstRender.deployments.firstContentfulPaintMs} ms)`,
  );
  t.log(`written to ${path.relative(repoRoot, file)}`);
  t.true(size.totalGzipBytes < 100 * 1024, "the first load stays under 100 KiB gzip");
  t.true(metrics.firstRender.deployments.firstContentMs < 3000);
});

test.serial("signing out forgets the token; a token the server rejects sends you back to sign in", async (t) => {
  await page.goto(url("/deployments"));
  await page.click("button:has-text('Sign out')");
  await page.locator("#admin-token").waitFor();
  t.is(await page.evaluate(() => sessionStorage.getItem("k8sdeploy.adminToken")), null);

  // A stale token (e.g. the admin token was changed): the first 401 clears it and shows sign-in.
  await page.evaluate(() => sessionStorage.setItem("k8sdeploy.adminToken", "stale-admin-token-0123456789abcdef"));
  await page.goto(url("/agents"));
  await page.locator("#admin-token").waitFor();
  t.regex(await textOf(page.locator(".notice")), /no longer accepts your admin token/);
  t.is(await page.evaluate(() => sessionStorage.getItem("k8sdeploy.adminToken")), null);
});

test.serial("a queued deployment is cancelled from its page and never applied", async (t) => {
  // An agent that is not running: its deployment waits in the queue.
  const offline = await stack.createAgent("web-ui-offline");
  const { key } = await stack.createKey(offline.id);
  const client = deployClient(stack.replicas[0]?.grpcAddress ?? "", key);
  const { deployment } = await client.deploy(
    deployRequest({ namespace, workload: "web", image: "registry.example/acme/web:9" }),
  );
  client.close();
  const id = deployment?.id ?? "";
  await page.goto(url(`/deployments/${id}`));
  // The journey signed out just before: sign in again, landing on the deployment.
  await page.fill("#admin-token", stack.adminToken);
  await page.press("#admin-token", "Enter");
  await page.locator(".subtitle [data-state=queued]").waitFor();
  await page.click("button:has-text('⊘ Cancel')");
  const dialog = page.locator("dialog[open]");
  await dialog.waitFor();
  t.regex(await textOf(dialog), /never applied/);
  await dialog.locator("button[type=submit]").click();
  await page.locator(".subtitle [data-state=cancelled]").waitFor({ timeout: 10_000 });
  // The reason shows once: in the callout; the timeline's last event points to it.
  t.regex(await textOf(page.locator("[data-testid=failure]")), /cancelled by an admin before delivery/);
  t.regex(await textOf(page.locator(".timeline-item").last()), /Cancelled \(see above\)/);
  t.is(await page.locator("button:has-text('⊘ Cancel')").count(), 0, "no Cancel once final");
  const got = await adminCall<{ deployments: { id: string; state: string }[] }>("AdminService", "ListDeployments", {
    agentId: offline.id,
  });
  t.deepEqual(
    got.deployments.map((d) => [d.id, d.state]),
    [[id, "DEPLOYMENT_STATE_CANCELLED"]],
  );
});
