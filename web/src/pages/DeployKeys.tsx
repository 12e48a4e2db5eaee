// Deploy keys: create one bound to an agent with namespace/workload allowlists (the key is shown
// once, with a workflow snippet), see when each was last used, revoke.

import type { DeployKey } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
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
import { ScopeCells } from "../components/ScopeTags.js";
import { ServerUrlField } from "../components/ServerUrlField.js";
import { ShowToggle } from "../components/ShowToggle.js";
import { TextField } from "../components/TextField.js";
import { splitList } from "../lib/format.js";
import { pageTitle } from "../lib/page-title.js";
import { markFirstContentWhen } from "../lib/perf.js";
import { workflowSnippet } from "../lib/snippets.js";
import { createAgentForm } from "../state/agent-form.js";
import { agentName, createAgentsQuery } from "../state/agents.js";
import { createConfirm } from "../state/confirm.js";
import { createPolled } from "../state/polled.js";
import { grpcUrl } from "../state/server-url.js";

interface Revealed {
  key: DeployKey;
  secret: string;
}

function RevealKey(props: { revealed: Revealed; agentLabel: string; onDone: () => void }) {
  const k = () => props.revealed.key;
  return (
    <CreatedPanel
      headingId="key-reveal-h"
      testId="deploy-key-panel"
      title={<>Deploy key {k().name ? `“${k().name}” ` : ""}created</>}
      onDone={props.onDone}
      notice={
        <>
          Copy the key now: it is shown only once. Store it as the repository secret <code>K8SDEPLOY_KEY</code>{" "}
          (Settings → Secrets and variables → Actions). It deploys through {props.agentLabel}
          {k().namespaces.length > 0 ? ` to ${k().namespaces.join(", ")}` : " to any namespace"}
          {k().workloads.length > 0 ? `, workloads ${k().workloads.join(", ")}` : ""}.
        </>
      }
    >
      <CopyBlock label="Deploy key" text={props.revealed.secret} testId="deploy-key" secret />
      <ServerUrlField />
      <CopyBlock
        label="Workflow step"
        text={workflowSnippet({ serverUrl: grpcUrl(), namespace: k().namespaces[0], workload: k().workloads[0] })}
        testId="workflow-snippet"
      />
    </CreatedPanel>
  );
}

export function DeployKeys() {
  pageTitle("Deploy keys");
  const agents = createAgentsQuery(10_000);
  const [showRevoked, setShowRevoked] = createSignal(false);
  const keys = createPolled(
    async (signal) => (await admin.listDeployKeys({ includeRevoked: showRevoked() }, { signal })).deployKeys,
    10_000,
    showRevoked,
  );

  const [name, setName] = createSignal("");
  const [namespaces, setNamespaces] = createSignal("");
  const [workloads, setWorkloads] = createSignal("");
  const [revealed, setRevealed] = createSignal<Revealed>();
  const revoking = createConfirm(async (key: DeployKey) => {
    await admin.revokeDeployKey({ id: key.id });
    revoking.close();
    void keys.refresh();
  });

  const form = createAgentForm(agents, "Choose the agent this key deploys through.");

  const create = form.onSubmit(async (agentId) => {
    const response = await admin.createDeployKey({
      agentId,
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

  markFirstContentWhen(() => !keys.loading());
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

      <AgentRequired
        when={form.canCreate()}
        why={
          <>
            A deploy key deploys through one agent. <a href="/agents">Register an agent</a> in your cluster, then come
            back to create a key for your workflows.
          </>
        }
      >
        <CreateForm
          headingId="create-key-h"
          title="Create a deploy key"
          intro={
            <>
              Give each repository its own key, limited to the namespaces and workloads it deploys. Leave a list empty
              to allow any.
            </>
          }
          action={form.action}
          submitLabel="Create deploy key"
          pendingLabel="Creating…"
          onSubmit={create}
        >
          <div class="form-grid">
            <AgentSelect id="key-agent" {...form.select} />
            <TextField
              id="key-name"
              label="Name"
              maxlength="63"
              placeholder="e.g. acme/web"
              value={name()}
              onInput={setName}
            />
            <ScopeFields
              idPrefix="key"
              namespaces={namespaces()}
              onNamespaces={setNamespaces}
              workloads={workloads()}
              onWorkloads={setWorkloads}
              describedBy="key-list-hint"
            />
          </div>
          <p id="key-list-hint" class="hint">
            Separate several names with commas or spaces.
          </p>
        </CreateForm>
      </AgentRequired>

      <ShowToggle label="Show revoked keys" checked={showRevoked()} onChange={setShowRevoked} />
      <PolledTable
        source={keys}
        loadingLabel="Loading deploy keys…"
        empty={
          <EmptyState title="No deploy keys yet">
            <p>Create one above and add it to a repository's secrets to deploy from GitHub Actions.</p>
          </EmptyState>
        }
        label="Deploy keys"
        columns={["Key", "Agent", "Namespaces", "Workloads", "Created", "Last used"]}
        actions
      >
        {(k) => (
          <tr data-key-id={k.id}>
            <td data-label="Key">
              <span class="strong">{k.name || <span class="muted">unnamed</span>}</span>
              <div class="muted small">
                <code>{k.keyPrefix}…</code>
              </div>
            </td>
            <td data-label="Agent">{agentName(agents.data(), k.agentId)}</td>
            <ScopeCells namespaces={k.namespaces} workloads={k.workloads} />
            <td data-label="Created">
              <RelativeTime value={k.createdAt} />
            </td>
            <td data-label="Last used">
              <RelativeTime value={k.lastUsedAt} fallback="Never" />
            </td>
            <RemoveAction
              label="Revoke"
              removed={!!k.revokedAt}
              removedLabel="Revoked"
              onClick={() => revoking.ask(k)}
            />
          </tr>
        )}
      </PolledTable>

      <ConfirmDialog
        {...revoking.dialog}
        title={`Revoke deploy key “${revoking.target()?.name || revoking.target()?.keyPrefix || ""}”?`}
        confirmLabel="Revoke key"
        danger
      >
        <p>Workflows using it fail to deploy from now on. Running deployments continue.</p>
      </ConfirmDialog>
    </>
  );
}
