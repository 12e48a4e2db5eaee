// Agents: register (token shown once, with an install snippet), see who is connected and who is
// behind the release channel, update, rotate tokens, revoke. The list is polled every 2 s so connection changes show without reloading.

import type { Agent } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { ConnectionState } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { createEffect, createSignal, For, onMount, Show } from "solid-js";
import { admin } from "../api/clients.js";
import { ConnectionBadge } from "../components/Badge.js";
import { ConfirmDialog } from "../components/ConfirmDialog.js";
import { CopyBlock } from "../components/CopyButton.js";
import { EmptyState, InlineError, Loading } from "../components/Feedback.js";
import { PageHeader } from "../components/Layout.js";
import { RelativeTime } from "../components/RelativeTime.js";
import { ServerUrlField } from "../components/ServerUrlField.js";
import { markFirstContent } from "../lib/perf.js";
import { navigate } from "../lib/router.js";
import { type InstallVariant, installSnippet, installVariants, rotateSnippet } from "../lib/snippets.js";
import { createAction } from "../state/action.js";
import { createAgentsQuery, currentRelease } from "../state/agents.js";
import { grpcUrl } from "../state/server-url.js";

interface Revealed {
  kind: "created" | "rotated";
  agent: Agent;
  token: string;
}

function RevealToken(props: { revealed: Revealed; onDone: () => void }) {
  let heading: HTMLHeadingElement | undefined;
  onMount(() => heading?.focus());
  const [variant, setVariant] = createSignal<InstallVariant>("namespace");
  const created = () => props.revealed.kind === "created";
  const snippet = () =>
    created() ? installSnippet(props.revealed.token, grpcUrl(), variant()) : rotateSnippet(props.revealed.token);
  return (
    <section
      class="card reveal"
      aria-labelledby="reveal-h"
      data-testid="agent-token-panel"
      data-agent-id={props.revealed.agent.id}
    >
      <h2 id="reveal-h" ref={heading} tabindex="-1">
        {props.revealed.kind === "created"
          ? `Agent “${props.revealed.agent.name}” registered`
          : `New token for “${props.revealed.agent.name}”`}
      </h2>
      <p class="notice">
        Copy the token now: it is shown only once and stored only as a hash.
        {props.revealed.kind === "rotated" ? " The previous token keeps working for the grace period you chose." : ""}
      </p>
      <CopyBlock label="Agent token" text={props.revealed.token} testId="agent-token" secret />
      <Show when={created()}>
        <div class="form-grid">
          <ServerUrlField />
          <div class="field">
            <label for="install-variant">Permissions</label>
            <select
              id="install-variant"
              value={variant()}
              onChange={(e) => setVariant(e.currentTarget.value as InstallVariant)}
            >
              <For each={installVariants}>{(v) => <option value={v.value}>{v.label}</option>}</For>
            </select>
          </div>
        </div>
      </Show>
      <CopyBlock
        label={created() ? "Install in the cluster" : "Put the new token in the cluster and restart the agent"}
        text={snippet()}
        testId="install-snippet"
      />
      <div class="actions">
        <button type="button" class="btn btn-primary" onClick={() => props.onDone()}>
          I have copied it
        </button>
      </div>
    </section>
  );
}

function Presence(props: { agent: Agent }) {
  return (
    <Show
      when={props.agent.connectionState === ConnectionState.CONNECTED && !props.agent.revokedAt}
      fallback={
        <span class="muted small">
          <Show when={props.agent.lastSeenAt} fallback="waiting for its first connection">
            last seen <RelativeTime value={props.agent.lastSeenAt} />
          </Show>
        </span>
      }
    >
      <span class="muted small">
        connected <RelativeTime value={props.agent.connectedSince} />
      </span>
    </Show>
  );
}

export function Agents() {
  onMount(() => {
    document.title = "Agents · K8sDeploy";
  });
  const [showRevoked, setShowRevoked] = createSignal(false);
  const agents = createAgentsQuery(2000, showRevoked);
  const [name, setName] = createSignal("");
  const creation = createAction();
  const [revealed, setRevealed] = createSignal<Revealed>();
  const [revoking, setRevoking] = createSignal<Agent>();
  const [rotating, setRotating] = createSignal<Agent>();
  const [grace, setGrace] = createSignal(3600);
  const [updating, setUpdating] = createSignal<Agent>();
  const dialog = createAction();

  const register = async (e: SubmitEvent) => {
    e.preventDefault();
    const value = name().trim();
    if (value === "") {
      creation.setError("Give the agent a name, e.g. the cluster's name.");
      return;
    }
    await creation.run(async () => {
      const response = await admin.createAgent({ name: value });
      if (response.agent) setRevealed({ kind: "created", agent: response.agent, token: response.token });
      setName("");
      void agents.refresh();
    });
  };

  const revoke = async () => {
    const agent = revoking();
    if (!agent) return;
    await dialog.run(async () => {
      await admin.revokeAgent({ id: agent.id });
      setRevoking(undefined);
      void agents.refresh();
    });
  };

  const rotate = async () => {
    const agent = rotating();
    if (!agent) return;
    await dialog.run(async () => {
      const response = await admin.rotateAgentToken({ id: agent.id, previousTokenGraceSeconds: grace() });
      setRotating(undefined);
      setRevealed({ kind: "rotated", agent: response.agent ?? agent, token: response.token });
      void agents.refresh();
    });
  };

  const update = async () => {
    const agent = updating();
    if (!agent) return;
    await dialog.run(async () => {
      const response = await admin.updateAgent({ id: agent.id, image: "" });
      setUpdating(undefined);
      navigate(`/deployments/${encodeURIComponent(response.commandId)}`);
    });
  };

  createEffect(() => {
    if (!agents.loading()) markFirstContent();
  });
  return (
    <>
      <PageHeader title="Agents" />
      <Show when={revealed()}>{(r) => <RevealToken revealed={r()} onDone={() => setRevealed(undefined)} />}</Show>

      <form class="card inline-form" onSubmit={register} aria-labelledby="register-h">
        <h2 id="register-h">Register an agent</h2>
        <p class="muted">
          One agent per cluster. It dials out to this orchestrator; the cluster needs no inbound access.
        </p>
        <div class="row">
          <div class="field grow">
            <label for="agent-name">Name</label>
            <input
              id="agent-name"
              maxlength="63"
              placeholder="e.g. prod-eu-1"
              value={name()}
              onInput={(e) => setName(e.currentTarget.value)}
              aria-invalid={creation.error() !== ""}
            />
          </div>
          <button type="submit" class="btn btn-primary" disabled={creation.pending()}>
            {creation.pending() ? "Registering…" : "Register agent"}
          </button>
        </div>
        <InlineError message={creation.error()} />
      </form>

      <section class="card" aria-labelledby="release-h" data-testid="release-channel">
        <h2 id="release-h">Release channel</h2>
        <Show
          when={currentRelease()}
          fallback={
            <p class="muted">
              No agent release is configured on this orchestrator (<code>K8SDEPLOY_AGENT_RELEASE_VERSION</code> and{" "}
              <code>K8SDEPLOY_AGENT_RELEASE_IMAGE</code>, or <code>K8SDEPLOY_AGENT_RELEASE_FILE</code>).
            </p>
          }
        >
          {(r) => (
            <p>
              Current agent release <strong>{r().version}</strong> <code class="small">{r().image}</code>
            </p>
          )}
        </Show>
        <p class="muted small">
          Agents that opted in (<code>K8SDEPLOY_AUTO_UPDATE=true</code>, overlay <code>auto-update</code>) and are
          behind are updated automatically, a few at a time and never while a deploy runs. Others show “update
          available” with an Update button. An update patches the agent's own Deployment with a surge: the old agent
          keeps running until the new one is Ready (connected); if it is not Ready in time, the agent restores its
          previous image by itself. Each update has a timeline like a deploy.
        </p>
      </section>

      <div class="toolbar">
        <label class="checkbox">
          <input type="checkbox" checked={showRevoked()} onChange={(e) => setShowRevoked(e.currentTarget.checked)} />
          Show revoked agents
        </label>
      </div>
      <InlineError message={agents.error()} onRetry={() => void agents.refresh()} />
      <Show when={!agents.loading()} fallback={<Loading label="Loading agents…" />}>
        <Show
          when={(agents.data() ?? []).length > 0}
          fallback={
            <Show when={!agents.error()}>
              <EmptyState title="No agents yet">
                <p>
                  Register one above, then run the install snippet in your cluster. It shows up here when it connects.
                </p>
              </EmptyState>
            </Show>
          }
        >
          <div class="table-wrap">
            <table class="table responsive" aria-label="Agents">
              <thead>
                <tr>
                  <th scope="col">Agent</th>
                  <th scope="col">Status</th>
                  <th scope="col">Version</th>
                  <th scope="col">Arch</th>
                  <th scope="col">Kubernetes</th>
                  <th scope="col">Auto-update</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                <For each={agents.data()}>
                  {(a) => (
                    <tr data-agent-id={a.id} data-connection={ConnectionState[a.connectionState]?.toLowerCase()}>
                      <td data-label="Agent">
                        <span class="strong">{a.name}</span>
                        <div class="muted small">
                          <code>{a.id}</code>
                          <Show when={a.tokenPrefix}>
                            {" "}
                            ·{" "}
                            <span title={`Current token starts with ${a.tokenPrefix}`}>
                              token {a.tokenPrefix.slice(0, 16)}…
                            </span>
                          </Show>
                        </div>
                      </td>
                      <td data-label="Status">
                        <ConnectionBadge state={a.connectionState} revoked={!!a.revokedAt} />
                        <div>
                          <Presence agent={a} />
                        </div>
                      </td>
                      <td data-label="Version">
                        {a.version || <span class="muted">—</span>}
                        <Show when={a.availableUpdate}>
                          {(u) => (
                            <div class="small" data-testid="update-available">
                              <span class="badge tone-warning">update available: {u().version}</span>
                            </div>
                          )}
                        </Show>
                        <Show when={a.lastUpdateId}>
                          <div class="small">
                            <a href={`/deployments/${encodeURIComponent(a.lastUpdateId)}`}>last update</a>
                          </div>
                        </Show>
                      </td>
                      <td data-label="Arch">{a.arch || <span class="muted">—</span>}</td>
                      <td data-label="Kubernetes">{a.kubernetesVersion || <span class="muted">—</span>}</td>
                      <td data-label="Auto-update">{a.autoUpdateEnabled ? "Opted in" : "Off"}</td>
                      <td class="row-actions">
                        <div class="row-actions-inner">
                          <Show when={!a.revokedAt}>
                            <a class="btn btn-small btn-ghost" href={`/cluster?agent=${encodeURIComponent(a.id)}`}>
                              Browse
                            </a>
                            <Show when={a.availableUpdate}>
                              <button
                                type="button"
                                class="btn btn-small btn-primary"
                                data-testid="update-agent"
                                disabled={!a.autoUpdateEnabled}
                                title={
                                  a.autoUpdateEnabled
                                    ? undefined
                                    : "This agent has not opted in to remote updates (K8SDEPLOY_AUTO_UPDATE=true); update it with kubectl"
                                }
                                onClick={() => {
                                  dialog.setError("");
                                  setUpdating(a);
                                }}
                              >
                                Update
                              </button>
                            </Show>
                            <button
                              type="button"
                              class="btn btn-small"
                              onClick={() => {
                                dialog.setError("");
                                setRotating(a);
                              }}
                            >
                              Rotate token
                            </button>
                            <button
                              type="button"
                              class="btn btn-small btn-danger-outline"
                              onClick={() => {
                                dialog.setError("");
                                setRevoking(a);
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
        title={`Revoke agent “${revoking()?.name ?? ""}”?`}
        confirmLabel="Revoke agent"
        danger
        busy={dialog.pending()}
        error={dialog.error()}
        onConfirm={() => void revoke()}
        onCancel={() => setRevoking(undefined)}
      >
        <p>
          Its tokens and every deploy key bound to it stop working at once, and its connection is closed. This cannot be
          undone: to use the cluster again, register a new agent.
        </p>
      </ConfirmDialog>

      <ConfirmDialog
        open={updating() !== undefined}
        title={`Update “${updating()?.name ?? ""}” to ${updating()?.availableUpdate?.version ?? ""}?`}
        confirmLabel="Update agent"
        busy={dialog.pending()}
        error={dialog.error()}
        onConfirm={() => void update()}
        onCancel={() => setUpdating(undefined)}
      >
        <p>
          The agent patches its own Deployment to <code>{updating()?.availableUpdate?.image ?? ""}</code> and waits for
          the new pod to become Ready; if it does not, the previous image is restored. Refused while a deploy runs.
        </p>
      </ConfirmDialog>

      <ConfirmDialog
        open={rotating() !== undefined}
        title={`Rotate the token of “${rotating()?.name ?? ""}”?`}
        confirmLabel="Rotate token"
        busy={dialog.pending()}
        error={dialog.error()}
        onConfirm={() => void rotate()}
        onCancel={() => setRotating(undefined)}
      >
        <p>A new token is issued and shown once. Put it in the cluster's secret and restart the agent.</p>
        <div class="field">
          <label for="rotate-grace">The current token keeps working for</label>
          <select id="rotate-grace" value={String(grace())} onChange={(e) => setGrace(Number(e.currentTarget.value))}>
            <option value="0">No time: revoke it now</option>
            <option value="600">10 minutes</option>
            <option value="3600">1 hour</option>
            <option value="86400">24 hours</option>
          </select>
        </div>
      </ConfirmDialog>
    </>
  );
}
