// Webhooks: notify a URL when an agent's deployments end (generic JSON signed with HMAC, Slack or
// Discord); the signing secret is shown once; the delivery log shows every attempt's outcome.

import {
  type Webhook,
  type WebhookDelivery,
  WebhookDeliveryState,
  WebhookFormat,
} from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import type { DeploymentState } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { createSignal, For, Show } from "solid-js";
import { admin } from "../api/clients.js";
import { AgentRequired } from "../components/AgentRequired.js";
import { AgentSelect } from "../components/AgentSelect.js";
import { Badge, StateBadge } from "../components/Badge.js";
import { ConfirmDialog } from "../components/ConfirmDialog.js";
import { CopyBlock } from "../components/CopyButton.js";
import { CreatedPanel } from "../components/CreatedPanel.js";
import { CreateForm } from "../components/CreateForm.js";
import { RemoveAction } from "../components/DataTable.js";
import { EmptyState } from "../components/Feedback.js";
import { PageHeader } from "../components/Layout.js";
import { PolledTable } from "../components/PolledView.js";
import { RelativeTime } from "../components/RelativeTime.js";
import { ScopeTags } from "../components/ScopeTags.js";
import { TextField } from "../components/TextField.js";
import { isFinalState, stateInfo, stateOrder, type Tone } from "../lib/format.js";
import { pageTitle } from "../lib/page-title.js";
import { markFirstContentWhen } from "../lib/perf.js";
import { createAgentForm } from "../state/agent-form.js";
import { agentName, createAgentsQuery } from "../state/agents.js";
import { createConfirm } from "../state/confirm.js";
import { createPolled } from "../state/polled.js";

const FORMATS: { value: WebhookFormat; label: string; hint: string }[] = [
  {
    value: WebhookFormat.GENERIC,
    label: "Generic JSON (signed)",
    hint: "JSON signed with HMAC-SHA256 (Standard Webhooks headers); verify it with the secret shown once.",
  },
  { value: WebhookFormat.SLACK, label: "Slack", hint: "Paste a Slack incoming-webhook URL." },
  { value: WebhookFormat.DISCORD, label: "Discord", hint: "Paste a Discord channel webhook URL." },
];

const FINAL_STATES = stateOrder.filter(isFinalState);

const formatLabel = (f: WebhookFormat) => FORMATS.find((x) => x.value === f)?.label.replace(" (signed)", "") ?? "?";

const DELIVERY: Record<number, { label: string; tone: Tone; icon: string }> = {
  [WebhookDeliveryState.PENDING]: { label: "Pending", tone: "progress", icon: "↻" },
  [WebhookDeliveryState.DELIVERED]: { label: "Delivered", tone: "success", icon: "✓" },
  [WebhookDeliveryState.FAILED]: { label: "Failed", tone: "danger", icon: "✕" },
};

function RevealSecret(props: { webhook: Webhook; secret: string; onDone: () => void }) {
  return (
    <CreatedPanel
      headingId="secret-reveal-h"
      testId="webhook-secret-panel"
      title={<>Webhook “{props.webhook.name}” created</>}
      onDone={props.onDone}
      notice={
        <>
          Copy the signing secret now: it is shown only once. The receiver checks the <code>webhook-signature</code>{" "}
          header with it (HMAC-SHA256 over <code>webhook-id.webhook-timestamp.body</code>) and refuses requests older
          than a few minutes.
        </>
      }
    >
      <CopyBlock label="Signing secret" text={props.secret} testId="webhook-secret" secret />
    </CreatedPanel>
  );
}

export function Webhooks() {
  pageTitle("Webhooks");
  const agents = createAgentsQuery(10_000);
  const hooks = createPolled(async (signal) => (await admin.listWebhooks({}, { signal })).webhooks, 10_000);
  const deliveries = createPolled(
    async (signal) => (await admin.listWebhookDeliveries({ limit: 50 }, { signal })).deliveries,
    5_000,
  );

  const [format, setFormat] = createSignal<WebhookFormat>(WebhookFormat.GENERIC);
  const [url, setUrl] = createSignal("");
  const [name, setName] = createSignal("");
  const [states, setStates] = createSignal<DeploymentState[]>([]);
  const [revealed, setRevealed] = createSignal<{ webhook: Webhook; secret: string }>();
  const deleting = createConfirm(async (hook: Webhook) => {
    await admin.deleteWebhook({ id: hook.id });
    deleting.close();
    void hooks.refresh();
  });

  const form = createAgentForm(agents, "Choose the agent whose deployments this webhook reports.");
  const hookName = (id: string) => hooks.data()?.find((h) => h.id === id)?.name ?? id;

  const toggleState = (state: DeploymentState, on: boolean) =>
    setStates((current) => (on ? [...current, state] : current.filter((s) => s !== state)));

  const create = form.onSubmit(async (agentId) => {
    const response = await admin.createWebhook({
      agentId,
      url: url().trim(),
      format: format(),
      states: states(),
      name: name().trim(),
    });
    if (response.webhook && response.secret) setRevealed({ webhook: response.webhook, secret: response.secret });
    setUrl("");
    setName("");
    setStates([]);
    void hooks.refresh();
  });

  markFirstContentWhen(() => !hooks.loading());
  return (
    <>
      <PageHeader title="Webhooks" />
      <Show when={revealed()}>
        {(r) => <RevealSecret webhook={r().webhook} secret={r().secret} onDone={() => setRevealed(undefined)} />}
      </Show>

      <AgentRequired
        when={form.canCreate()}
        why={
          <>
            A webhook reports the deployments of one agent. <a href="/agents">Register an agent</a> first.
          </>
        }
      >
        <CreateForm
          headingId="create-webhook-h"
          title="Add a webhook"
          intro="Called once for every deployment of the agent that reaches a final state, retried with backoff."
          action={form.action}
          submitLabel="Add webhook"
          pendingLabel="Adding…"
          onSubmit={create}
        >
          <div class="form-grid">
            <AgentSelect id="webhook-agent" {...form.select} />
            <div class="field">
              <label for="webhook-format">Format</label>
              <select
                id="webhook-format"
                value={String(format())}
                onChange={(e) => setFormat(Number(e.currentTarget.value) as WebhookFormat)}
                aria-describedby="webhook-format-hint"
              >
                <For each={FORMATS}>
                  {(f) => (
                    <option value={String(f.value)} selected={f.value === format()}>
                      {f.label}
                    </option>
                  )}
                </For>
              </select>
            </div>
            <TextField
              id="webhook-url"
              label="URL"
              type="url"
              required
              maxlength="2048"
              placeholder="https://…"
              value={url()}
              onInput={setUrl}
            />
            <TextField
              id="webhook-name"
              label="Name"
              maxlength="63"
              placeholder="e.g. #deploys"
              value={name()}
              onInput={setName}
            />
          </div>
          <p id="webhook-format-hint" class="hint">
            {FORMATS.find((f) => f.value === format())?.hint}
          </p>
          <fieldset>
            <legend>Report these final states (none checked: all of them)</legend>
            <div class="tags">
              <For each={FINAL_STATES}>
                {(s) => (
                  <label class="checkbox">
                    <input
                      type="checkbox"
                      data-state={stateInfo(s).slug}
                      checked={states().includes(s)}
                      onChange={(e) => toggleState(s, e.currentTarget.checked)}
                    />
                    {stateInfo(s).label}
                  </label>
                )}
              </For>
            </div>
          </fieldset>
        </CreateForm>
      </AgentRequired>

      <PolledTable
        source={hooks}
        loadingLabel="Loading webhooks…"
        empty={
          <EmptyState title="No webhooks yet">
            <p>Add one above to hear about deployments in Slack, Discord or your own service.</p>
          </EmptyState>
        }
        label="Webhooks"
        columns={["Webhook", "Agent", "Format", "Reports", "Created"]}
        actions
      >
        {(h) => (
          <tr data-webhook-id={h.id}>
            <td data-label="Webhook">
              <span class="strong">{h.name}</span>
              <div class="muted small">
                <code>{h.urlPreview}</code>
              </div>
            </td>
            <td data-label="Agent">{agentName(agents.data(), h.agentId)}</td>
            <td data-label="Format">{formatLabel(h.format)}</td>
            <td data-label="Reports">
              <ScopeTags values={h.states.map((s) => stateInfo(s).slug)} any="Every final state" />
            </td>
            <td data-label="Created">
              <RelativeTime value={h.createdAt} />
            </td>
            <RemoveAction label="Delete" onClick={() => deleting.ask(h)} />
          </tr>
        )}
      </PolledTable>

      <h2 id="deliveries-h" class="section-heading">
        Recent deliveries
      </h2>
      <PolledTable
        source={deliveries}
        loadingLabel="Loading deliveries…"
        empty={<p class="muted">Nothing delivered yet: deliveries appear when a deployment ends.</p>}
        emptyOnError
        labelledBy="deliveries-h"
        columns={["Queued", "Webhook", "Deployment", "Delivery", "Attempts", "Last answer"]}
      >
        {(d: WebhookDelivery) => (
          <tr data-delivery-id={d.id}>
            <td data-label="Queued">
              <RelativeTime value={d.createdAt} />
            </td>
            <td data-label="Webhook">{hookName(d.webhookId)}</td>
            <td data-label="Deployment">
              <a href={`/deployments/${encodeURIComponent(d.deploymentId)}`}>
                <code>{d.deploymentId}</code>
              </a>{" "}
              <StateBadge state={d.deploymentState} />
            </td>
            <td data-label="Delivery">
              <Badge {...(DELIVERY[d.state] ?? { label: "Unknown", tone: "neutral", icon: "?" })} />
              <Show when={d.state === WebhookDeliveryState.PENDING && d.nextAttemptAt}>
                <div class="muted small">
                  next <RelativeTime value={d.nextAttemptAt} />
                </div>
              </Show>
            </td>
            <td data-label="Attempts">{d.attempts}</td>
            <td data-label="Last answer" data-testid="delivery-answer">
              <Show when={d.lastHttpStatus > 0}>
                <code>HTTP {d.lastHttpStatus}</code>{" "}
              </Show>
              <span class="muted small">{d.lastError}</span>
            </td>
          </tr>
        )}
      </PolledTable>

      <ConfirmDialog
        {...deleting.dialog}
        title={`Delete webhook “${deleting.target()?.name ?? ""}”?`}
        confirmLabel="Delete webhook"
        danger
      >
        <p>It is not called any more; deliveries still waiting for a retry are given up.</p>
      </ConfirmDialog>
    </>
  );
}
