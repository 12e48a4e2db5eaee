// Agent updates that follow a release channel, end to end on real processes: an orchestrator told
// the current agent release, the agent bundle as a real process that opted in, and its "own
// Deployment" — a Deployment in the test bed whose pods kwok runs (a `crash` image never becomes
// Ready). The agent patches that Deployment, waits for the new pod, and rolls back.
import test from "ava";
import { browserPreflight, dashboardOrigin, launchChromium, openPage, screenshot } from "./support/browser.js";
import { deployClient, deployRequest } from "./support/clients.js";
import { waitConnected } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages, waitFor } from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Stack, startStack } from "./support/stack.js";

const DIGEST = `sha256:${"c".repeat(64)}`;
/** The release the orchestrator offers: its image crash-loops on the test bed. */
const RELEASE = { version: "99.0.0", image: `ghcr.io/k8sdeploy/agent:99.0.0-crash@${DIGEST}` };
const OLD = "ghcr.io/k8sdeploy/agent:0.1.0";

let stack: Stack;
let namespace: string;
let agentId: string;
let agentToken: string;
let key: string;

interface DeploymentJson {
  id: string;
  state: string;
  changeKind?: string;
  agentVersion?: string;
  image: string;
  failure?: { reason: string; message: string };
  message: string;
  createdAt: string;
  updatedAt: string;
}

async function deployments(): Promise<DeploymentJson[]> {
  return JSON.parse(await stack.cli(["deployments", "list", "--agent", agentId, "--json"]));
}
const updates = async () => (await deployments()).filter((d) => d.changeKind === "CHANGE_KIND_AGENT_UPDATE");

test.before(async () => {
  agentBundleCheck();
  stack = await startStack({
    env: {
      K8SDEPLOY_AGENT_RELEASE_VERSION: RELEASE.version,
      K8SDEPLOY_AGENT_RELEASE_IMAGE: RELEASE.image,
      K8SDEPLOY_AGENT_UPDATE_READY_SECONDS: "8",
      K8SDEPLOY_AGENT_UPDATE_INTERVAL_SECONDS: "1",
    },
  });
  namespace = await createNamespace("e2e-agent-update");
  // The agent's own Deployment (the agent process itself runs here, outside the cluster).
  await createDeployment(namespace, "k8sdeploy-agent", [{ name: "agent", image: OLD }], { replicas: 1 });
  const agent = await stack.createAgent("e2e-agent-update");
  agentId = agent.id;
  agentToken = agent.token;
  key = (await stack.createKey(agent.id, { namespaces: [namespace] })).key;
  await createDeployment(namespace, "slow", [{ name: "app", image: "registry.example/acme/slow:1" }], {
    replicas: 1,
    minReadySeconds: 12,
  });
});

test.after.always(async () => {
  await stack?.stop();
  if (namespace) await deleteNamespace(namespace);
});

test.serial(
  "the release channel: behind, never during a deploy, then updated; a crash image is rolled back and reported",
  async (t) => {
    // A deploy that keeps the agent busy for ~10 s (an image that never pulls), queued before the
    // agent connects: the automatic update must wait for it.
    const [replica] = stack.replicas;
    if (!replica) throw new Error("no replica");
    const client = deployClient(replica.grpcAddress, key);
    const busy = await client.deploy(
      deployRequest({ namespace, workload: "slow", image: "registry.example/acme/slow:2", timeoutSeconds: 60 }),
    );
    client.close();

    stack.startAgent({
      token: agentToken,
      servers: [replica.grpcAddress],
      env: { K8SDEPLOY_AUTO_UPDATE: "true", POD_NAMESPACE: namespace, K8SDEPLOY_AGENT_DEPLOYMENT: "k8sdeploy-agent" },
    });
    await waitConnected(stack, agentId);

    // `agent list` shows the agent behind the release.
    const listed = JSON.parse(await stack.cli(["agent", "list", "--json"])) as {
      id: string;
      version: string;
      availableUpdate?: { version: string; image: string };
    }[];
    t.deepEqual(listed.find((a) => a.id === agentId)?.availableUpdate, RELEASE);
    const table = await stack.cli(["agent", "list"]);
    const running = listed.find((a) => a.id === agentId)?.version ?? "";
    t.regex(running, /^\d+\.\d+\.\d+/);
    t.regex(table, new RegExp(`^${agentId} .* ${running.replaceAll(".", "\\.")} +→ 99\\.0\\.0 \\(auto\\)`, "m"));
    t.regex(table, new RegExp(`current agent release: 99\\.0\\.0 \\(${RELEASE.image.replace(/[.@/:]/g, "\\$&")}\\)`));

    // While the deploy runs, no update starts (the rollout looks every second): checked while it
    // runs, and below by time (the update is created only after the deploy's final event).
    await waitFor(
      async () =>
        (await deployments()).some((d) => d.id === busy.deployment?.id && d.state === "DEPLOYMENT_STATE_IN_PROGRESS"),
      "the deploy to start",
    );
    await new Promise((r) => setTimeout(r, 2000));
    const during = await updates();
    const busyNow = (await deployments()).find((d) => d.id === busy.deployment?.id);
    if (busyNow?.state === "DEPLOYMENT_STATE_IN_PROGRESS") t.deepEqual(during, [], "an update started during a deploy");
    await waitFor(
      async () =>
        (await deployments()).some((d) => d.id === busy.deployment?.id && d.state === "DEPLOYMENT_STATE_SUCCEEDED"),
      "the deploy to end",
      60_000,
    );
    const finished = (await deployments()).find((d) => d.id === busy.deployment?.id);

    // Then the automatic update: the agent patches its Deployment, the crash pod never gets Ready,
    // the agent restores the previous image and reports ROLLED_BACK / AGENT_NOT_READY.
    await waitFor(async () => (await updates()).length === 1, "the automatic update to start", 30_000);
    await waitFor(
      async () => (await updates())[0]?.state === "DEPLOYMENT_STATE_ROLLED_BACK",
      "the update to be rolled back",
      90_000,
    );
    const [update] = await updates();
    t.is(update?.image, RELEASE.image);
    t.is(update?.agentVersion, RELEASE.version);
    t.is(update?.failure?.reason, "FAILURE_REASON_AGENT_NOT_READY");
    t.regex(
      update?.message ?? "",
      /did not become Ready within 8 s.*rolled back to ghcr\.io\/k8sdeploy\/agent:0\.1\.0/,
    );
    t.true(
      Date.parse(update?.createdAt ?? "") >= Date.parse(finished?.updatedAt ?? ""),
      `update ${update?.createdAt} before the deploy ended ${finished?.updatedAt}`,
    );
    t.deepEqual(await deploymentImages(namespace, "k8sdeploy-agent"), { agent: OLD });

    // The timeline (GetDeployment) tells the story.
    const admin = deployClient(replica.grpcAddress, stack.adminToken);
    const { events } = await admin.get(update!.id);
    admin.close();
    const messages = events.map((e) => e.message);
    t.true(
      messages.some((m) => /patched deployment "k8sdeploy-agent".*→ ghcr\.io\/k8sdeploy\/agent:99\.0\.0-crash/.test(m)),
      messages.join("\n"),
    );
    t.true(
      messages.some((m) => /restoring ghcr\.io\/k8sdeploy\/agent:0\.1\.0/.test(m)),
      messages.join("\n"),
    );

    // One automatic attempt per release: no retry loop.
    await new Promise((r) => setTimeout(r, 3000));
    t.is((await updates()).length, 1);

    // The dashboard: release channel, "update available", the record with its timeline, the button.
    browserPreflight();
    const browser = await launchChromium();
    try {
      const front = await dashboardOrigin(replica.httpAddress);
      const { page, problems } = await openPage(browser, { adminToken: stack.adminToken });
      await page.goto(`${front.url}/agents`);
      await page.getByTestId("release-channel").getByText("99.0.0", { exact: true }).waitFor();
      const row = page.locator(`tr[data-agent-id="${agentId}"]`);
      await row.getByTestId("update-available").getByText("update available: 99.0.0").waitFor();
      await screenshot(page, "agents-update-available", "light");
      await row.getByRole("link", { name: "last update" }).click();
      await page.getByTestId("agent-update-badge").getByText("Agent update to 99.0.0").waitFor();
      await page.getByText("New agent never became Ready", { exact: true }).waitFor();
      await page
        .getByText(/restoring ghcr\.io\/k8sdeploy\/agent:0\.1\.0/)
        .first()
        .waitFor();
      await screenshot(page, "agent-update-rolled-back", "light");
      // The Update button queues an update to the release (this one rolls back again).
      await page.goto(`${front.url}/agents`);
      await row.getByTestId("update-agent").click();
      await page.getByRole("button", { name: "Update agent" }).click();
      await page.waitForURL(/\/deployments\/dep_/);
      const viaButton = decodeURIComponent(new URL(page.url()).pathname.split("/").pop() ?? "");
      await waitFor(
        async () => (await updates()).find((d) => d.id === viaButton)?.state === "DEPLOYMENT_STATE_ROLLED_BACK",
        "the update from the button to roll back",
        90_000,
      );
      await page.getByText("New agent never became Ready", { exact: true }).waitFor();
      t.deepEqual(problems, []);
      await front.close();
    } finally {
      await browser.close();
    }

    // A manual update to a good image (the CLI) succeeds once the new pod is Ready.
    const out = JSON.parse(
      await stack.cli(["agent", "update", agentId, "--image", "ghcr.io/k8sdeploy/agent:0.2.0", "--json"]),
    ) as DeploymentJson;
    await waitFor(
      async () => (await updates()).find((d) => d.id === out.id)?.state === "DEPLOYMENT_STATE_SUCCEEDED",
      "the manual update",
      60_000,
    );
    t.deepEqual(await deploymentImages(namespace, "k8sdeploy-agent"), { agent: "ghcr.io/k8sdeploy/agent:0.2.0" });

    const everything = stack.allOutput();
    t.false(everything.includes(agentToken));
    t.false(everything.includes(key));
  },
);
