/// <reference lib="dom" />
// The Webhooks page in Chromium against a real orchestrator (Redis) and a webhook receiver on
// loopback: add a webhook in the UI (the secret shown once), see a delivery retried after a 500
// and delivered, verify the request with the secret read from the page, delete the webhook.
import test from "ava";
import type { Browser } from "playwright-core";
import { Webhook } from "standardwebhooks";
import { startWebhookReceiver, type WebhookReceiver } from "../orchestrator/src/notify/testing/webhook-receiver.js";
import {
  browserPreflight,
  dashboardOrigin,
  horizontalOverflow,
  launchChromium,
  openPage,
  screenshot,
  useTheme,
  type WatchedPage,
} from "./support/browser.js";
import { deployClient, deployRequest } from "./support/clients.js";
import { type Stack, startStack } from "./support/stack.js";

let stack: Stack;
let browser: Browser;
let receiver: WebhookReceiver;
let front: Awaited<ReturnType<typeof dashboardOrigin>>;
let view: WatchedPage;
let agentId = "";
let key = "";

test.before(async () => {
  browserPreflight();
  receiver = await startWebhookReceiver((_, n) => (n === 0 ? 500 : 204));
  stack = await startStack({
    replicas: 1,
    env: { K8SDEPLOY_WEBHOOK_ALLOW_LOOPBACK: "true", K8SDEPLOY_WEBHOOK_BACKOFF_SECONDS: "1" },
  });
  const agent = await stack.createAgent("homelab");
  agentId = agent.id;
  key = (await stack.createKey(agent.id)).key;
  const replica = stack.replicas[0];
  if (!replica) throw new Error("no replica");
  front = await dashboardOrigin(replica.httpAddress);
  browser = await launchChromium();
  view = await openPage(browser, { adminToken: stack.adminToken });
});

test.after.always(async () => {
  await view?.context.close();
  await browser?.close();
  await front?.close();
  await stack?.stop();
  await receiver?.close();
});

test.serial("add a webhook in the UI, watch its delivery retried and delivered, delete it", async (t) => {
  const { page } = view;
  await page.goto(`${front.url}/webhooks`);
  await page.locator("#webhook-agent").waitFor();
  await page.selectOption("#webhook-agent", agentId);
  await page.fill("#webhook-url", `${receiver.url}/ui`);
  await page.fill("#webhook-name", "ops");
  await page.check("input[data-state=cancelled]");
  await page.click("button:has-text('Add webhook')");
  await page.locator("[data-testid=webhook-secret-panel]").waitFor();
  const secret = ((await page.locator("[data-testid=webhook-secret]").textContent()) ?? "").trim();
  t.regex(secret, /^whsec_/);
  for (const theme of ["light", "dark"] as const) {
    await useTheme(page, theme);
    await screenshot(page, "webhooks-created", theme);
  }
  await useTheme(page, "light");
  await page.click("text=I have copied it");
  t.is(await page.locator("[data-testid=webhook-secret-panel]").count(), 0, "the secret is shown only once");
  const row = page.locator("tr[data-webhook-id]", { hasText: "ops" });
  await row.waitFor();
  t.regex((await row.textContent()) ?? "", /http:\/\/127\.0\.0\.1:\d+\/…/);
  t.regex((await row.textContent()) ?? "", /cancelled/);
  t.false(((await row.textContent()) ?? "").includes("/hook/ui"), "the full URL is never shown");

  // A deployment of the agent ends (cancelled): the first attempt gets a 500, the retry a 204.
  const replica = stack.replicas[0];
  if (!replica) throw new Error("no replica");
  const client = deployClient(replica.grpcAddress, key);
  const { deployment } = await client.deploy(
    deployRequest({ namespace: "shop", workload: "web", image: "acme/web:2" }),
  );
  client.close();
  await stack.cli(["deployments", "cancel", deployment?.id ?? ""]);
  const delivered = page.locator("tr[data-delivery-id]", { hasText: "Delivered" });
  await delivered.waitFor({ timeout: 30_000 });
  const text = (await delivered.textContent()) ?? "";
  t.true(text.includes(deployment?.id ?? "?"));
  t.regex(text, /Cancelled/);
  t.regex((await delivered.locator("[data-testid=delivery-answer]").textContent()) ?? "", /HTTP 204/);
  t.regex((await delivered.locator("td[data-label=Attempts]").textContent()) ?? "", /^2$/);
  const requests = receiver.received;
  t.is(requests.length, 2);
  for (const r of requests) {
    t.notThrows(() => new Webhook(secret).verify(r.body, r.headers as Record<string, string>));
  }
  for (const theme of ["light", "dark"] as const) {
    await useTheme(page, theme);
    await screenshot(page, "webhooks", theme);
  }
  await useTheme(page, "light");

  const narrow = await openPage(browser, { adminToken: stack.adminToken, width: 390, height: 844 });
  try {
    await narrow.page.goto(`${front.url}/webhooks`);
    await narrow.page.locator("tr[data-delivery-id]").first().waitFor();
    t.is(await horizontalOverflow(narrow.page), 0, "the page overflows at 390 px");
  } finally {
    await narrow.context.close();
  }

  await row.locator("button:has-text('Delete')").click();
  await page.click("dialog button:has-text('Delete webhook')");
  await row.waitFor({ state: "detached" });
  t.deepEqual(JSON.parse(await stack.cli(["webhook", "list", "--json"])), []);
  t.deepEqual(view.problems, []);
});
