// Deploy keys: create one bound to an agent with namespace/workload allowlists (the key is shown
// once, with a workflow snippet), see when each was last used, revoke.

import type { DeployKey } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { createEffect, createSignal, For, on, onMount, Show } from "solid-js";
import { admin } from "../api/clients.js";
import { Badge } from "../components/Badge.js";
import { ConfirmDialog } from "../components/ConfirmDialog.js";
import { CopyBlock } from "../components/CopyButton.js";
import { EmptyState, InlineError, Loading } from "../components/Feedback.js";
import { PageHeader } from "../components/Layout.js";
import { RelativeTime } from "../components/RelativeTime.js";
import { ServerUrlField } from "../components/ServerUrlField.js";
import { splitList } from "../lib/format.js";
import { markFirstContent } from "../lib/perf.js";
import { workflowSnippet } from "../lib/snippets.js";
import { createAction } from "../state/action.js";
import { agentName, createAgentsQuery } from "../state/agents.js";
import { createPolled } from "../state/polled.js";
import { grpcUrl } from "../state/server-url.js";

interface Revealed {
  key: DeployKey;
  secret: string;
}

function RevealKey(props: { revealed: Revealed; agentLabel: string; onDone: () => void }) {
  let heading: HTMLHeadingElement | undefined;
  onMount(() => heading?.focus());
  const k = () => props.revealed.key;
  return (
    <section class="card reveal" aria-labelledby="key-reveal-h" data-testid="deploy-key-panel">
      <h2 id="key-reveal-h" ref={heading} tabindex="-1">
        Deploy key {k().name ? `“${k().name}” ` : ""}created
      </h2>
      <p class="notice">
        Copy the key now: it is shown only once. Store it as the repository secret <code>K8SDEPLOY_KEY</code> (Settings
        → Secrets and variables → Actions). It deploys through {props.agentLabel}
        {k().namespaces.length > 0 ? ` to ${k().namespaces.join(", ")}` : " to any namespace"}
        {k().workloads.length > 0 ? `, workloads ${k().workloads.join(", ")}` : ""}.
      </p>
      <CopyBlock label="Deploy key" text={props.revealed.secret} testId="deploy-key" secret />
      <ServerUrlField />
      <CopyBlock
        label="Workflow step"
        text={workflowSnippet({ serverUrl: grpcUrl(), namespace: k().namespaces[0], workload: k().workloads[0] })}
        testId="workflow-snippet"
      />
      <div class="actions">
        <button type="button" class="btn btn-primary" onClick={() => props.onDone()}>
          I have copied it
        </button>
      </div>
    </section>
  );
}

function Scope(props: { values: string[]; any: string }) {
  return (
    <Show when={props.values.length > 0} fallback={<span class="muted">{props.any}</span>}>
      <span class="tags">
        <For each={props.values}>{(v) => <code class="tag">{v}</code>}</For>
      </span>
    </Show>
  );
}

export function DeployKeys() {
  onMount(() => {
    document.title = "Deploy keys · K8sDeploy";
  });
  const agents = createAgentsQuery(10_000);
  const [showRevoked, setShowRevoked] = createSignal(false);
  const keys = createPolled(
    async (signal) => (await admin.listDeployKeys({ includeRevoked: showRevoked() }, { signal })).deployKeys,
    10_000,
  );
  createEffect(on(showRevoked, () => void keys.refresh(), { defer: true }));

  const [agentId, setAgentId] = createSignal("");
  const [name, setName] = createSignal("");
  const [namespaces, setNamespaces] = createSignal("");
  const [workloads, setWorkloads] = createSignal("");
  const creation = createAction();
  const [revealed, setRevealed] = createSignal<Revealed>();
  const [revoking, setRevoking] = createSignal<DeployKey>();
  const dialog = createAction();

  const activeAgents = () => (agents.data() ?? []).filter((a) => !a.revokedAt);
  // Preselect the only agent.
  createEffect(() => {
    const list = activeAgents();
    if (agentId() === "" && list.length === 1 && list[0]) setAgentId(list[0].id);
  });

  const create = async (e: SubmitEvent) => {
    e.preventDefault();
    if (agentId() === "") {
      creation.setError("Choose the agent this key deploys through.");
      return;
    }
    await creation.run(async () => {
      const response = await admin.createDeployKey({
        agentId: agentId(),
        name: name().trim(),
        namespaces: splitList(namespaces()),
        workloads: splitList(workloads()),
      });
      if (response.deployKey) setRevealed({ key: response.deployKey, secret: response.key });
      setName("");
      setNamespaces("");
      setWorkloads("");
      void keys.refresh();
    });
  };

  const revoke = async () => {
    const key = revoking();
    if (!key) return;
    await dialog.run(async () => {
      await admin.revokeDeployKey({ id: key.id });
      setRevoking(undefined);
      void keys.refresh();
    });
  };

  createEffect(() => {
    if (!keys.loading()) markFirstContent();
  });
  return (
    <>
      <PageHeader title="Deploy keys" />
      <Show when={revealed()}>
        {(r) => (
          <RevealKey
            revealed={r()}
            agentLabel={agentName(agents.data(), r().key.agentId)}
            onDone={() => setRevealed(undefined)}
          />
        )}
      </Show>

      <Show
        when={agents.loading() || activeAgents().length > 0}
        fallback={
          <EmptyState title="Register an agent first">
            <p>
              A deploy key deploys through one agent. <a href="/agents">Register an agent</a> in your cluster, then come
              back to create a key for your workflows.
            </p>
          </EmptyState>
        }
      >
        <form class="card" onSubmit={create} aria-labelledby="create-key-h">
          <h2 id="create-key-h">Create a deploy key</h2>
          <p class="muted">
            Give each repository its own key, limited to the namespaces and workloads it deploys. Leave a list empty to
            allow any.
          </p>
          <div class="form-grid">
            <div class="field">
              <label for="key-agent">Agent</label>
              <select id="key-agent" value={agentId()} onChange={(e) => setAgentId(e.currentTarget.value)} required>
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
              <label for="key-name">Name</label>
              <input
                id="key-name"
                maxlength="63"
                placeholder="e.g. acme/web"
                value={name()}
                onInput={(e) => setName(e.currentTarget.value)}
              />
            </div>
            <div class="field">
              <label for="key-namespaces">Allowed namespaces</label>
              <input
                id="key-namespaces"
                placeholder="Any namespace"
                value={namespaces()}
                onInput={(e) => setNamespaces(e.currentTarget.value)}
                aria-describedby="key-list-hint"
              />
            </div>
            <div class="field">
              <label for="key-workloads">Allowed workloads</label>
              <input
                id="key-workloads"
                placeholder="Any workload"
                value={workloads()}
                onInput={(e) => setWorkloads(e.currentTarget.value)}
                aria-describedby="key-list-hint"
              />
            </div>
          </div>
          <p id="key-list-hint" class="hint">
            Separate several names with commas or spaces.
          </p>
          <InlineError message={creation.error()} />
          <div class="actions">
            <button type="submit" class="btn btn-primary" disabled={creation.pending()}>
              {creation.pending() ? "Creating…" : "Create deploy key"}
            </button>
          </div>
        </form>
      </Show>

      <div class="toolbar">
        <label class="checkbox">
          <input type="checkbox" checked={showRevoked()} onChange={(e) => setShowRevoked(e.currentTarget.checked)} />
          Show revoked keys
        </label>
      </div>
      <InlineError message={keys.error()} onRetry={() => void keys.refresh()} />
      <Show when={!keys.loading()} fallback={<Loading label="Loading deploy keys…" />}>
        <Show
          when={(keys.data() ?? []).length > 0}
          fallback={
            <Show when={!keys.error()}>
              <EmptyState title="No deploy keys yet">
                <p>Create one above and add it to a repository's secrets to deploy from GitHub Actions.</p>
              </EmptyState>
            </Show>
          }
        >
          <div class="table-wrap">
            <table class="table responsive" aria-label="Deploy keys">
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Agent</th>
                  <th scope="col">Namespaces</th>
                  <th scope="col">Workloads</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                <For each={keys.data()}>
                  {(k) => (
                    <tr data-key-id={k.id}>
                      <td data-label="Key">
                        <span class="strong">{k.name || <span class="muted">unnamed</span>}</span>
                        <div class="muted small">
                          <code>{k.keyPrefix}…</code>
                        </div>
                      </td>
                      <td data-label="Agent">{agentName(agents.data(), k.agentId)}</td>
                      <td data-label="Namespaces">
                        <Scope values={k.namespaces} any="Any" />
                      </td>
                      <td data-label="Workloads">
                        <Scope values={k.workloads} any="Any" />
                      </td>
                      <td data-label="Created">
                        <RelativeTime value={k.createdAt} />
                      </td>
                      <td data-label="Last used">
                        <RelativeTime value={k.lastUsedAt} fallback="Never" />
                      </td>
                      <td class="row-actions">
                        <div class="row-actions-inner">
                          <Show when={!k.revokedAt} fallback={<Badge tone="neutral" icon="⊘" label="Revoked" />}>
                            <button
                              type="button"
                              class="btn btn-small btn-danger-outline"
                              onClick={() => {
                                dialog.setError("");
                                setRevoking(k);
                              }}
                            >
                              Revoke
                            </button>
                          </Show>
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

      <ConfirmDialog
        open={revoking() !== undefined}
        title={`Revoke deploy key “${revoking()?.name || revoking()?.keyPrefix || ""}”?`}
        confirmLabel="Revoke key"
        danger
        busy={dialog.pending()}
        error={dialog.error()}
        onConfirm={() => void revoke()}
        onCancel={() => setRevoking(undefined)}
      >
        <p>Workflows using it fail to deploy from now on. Running deployments continue.</p>
      </ConfirmDialog>
    </>
  );
}
