// Dashboard links to GitHub take their host from K8SDEPLOY_GITHUB_SERVER_URL (github.com by
// default), never from the deployment's origin: with a run URL on another host, the repository,
// commit and actor links still point to the configured server and the run URL is not a link.
// Real Chromium on the orchestrator's own HTTP port; the deployment stays queued (no agent).
import test from "ava";
import type { Browser } from "playwright-core";
import { browserPreflight, launchChromium, openPage } from "./support/browser.js";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";

const ADMIN_TOKEN = `admin-${"11nk".repeat(10)}`;
let browser: Browser;

test.before(async () => {
  browserPreflight();
  browser = await launchChromium();
});

test.after.always(async () => {
  await browser?.close().catch(() => {});
});

async function connect<T>(orch: Orchestrator, service: string, method: string, token: string, body: unknown) {
  const res = await fetch(`${orch.httpUrl}/k8sdeploy.v1.${service}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** A queued deployment whose origin points its run URL at another host. */
async function hostileDeployment(orch: Orchestrator): Promise<string> {
  const { agent } = await connect<{ agent: { id: string } }>(orch, "AdminService", "CreateAgent", ADMIN_TOKEN, {
    name: "links",
  });
  const { key } = await connect<{ key: string }>(orch, "AdminService", "CreateDeployKey", ADMIN_TOKEN, {
    agentId: agent.id,
    name: "links",
  });
  const { deployment } = await connect<{ deployment: { id: string } }>(orch, "DeployService", "Deploy", key, {
    namespace: "shop",
    workload: "web",
    image: "registry.example/acme/web:2.0.0",
    origin: {
      repository: "acme/web",
      sha: "0123456789abcdef0123456789abcdef01234567",
      ref: "refs/heads/main",
      actor: "octocat",
      runUrl: "https://evil.example/acme/web/actions/runs/1",
      workflow: "deploy",
    },
  });
  return deployment.id;
}

async function originLinks(orch: Orchestrator, id: string) {
  const { page, context } = await openPage(browser, { adminToken: ADMIN_TOKEN });
  try {
    await page.goto(`${orch.httpUrl}/deployments/${id}`);
    const origin = page.locator("section[aria-labelledby=origin-h]");
    await origin.locator("a", { hasText: "acme/web" }).waitFor();
    const hrefs = await origin.locator("a").evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
    return { hrefs, text: (await origin.textContent()) ?? "" };
  } finally {
    await context.close();
  }
}

for (const [label, server] of [
  ["github.com by default", undefined],
  ["a configured GitHub Enterprise host", "https://ghe.example.com"],
] as const) {
  test.serial(`links point to ${label}, whatever the run URL says`, async (t) => {
    const orch = await startOrchestrator({
      env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN, ...(server ? { K8SDEPLOY_GITHUB_SERVER_URL: server } : {}) },
    });
    try {
      const base = server ?? "https://github.com";
      const { hrefs, text } = await originLinks(orch, await hostileDeployment(orch));
      t.deepEqual(hrefs.sort(), [
        `${base}/acme/web`,
        `${base}/acme/web/commit/0123456789abcdef0123456789abcdef01234567`,
        `${base}/octocat`,
      ]);
      t.false(hrefs.some((h) => h.includes("evil.example")));
      t.regex(text, /@octocat/);
      t.regex(text, /deploy/);
    } finally {
      await orch.stop();
    }
  });
}

test.serial("a GitHub server URL that is not an origin stops start-up naming the variable", async (t) => {
  const err = await t.throwsAsync(
    startOrchestrator({
      env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN, K8SDEPLOY_GITHUB_SERVER_URL: "https://ghe.example.com/path" },
      timeoutMs: 10_000,
    }),
  );
  t.regex(err?.message ?? "", /K8SDEPLOY_GITHUB_SERVER_URL: "https:\/\/ghe\.example\.com\/path" is not an origin/);
});
