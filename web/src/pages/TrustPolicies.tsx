// Trust policies (GitHub OIDC): let a repository's workflows deploy through one agent with their
// short-lived ID token instead of a stored deploy key. Create one (with a ready workflow), see
// when each was last used, delete.

import type { TrustPolicy } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
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
import { oidcWorkflowSnippet } from "../lib/snippets.js";
import { createAction } from "../state/action.js";
import { agentName, createAgentsQuery } from "../state/agents.js";
import { dashboardConfig } from "../state/dashboard-config.js";
import { createPolled } from "../state/polled.js";
import { grpcUrl } from "../state/server-url.js";

function Created(props: { policy: TrustPolicy; agentLabel: string; onDone: () => void }) {
  let heading: HTMLHeadingElement | undefined;
  onMount(() => heading?.focus());
  const p = () => props.policy;
  return (
    <section class="card reveal" aria-labelledby="trust-created-h" data-testid="trust-policy-panel">
      <h2 id="trust-created-h" ref={heading} tabindex="-1">
        Trust policy for {p().repository} created
      </h2>
      <p class="notice">
        Workflows of <code>{p().repository}</code>
        {p().ref ? (
          <>
            {" "}
            on <code>{p().ref}</code>
          </>
        ) : (
          " on any ref"
        )}
        {p().environment ? (
          <>
            {" "}
            in environment <code>{p().environment}</code>
          </>
        ) : (
          ""
        )}{" "}
        can now deploy through {props.agentLabel}
        {p().namespaces.length > 0 ? ` to ${p().namespaces.join(", ")}` : " to any namespace"}. Nothing to store in
        GitHub: the job asks for its OIDC token (<code>permissions: id-token: write</code>) and the action sends it
        instead of a key.
      </p>
      <ServerUrlField />
      <CopyBlock
        label="Workflow"
        text={oidcWorkflowSnippet({
          serverUrl: grpcUrl(),
          ref: p().ref,
          environment: p().environment,
          namespace: p().namespaces[0],
          workload: p().workloads[0],
          audience: p().audience,
        })}
        testId="oidc-workflow-snippet"
      />
      <div class="actions">
        <button type="button" class="btn btn-primary" onClick={() => props.onDone()}>
          Done
        </button>
      </div>
    </section>
  );
}

function Conditions(props: { policy: TrustPolicy }) {
  const items = () =>
    [
      props.policy.ref ? `ref ${props.policy.ref}` : "",
      props.policy.environment ? `environment ${props.policy.environment}` : "",
      props.policy.workflowRef ? `workflow ${props.policy.workflowRef}` : "",
      props.policy.repositoryId ? `repository id ${props.policy.repositoryId}` : "",
    ].filter(Boolean);
  return (
    <Show when={items().length > 0} fallback={<span class="warn-text">Any ref, environment and workflow</span>}>
      <span class="tags">
        <For each={items()}>{(c) => <code class="tag">{c}</code>}</For>
      </span>
    </Show>
  );
}

function Scope(props: { values: string[] }) {
  return (
    <Show when={props.values.length > 0} fallback={<span class="muted">Any</span>}>
      <span class="tags">
        <For each={props.values}>{(v) => <code class="tag">{v}</code>}</For>
      </span>
    </Show>
  );
}

export function TrustPolicies() {
  onMount(() => {
    document.title = "Trust policies · K8sDeploy";
  });
  const agents = createAgentsQuery(10_000);
  const [showDeleted, setShowDeleted] = createSignal(false);
  const policies = createPolled(
    async (signal) => (await admin.listTrustPolicies({ includeDeleted: showDeleted() }, { signal })).trustPolicies,
    10_000,
  );
  createEffect(on(showDeleted, () => void policies.refresh(), { defer: true }));

  const [agentId, setAgentId] = createSignal("");
  const [repository, setRepository] = createSignal("");
  const [ref, setRef] = createSignal("refs/heads/main");
  const [environment, setEnvironment] = createSignal("");
  const [workflowRef, setWorkflowRef] = createSignal("");
  const [namespaces, setNamespaces] = createSignal("");
  const [workloads, setWorkloads] = createSignal("");
  const creation = createAction();
  const [created, setCreated] = createSignal<TrustPolicy>();
  const [deleting, setDeleting] = createSignal<TrustPolicy>();
  const dialog = createAction();

  const activeAgents = () => (agents.data() ?? []).filter((a) => !a.revokedAt);
  createEffect(() => {
    const list = activeAgents();
    if (agentId() === "" && list.length === 1 && list[0]) setAgentId(list[0].id);
  });

  const create = async (e: SubmitEvent) => {
    e.preventDefault();
    if (agentId() === "") {
      creation.setError("Choose the agent these workflows deploy through.");
      return;
    }
    await creation.run(async () => {
      const response = await admin.createTrustPolicy({
        agentId: agentId(),
        repository: repository().trim(),
        ref: ref().trim(),
        environment: environment().trim(),
        workflowRef: workflowRef().trim(),
        namespaces: splitList(namespaces()),
        workloads: splitList(workloads()),
      });
      if (response.trustPolicy) setCreated(response.trustPolicy);
      setRepository("");
      setEnvironment("");
      setWorkflowRef("");
      setNamespaces("");
      setWorkloads("");
      void policies.refresh();
    });
  };

  const remove = async () => {
    const policy = deleting();
    if (!policy) return;
    await dialog.run(async () => {
      await admin.deleteTrustPolicy({ id: policy.id });
      setDeleting(undefined);
      void policies.refresh();
    });
  };

  createEffect(() => {
    if (!policies.loading()) markFirstContent();
  });
  return (
    <>
      <PageHeader
        title="Trust policies"
        sub={
          <p class="subtitle muted">
            GitHub Actions deploy with their short-lived OIDC token from{" "}
            <code>{dashboardConfig()?.oidcIssuer || "the configured issuer"}</code>: no secret to store or rotate.
          </p>
        }
      />
      <Show when={created()}>
        {(p) => (
          <Created
            policy={p()}
            agentLabel={agentName(agents.data(), p().agentId)}
            onDone={() => setCreated(undefined)}
          />
        )}
      </Show>

      <Show
        when={agents.loading() || activeAgents().length > 0}
        fallback={
          <EmptyState title="Register an agent first">
            <p>
              A trust policy deploys through one agent. <a href="/agents">Register an agent</a> in your cluster first.
            </p>
          </EmptyState>
        }
      >
        <form class="card" onSubmit={create} aria-labelledby="create-trust-h">
          <h2 id="create-trust-h">Trust a repository</h2>
          <p class="muted">
            Its workflows' ID tokens are accepted when every condition you set matches. Pin a branch or tag, or a GitHub
            environment (with its required reviewers), so that not every branch can deploy.
          </p>
          <div class="form-grid">
            <div class="field">
              <label for="trust-agent">Agent</label>
              <select id="trust-agent" value={agentId()} onChange={(e) => setAgentId(e.currentTarget.value)} required>
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
              <label for="trust-repository">Repository</label>
              <input
                id="trust-repository"
                placeholder="owner/name"
                required
                value={repository()}
                onInput={(e) => setRepository(e.currentTarget.value)}
              />
            </div>
            <div class="field">
              <label for="trust-ref">Ref</label>
              <input
                id="trust-ref"
                placeholder="Any ref"
                value={ref()}
                onInput={(e) => setRef(e.currentTarget.value)}
                aria-describedby="trust-ref-hint"
              />
              <p id="trust-ref-hint" class="hint">
                <code>refs/heads/main</code>, or a prefix ending in <code>*</code> such as <code>refs/tags/v*</code>.
              </p>
            </div>
            <div class="field">
              <label for="trust-environment">Environment</label>
              <input
                id="trust-environment"
                placeholder="Any (or none)"
                value={environment()}
                onInput={(e) => setEnvironment(e.currentTarget.value)}
              />
            </div>
            <div class="field">
              <label for="trust-workflow">Workflow</label>
              <input
                id="trust-workflow"
                placeholder="Any workflow"
                value={workflowRef()}
                onInput={(e) => setWorkflowRef(e.currentTarget.value)}
                aria-describedby="trust-workflow-hint"
              />
              <p id="trust-workflow-hint" class="hint">
                <code>owner/name/.github/workflows/deploy.yml@refs/heads/main</code> (may end in <code>*</code>).
              </p>
            </div>
            <div class="field">
              <label for="trust-namespaces">Allowed namespaces</label>
              <input
                id="trust-namespaces"
                placeholder="Any namespace"
                value={namespaces()}
                onInput={(e) => setNamespaces(e.currentTarget.value)}
              />
            </div>
            <div class="field">
              <label for="trust-workloads">Allowed workloads</label>
              <input
                id="trust-workloads"
                placeholder="Any workload"
                value={workloads()}
                onInput={(e) => setWorkloads(e.currentTarget.value)}
              />
            </div>
          </div>
          <InlineError message={creation.error()} />
          <div class="actions">
            <button type="submit" class="btn btn-primary" disabled={creation.pending()}>
              {creation.pending() ? "Creating…" : "Create trust policy"}
            </button>
          </div>
        </form>
      </Show>

      <div class="toolbar">
        <label class="checkbox">
          <input type="checkbox" checked={showDeleted()} onChange={(e) => setShowDeleted(e.currentTarget.checked)} />
          Show deleted policies
        </label>
      </div>
      <InlineError message={policies.error()} onRetry={() => void policies.refresh()} />
      <Show when={!policies.loading()} fallback={<Loading label="Loading trust policies…" />}>
        <Show
          when={(policies.data() ?? []).length > 0}
          fallback={
            <Show when={!policies.error()}>
              <EmptyState title="No trust policies yet">
                <p>Trust a repository above to deploy from its workflows without a deploy key.</p>
              </EmptyState>
            </Show>
          }
        >
          <div class="table-wrap">
            <table class="table responsive" aria-label="Trust policies">
              <thead>
                <tr>
                  <th scope="col">Repository</th>
                  <th scope="col">Agent</th>
                  <th scope="col">Conditions</th>
                  <th scope="col">Namespaces</th>
                  <th scope="col">Workloads</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                <For each={policies.data()}>
                  {(p) => (
                    <tr data-policy-id={p.id}>
                      <td data-label="Repository">
                        <span class="strong">{p.repository}</span>
                        <div class="muted small">
                          <code>{p.id}</code> · audience <code>{p.audience}</code>
                        </div>
                      </td>
                      <td data-label="Agent">{agentName(agents.data(), p.agentId)}</td>
                      <td data-label="Conditions">
                        <Conditions policy={p} />
                      </td>
                      <td data-label="Namespaces">
                        <Scope values={p.namespaces} />
                      </td>
                      <td data-label="Workloads">
                        <Scope values={p.workloads} />
                      </td>
                      <td data-label="Last used">
                        <RelativeTime value={p.lastUsedAt} fallback="Never" />
                      </td>
                      <td class="row-actions">
                        <div class="row-actions-inner">
                          <Show when={!p.deletedAt} fallback={<Badge tone="neutral" icon="⊘" label="Deleted" />}>
                            <button
                              type="button"
                              class="btn btn-small btn-danger-outline"
                              onClick={() => {
                                dialog.setError("");
                                setDeleting(p);
                              }}
                            >
                              Delete
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
        open={deleting() !== undefined}
        title={`Delete the trust policy for “${deleting()?.repository ?? ""}”?`}
        confirmLabel="Delete policy"
        danger
        busy={dialog.pending()}
        error={dialog.error()}
        onConfirm={() => void remove()}
        onCancel={() => setDeleting(undefined)}
      >
        <p>Its workflows fail to deploy from now on. Running deployments continue.</p>
      </ConfirmDialog>
    </>
  );
}
