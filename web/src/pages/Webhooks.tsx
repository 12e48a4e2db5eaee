// Webhooks: notify a URL when an agent's deployments end (generic JSON signed with HMAC, Slack or
// Discord); the signing secret is shown once; the delivery log shows every attempt's outcome.

import {
  type Webhook,
  type WebhookDelivery,
  WebhookDeliveryState,
  WebhookFormat,
} from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { DeploymentState } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { createEffect, createSignal, For, onMount, Show } from "solid-js";
import { admin } from "../api/clients.js";
import { Badge, StateBadge } from "../components/Badge.js";
import { ConfirmDialog } from "../components/ConfirmDialog.js";
import { CopyBlock } from "../components/CopyButton.js";
import { EmptyState, InlineError, Loading } from "../components/Feedback.js";
import { PageHeader } from "../components/Layout.js";
import { RelativeTime } from "../components/RelativeTime.js";
import { stateInfo, type Tone } from "../lib/format.js";
import { markFirstContent } from "../lib/perf.js";
import { createAction } from "../state/action.js";
import { agentName, createAgentsQuery } from "../state/agents.js";
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

const FINAL_STATES = [
  DeploymentState.SUCCEEDED,
  DeploymentState.FAILED,
  DeploymentState.ROLLED_BACK,
  DeploymentState.TIMED_OUT,
  DeploymentState.CANCELLED,
  DeploymentState.SUPERSEDED,
  DeploymentState.EXPIRED,
];

const formatLabel = (f: WebhookFormat) => FORMATS.find((x) => x.value === f)?.label.replace(" (signed)", "") ?? "?";

const DELIVERY: Record<number, { label: string; tone: Tone; icon: string }> = {
  [WebhookDeliveryState.PENDING]: { label: "Pending", tone: "progress", icon: "↻" },
  [WebhookDeliveryState.DELIVERED]: { label: "Delivered", tone: "success", icon: "✓" },
  [WebhookDeliveryState.FAILED]: { label: "Failed", tone: "danger", icon: "✕" },
};

function RevealSecret(props: { webhook: Webhook; secret: string; onDone: () => void }) {
  let heading: HTMLHeadingElement | undefined;
  onMount(() => heading?.focus());
  return (
    <section class="card reveal" aria-labelledby="secret-reveal-h" data-testid="webhook-secret-panel">
      <h2 id="secret-reveal-h" ref={heading} tabindex="-1">
        Webhook “{props.webhook.name}” created
      </h2>
      <p class="notice">
        Copy the signing secret now: it is shown only once. The receiver checks the <code>webhook-signature</code>{" "}
        header with it (HMAC-SHA256 over <code>webhook-id.webhook-timestamp.body</code>) and refuses requests older than
        a few minutes.
      </p>
      <CopyBlock label="Signing secret" text={props.secret} testId="webhook-secret" secret />
      <div class="actions">
        <button type="button" class="btn btn-primary" onClick={() => props.onDone()}>
          I have copied it
        </button>
      </div>
    </section>
  );
}

export function Webhooks() {
  onMount(() => {
    document.title = "Webhooks · K8sDeploy";
  });
  const agents = createAgentsQuery(10_000);
  const hooks = createPolled(async (signal) => (await admin.listWebhooks({}, { signal })).webhooks, 10_000);
  const deliveries = createPolled(
    async (signal) => (await admin.listWebhookDeliveries({ limit: 50 }, { signal })).deliveries,
    5_000,
  );

  const [agentId, setAgentId] = createSignal("");
  const [format, setFormat] = createSignal<WebhookFormat>(WebhookFormat.GENERIC);
  const [url, setUrl] = createSignal("");
  const [name, setName] = createSignal("");
  const [states, setStates] = createSignal<DeploymentState[]>([]);
  const creation = createAction();
  const [revealed, setRevealed] = createSignal<{ webhook: Webhook; secret: string }>();
  const [deleting, setDeleting] = createSignal<Webhook>();
  const dialog = createAction();

  const activeAgents = () => (agents.data() ?? []).filter((a) => !a.revokedAt);
  createEffect(() => {
    const list = activeAgents();
    if (agentId() === "" && list.length === 1 && list[0]) setAgentId(list[0].id);
  });
  const hookName = (id: string) => hooks.data()?.find((h) => h.id === id)?.name ?? id;

  const toggleState = (state: DeploymentState, on: boolean) =>
    setStates((current) => (on ? [...current, state] : current.filter((s) => s !== state)));

  const create = async (e: SubmitEvent) => {
    e.preventDefault();
    if (agentId() === "") {
      creation.setError("Choose the agent whose deployments this webhook reports.");
      return;
    }
    await creation.run(async () => {
      const response = await admin.createWebhook({
        agentId: agentId(),
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
  };

  const remove = async () => {
    const hook = deleting();
    if (!hook) return;
    await dialog.run(async () => {
      await admin.deleteWebhook({ id: hook.id });
      setDeleting(undefined);
      void hooks.refresh();
    });
  };

  createEffect(() => {
    if (!hooks.loading()) markFirstContent();
  });
  return (
    <>
      <PageHeader title="Webhooks" />
      <Show when={revealed()}>
        {(r) => <RevealSecret webhook={r().webhook} secret={r().secret} onDone={() => setRevealed(undefined)} />}
      </Show>

      <Show
        when={agents.loading() || activeAgents().length > 0}
        fallback={
          <EmptyState title="Register an agent first">
            <p>
              A webhook reports the deployments of one agent. <a href="/agents">Register an agent</a> first.
            </p>
          </EmptyState>
        }
      >
        <form class="card" onSubmit={create} aria-labelledby="create-webhook-h">
          <h2 id="create-webhook-h">Add a webhook</h2>
          <p class="muted">
            Called once for every deployment of the agent that reaches a final state, retried with backoff.
          </p>
          <div class="form-grid">
            <div class="field">
              <label for="webhook-agent">Agent</label>
              <select id="webhook-agent" value={agentId()} onChange={(e) => setAgentId(e.currentTarget.value)} required>
                <option value="">Choose an agent…</option>
                <For each={activeAgents()}>
                  {(a) => (
                    <option value={a.id} selected={a.id === agentId()}>
                      {a.name}
                    </option>
                  )}
                </For>
              </select>
            </div>
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
            <div class="field">
              <label for="webhook-url">URL</label>
              <input
                id="webhook-url"
                type="url"
                required
                maxlength="2048"
                placeholder="https://…"
                value={url()}
                onInput={(e) => setUrl(e.currentTarget.value)}
              />
            </div>
            <div class="field">
              <label for="webhook-name">Name</label>
              <input
                id="webhook-name"
                maxlength="63"
                placeholder="e.g. #deploys"
                value={name()}
                onInput={(e) => setName(e.currentTarget.value)}
              />
            </div>
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
          <InlineError message={creation.error()} />
          <div class="actions">
            <button type="submit" class="btn btn-primary" disabled={creation.pending()}>
              {creation.pending() ? "Adding…" : "Add webhook"}
            </button>
          </div>
        </form>
      </Show>

      <InlineError message={hooks.error()} onRetry={() => void hooks.refresh()} />
      <Show when={!hooks.loading()} fallback={<Loading label="Loading webhooks…" />}>
        <Show
          when={(hooks.data() ?? []).length > 0}
          fallback={
            <Show when={!hooks.error()}>
              <EmptyState title="No webhooks yet">
                <p>Add one above to hear about deployments in Slack, Discord or your own service.</p>
              </EmptyState>
            </Show>
          }
        >
          <div class="table-wrap">
            <table class="table responsive" aria-label="Webhooks">
              <thead>
                <tr>
                  <th scope="col">Webhook</th>
                  <th scope="col">Agent</th>
                  <th scope="col">Format</th>
                  <th scope="col">Reports</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                <For each={hooks.data()}>
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
                        <Show when={h.states.length > 0} fallback={<span class="muted">Every final state</span>}>
                          <span class="tags">
                            <For each={h.states}>{(s) => <code class="tag">{stateInfo(s).slug}</code>}</For>
                          </span>
                        </Show>
                      </td>
                      <td data-label="Created">
                        <RelativeTime value={h.createdAt} />
                      </td>
                      <td class="row-actions">
                        <div class="row-actions-inner">
                          <button
                            type="button"
                            class="btn btn-small btn-danger-outline"
                            onClick={() => {
                              dialog.setError("");
                              setDeleting(h);
                            }}
                          >
                            Delete
                          </button>
                        </div>
                      </td>
                    </tr>
                  )}
                </For>
              </tbody>
            </table>
          </div>
        </Show>
      </Show>

      <h2 id="deliveries-h" class="section-heading">
        Recent deliveries
      </h2>
      <InlineError message={deliveries.error()} onRetry={() => void deliveries.refresh()} />
      <Show when={!deliveries.loading()} fallback={<Loading label="Loading deliveries…" />}>
        <Show
          when={(deliveries.data() ?? []).length > 0}
          fallback={<p class="muted">Nothing delivered yet: deliveries appear when a deployment ends.</p>}
        >
          <div class="table-wrap">
            <table class="table responsive" aria-labelledby="deliveries-h">
              <thead>
                <tr>
                  <th scope="col">Queued</th>
                  <th scope="col">Webhook</th>
                  <th scope="col">Deployment</th>
                  <th scope="col">Delivery</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last answer</th>
                </tr>
              </thead>
              <tbody>
                <For each={deliveries.data()}>
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
                </For>
              </tbody>
            </table>
          </div>
        </Show>
      </Show>

      <ConfirmDialog
        open={deleting() !== undefined}
        title={`Delete webhook “${deleting()?.name ?? ""}”?`}
        confirmLabel="Delete webhook"
        danger
        busy={dialog.pending()}
        error={dialog.error()}
        onConfirm={() => void remove()}
        onCancel={() => setDeleting(undefined)}
      >
        <p>It is not called any more; deliveries still waiting for a retry are given up.</p>
      </ConfirmDialog>
    </>
  );
}
