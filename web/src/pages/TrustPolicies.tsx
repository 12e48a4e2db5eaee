// Trust policies (GitHub OIDC): let a repository's workflows deploy through one agent with their
// short-lived ID token instead of a stored deploy key. Create one (with a ready workflow), see
// when each was last used, delete.

import type { TrustPolicy } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { createSignal, Show } from "solid-js";
import { admin } from "../api/clients.js";
import { AgentRequired } from "../components/AgentRequired.js";
import { AgentSelect } from "../components/AgentSelect.js";
import { ConfirmDialog } from "../components/ConfirmDialog.js";
import { CopyBlock } from "../components/CopyButton.js";
import { CreatedPanel } from "../components/CreatedPanel.js";
import { CreateForm } from "../components/CreateForm.js";
import { RemoveAction } from "../components/DataTable.js";
import { EmptyState } from "../components/Feedback.js";
import { PageHeader } from "../components/Layout.js";
import { PolledTable } from "../components/PolledView.js";
import { RelativeTime } from "../components/RelativeTime.js";
import { ScopeFields } from "../components/ScopeFields.js";
import { ScopeCells, ScopeTags } from "../components/ScopeTags.js";
import { ServerUrlField } from "../components/ServerUrlField.js";
import { ShowToggle } from "../components/ShowToggle.js";
import { TextField } from "../components/TextField.js";
import { splitList } from "../lib/format.js";
import { pageTitle } from "../lib/page-title.js";
import { markFirstContentWhen } from "../lib/perf.js";
import { oidcWorkflowSnippet } from "../lib/snippets.js";
import { createAgentForm } from "../state/agent-form.js";
import { agentName, createAgentsQuery } from "../state/agents.js";
import { createConfirm } from "../state/confirm.js";
import { dashboardConfig } from "../state/dashboard-config.js";
import { createPolled } from "../state/polled.js";
import { grpcUrl } from "../state/server-url.js";

function Created(props: { policy: TrustPolicy; agentLabel: string; onDone: () => void }) {
  const p = () => props.policy;
  return (
    <CreatedPanel
      headingId="trust-created-h"
      testId="trust-policy-panel"
      title={<>Trust policy for {p().repository} created</>}
      doneLabel="Done"
      onDone={props.onDone}
      notice={
        <>
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
        </>
      }
    >
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
    </CreatedPanel>
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
  return <ScopeTags values={items()} any="Any ref, environment and workflow" anyClass="warn-text" />;
}

export function TrustPolicies() {
  pageTitle("Trust policies");
  const agents = createAgentsQuery(10_000);
  const [showDeleted, setShowDeleted] = createSignal(false);
  const policies = createPolled(
    async (signal) => (await admin.listTrustPolicies({ includeDeleted: showDeleted() }, { signal })).trustPolicies,
    10_000,
    showDeleted,
  );

  const [repository, setRepository] = createSignal("");
  const [ref, setRef] = createSignal("refs/heads/main");
  const [environment, setEnvironment] = createSignal("");
  const [workflowRef, setWorkflowRef] = createSignal("");
  const [namespaces, setNamespaces] = createSignal("");
  const [workloads, setWorkloads] = createSignal("");
  const [created, setCreated] = createSignal<TrustPolicy>();
  const deleting = createConfirm(async (policy: TrustPolicy) => {
    await admin.deleteTrustPolicy({ id: policy.id });
    deleting.close();
    void policies.refresh();
  });

  const form = createAgentForm(agents, "Choose the agent these workflows deploy through.");

  const create = form.onSubmit(async (agentId) => {
    const response = await admin.createTrustPolicy({
      agentId,
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

  markFirstContentWhen(() => !policies.loading());
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

      <AgentRequired
        when={form.canCreate()}
        why={
          <>
            A trust policy deploys through one agent. <a href="/agents">Register an agent</a> in your cluster first.
          </>
        }
      >
        <CreateForm
          headingId="create-trust-h"
          title="Trust a repository"
          intro={
            <>
              Its workflows' ID tokens are accepted when every condition you set matches. Pin a branch or tag, or a
              GitHub environment (with its required reviewers), so that not every branch can deploy.
            </>
          }
          action={form.action}
          submitLabel="Create trust policy"
          pendingLabel="Creating…"
          onSubmit={create}
        >
          <div class="form-grid">
            <AgentSelect id="trust-agent" {...form.select} />
            <TextField
              id="trust-repository"
              label="Repository"
              placeholder="owner/name"
              required
              value={repository()}
              onInput={setRepository}
            />
            <TextField
              id="trust-ref"
              label="Ref"
              placeholder="Any ref"
              value={ref()}
              onInput={setRef}
              hint={
                <>
                  <code>refs/heads/main</code>, or a prefix ending in <code>*</code> such as <code>refs/tags/v*</code>.
                </>
              }
            />
            <TextField
              id="trust-environment"
              label="Environment"
              placeholder="Any (or none)"
              value={environment()}
              onInput={setEnvironment}
            />
            <TextField
              id="trust-workflow"
              label="Workflow"
              placeholder="Any workflow"
              value={workflowRef()}
              onInput={setWorkflowRef}
              hint={
                <>
                  <code>owner/name/.github/workflows/deploy.yml@refs/heads/main</code> (may end in <code>*</code>).
                </>
              }
            />
            <ScopeFields
              idPrefix="trust"
              namespaces={namespaces()}
              onNamespaces={setNamespaces}
              workloads={workloads()}
              onWorkloads={setWorkloads}
            />
          </div>
        </CreateForm>
      </AgentRequired>

      <ShowToggle label="Show deleted policies" checked={showDeleted()} onChange={setShowDeleted} />
      <PolledTable
        source={policies}
        loadingLabel="Loading trust policies…"
        empty={
          <EmptyState title="No trust policies yet">
            <p>Trust a repository above to deploy from its workflows without a deploy key.</p>
          </EmptyState>
        }
        label="Trust policies"
        columns={["Repository", "Agent", "Conditions", "Namespaces", "Workloads", "Last used"]}
        actions
      >
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
            <ScopeCells namespaces={p.namespaces} workloads={p.workloads} />
            <td data-label="Last used">
              <RelativeTime value={p.lastUsedAt} fallback="Never" />
            </td>
            <RemoveAction
              label="Delete"
              removed={!!p.deletedAt}
              removedLabel="Deleted"
              onClick={() => deleting.ask(p)}
            />
          </tr>
        )}
      </PolledTable>

      <ConfirmDialog
        {...deleting.dialog}
        title={`Delete the trust policy for “${deleting.target()?.repository ?? ""}”?`}
        confirmLabel="Delete policy"
        danger
      >
        <p>Its workflows fail to deploy from now on. Running deployments continue.</p>
      </ConfirmDialog>
    </>
  );
}
