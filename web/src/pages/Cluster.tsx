// Looks into a cluster through its agent: namespaces, then the workloads of one, fetched live.
// An offline agent cannot answer: that is shown as such, with when it was last seen.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Agent } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { ConnectionState } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import type { Namespace, Workload } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { createEffect, createMemo, createSignal, For, on, onCleanup, onMount, Show } from "solid-js";
import { admin } from "../api/clients.js";
import { errorMessage, isAbort, isCode } from "../api/errors.js";
import { ConnectionBadge } from "../components/Badge.js";
import { CopyBlock } from "../components/CopyButton.js";
import { EmptyState, InlineError, Loading } from "../components/Feedback.js";
import { ImageRef } from "../components/ImageRef.js";
import { PageHeader } from "../components/Layout.js";
import { RelativeTime } from "../components/RelativeTime.js";
import { absoluteTime, kindLabel, toDate } from "../lib/format.js";
import { markFirstContent } from "../lib/perf.js";
import { search, setSearchParams } from "../lib/router.js";
import { CLUSTER_WIDE_OVERLAY, namespaceRoleSnippet, namespacesRoleSnippet } from "../lib/snippets.js";
import { createAgentsQuery } from "../state/agents.js";

interface Fetched<T> {
  loading: boolean;
  data?: T;
  error?: string;
  offline?: boolean;
  /** The agent's service account may not read this (RBAC): PERMISSION_DENIED from the agent. */
  denied?: boolean;
}

/** The orchestrator says the agent holds no stream ("agent … is offline since …", "has never connected"). */
function isAgentOffline(err: unknown): boolean {
  return isCode(err, Code.Unavailable) && /offline|never connected/i.test(ConnectError.from(err).rawMessage);
}

/** Runs `fetcher` whenever `key` changes (and on `reload`), cancelling the previous call. */
function createLive<T>(key: () => string | undefined, fetcher: (key: string, signal: AbortSignal) => Promise<T>) {
  const [state, setState] = createSignal<Fetched<T>>({ loading: false });
  const [generation, setGeneration] = createSignal(0);
  let lastKey: string | undefined;
  createEffect(
    on([key, generation], ([k]) => {
      const sameKey = k === lastKey;
      lastKey = k;
      if (!k) {
        setState({ loading: false });
        return;
      }
      const ctl = new AbortController();
      // A refresh keeps showing the current data; another agent/namespace does not.
      setState((prev) => ({ loading: true, data: sameKey ? prev.data : undefined }));
      fetcher(k, ctl.signal).then(
        (data) => {
          if (!ctl.signal.aborted) setState({ loading: false, data });
        },
        (err) => {
          if (ctl.signal.aborted || isAbort(err)) return;
          setState({
            loading: false,
            error: errorMessage(err),
            offline: isAgentOffline(err),
            denied: isCode(err, Code.PermissionDenied),
          });
        },
      );
      onCleanup(() => ctl.abort());
    }),
  );
  return { state, reload: () => setGeneration((g) => g + 1) };
}

function Offline(props: { agent: Agent | undefined; message: string; onRetry: () => void }) {
  return (
    <div class="callout callout-warning" role="alert" data-testid="agent-offline">
      <p class="callout-title">
        <span aria-hidden="true">○ </span>
        <Show
          when={props.agent?.connectionState !== ConnectionState.NEVER_CONNECTED}
          fallback={<>{props.agent?.name ?? "The agent"} has never connected</>}
        >
          {props.agent?.name ?? "The agent"} is offline
          <Show when={toDate(props.agent?.lastSeenAt)}>
            {(since) => (
              <>
                {" "}
                since {absoluteTime(since())} (last seen <RelativeTime value={props.agent?.lastSeenAt} />)
              </>
            )}
          </Show>
        </Show>
      </p>
      <p class="callout-body">
        Cluster data is read live through the agent, so nothing can be shown until it reconnects. Check that its pod is
        running (<code>kubectl -n k8sdeploy get pods</code>) and read its log.
      </p>
      <p class="muted small">{props.message}</p>
      <button type="button" class="btn" onClick={() => props.onRetry()}>
        Try again
      </button>
    </div>
  );
}

/**
 * The agent's RBAC does not allow a look-up: say how to grant it, with the objects to apply (copies
 * of the base kustomization's) or the cluster-wide overlay.
 */
function RbacDenied(props: { namespace?: string; message: string; onRetry: () => void }) {
  return (
    <div class="callout callout-warning" role="alert" data-testid="rbac-denied">
      <p class="callout-title">
        <Show when={props.namespace} fallback={<>The agent may not list namespaces</>}>
          The agent may not read workloads in <code>{props.namespace}</code>
        </Show>
      </p>
      <p class="callout-body">
        Its service account <code>k8sdeploy/k8sdeploy-agent</code> lacks the Kubernetes permission (the agent said:{" "}
        <span class="muted">{props.message}</span>).{" "}
        <Show
          when={props.namespace}
          fallback={<>Apply the ClusterRole the base install includes, which lets it list namespace names only:</>}
        >
          Grant it this namespace: bind the install's ClusterRole <code>k8sdeploy-agent-deployer</code> there (what the
          component <code>components/target-namespace</code> does):
        </Show>
      </p>
      <CopyBlock
        label={props.namespace ? `RoleBinding for ${props.namespace}` : "ClusterRole for namespaces"}
        text={props.namespace ? namespaceRoleSnippet(props.namespace) : namespacesRoleSnippet()}
        testId="rbac-snippet"
      />
      <p class="callout-body">
        Or let it into every namespace: install the overlay <code>{CLUSTER_WIDE_OVERLAY}</code> (
        <code>kubectl apply -k {CLUSTER_WIDE_OVERLAY}</code>).
      </p>
      <button type="button" class="btn" onClick={() => props.onRetry()}>
        Try again
      </button>
    </div>
  );
}

/** When namespaces cannot be listed: open one by name. */
function OpenNamespace() {
  const [value, setValue] = createSignal("");
  return (
    <form
      class="row"
      onSubmit={(e) => {
        e.preventDefault();
        if (value().trim()) setSearchParams({ namespace: value().trim() });
      }}
    >
      <div class="field grow">
        <label for="open-namespace">Open a namespace by name</label>
        <input id="open-namespace" value={value()} onInput={(e) => setValue(e.currentTarget.value)} />
      </div>
      <button type="submit" class="btn">
        Open
      </button>
    </form>
  );
}

function WorkloadsTable(props: { workloads: Workload[] }) {
  return (
    <div class="table-wrap">
      <table class="table responsive" aria-label="Workloads">
        <thead>
          <tr>
            <th scope="col">Workload</th>
            <th scope="col">Kind</th>
            <th scope="col">Containers</th>
            <th scope="col">Ready</th>
            <th scope="col">Last K8sDeploy change</th>
          </tr>
        </thead>
        <tbody>
          <For each={props.workloads}>
            {(w) => {
              const r = () => w.replicas;
              const healthy = () => !r() || (r()!.ready >= r()!.desired && r()!.updated >= r()!.desired);
              return (
                <tr data-workload={w.name}>
                  <td data-label="Workload">
                    <span class="strong">{w.name}</span>
                    <div class="muted small">
                      created <RelativeTime value={w.createdAt} />
                    </div>
                  </td>
                  <td data-label="Kind">{kindLabel(w.kind)}</td>
                  <td data-label="Containers">
                    <ul class="plain">
                      <For each={w.containers}>
                        {(c) => (
                          <li>
                            <span class="strong">{c.container}</span>
                            <Show when={c.init}>
                              <span class="muted small"> (init)</span>
                            </Show>
                            : <ImageRef image={c.image} />
                          </li>
                        )}
                      </For>
                    </ul>
                  </td>
                  <td data-label="Ready">
                    <span class={healthy() ? "ok-text" : "warn-text"}>
                      <span aria-hidden="true">{healthy() ? "✓ " : "! "}</span>
                      {r()?.ready ?? 0}/{r()?.desired ?? 0} ready
                    </span>
                    <div class="muted small">
                      {r()?.updated ?? 0} updated · {r()?.available ?? 0} available
                    </div>
                  </td>
                  <td data-label="Last change">
                    <Show when={w.lastDeploymentId} fallback={<span class="muted">—</span>}>
                      <a href={`/deployments/${encodeURIComponent(w.lastDeploymentId)}`}>
                        <code class="small">{w.lastDeploymentId}</code>
                      </a>
                    </Show>
                  </td>
                </tr>
              );
            }}
          </For>
        </tbody>
      </table>
    </div>
  );
}

export function Cluster() {
  onMount(() => {
    document.title = "Cluster · K8sDeploy";
  });
  const agents = createAgentsQuery(5000);
  const activeAgents = () => (agents.data() ?? []).filter((a) => !a.revokedAt);
  const agentId = createMemo(() => search().get("agent") ?? "");
  const namespace = createMemo(() => search().get("namespace") ?? "");
  const agent = () => activeAgents().find((a) => a.id === agentId());

  // With one agent, pick it.
  createEffect(() => {
    const list = activeAgents();
    if (agentId() === "" && list.length === 1 && list[0]) setSearchParams({ agent: list[0].id });
  });

  const namespaces = createLive<Namespace[]>(
    () => agentId() || undefined,
    async (id, signal) => (await admin.listNamespaces({ agentId: id }, { signal })).namespaces,
  );
  const workloads = createLive<Workload[]>(
    () => (agentId() && namespace() ? `${agentId()}\n${namespace()}` : undefined),
    async (key, signal) => {
      const [id, ns] = key.split("\n");
      return (await admin.listWorkloads({ agentId: id, namespace: ns }, { signal })).workloads;
    },
  );
  // When the agent comes back, retry what failed because it was offline.
  createEffect(
    on(
      () => agent()?.connectionState,
      (state, prev) => {
        if (state === ConnectionState.CONNECTED && prev !== undefined && prev !== state) {
          if (namespaces.state().offline) namespaces.reload();
          if (workloads.state().offline) workloads.reload();
        }
      },
    ),
  );

  createEffect(() => {
    if (!agents.loading()) markFirstContent();
  });
  return (
    <>
      <PageHeader title="Cluster">
        <Show when={agentId()}>
          <button
            type="button"
            class="btn"
            onClick={() => {
              namespaces.reload();
              if (namespace()) workloads.reload();
            }}
          >
            ↻ Refresh
          </button>
        </Show>
      </PageHeader>
      <InlineError message={agents.error()} onRetry={() => void agents.refresh()} />
      <Show when={!agents.loading()} fallback={<Loading label="Loading agents…" />}>
        <Show
          when={activeAgents().length > 0}
          fallback={
            <EmptyState title="No agents to look through">
              <p>
                <a href="/agents">Register an agent</a> in a cluster to browse its namespaces and workloads here.
              </p>
            </EmptyState>
          }
        >
          <div class="filters">
            <div class="field">
              <label for="cluster-agent">Agent</label>
              <select
                id="cluster-agent"
                value={agentId()}
                onChange={(e) => setSearchParams({ agent: e.currentTarget.value, namespace: undefined })}
              >
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
            <Show when={agent()}>
              {(a) => (
                <div class="field agent-status">
                  <span class="label">Status</span>
                  <span>
                    <ConnectionBadge state={a().connectionState} revoked={false} />{" "}
                    <Show when={a().kubernetesVersion}>
                      <span class="muted small">Kubernetes {a().kubernetesVersion}</span>
                    </Show>
                  </span>
                </div>
              )}
            </Show>
          </div>

          <Show when={agentId()} fallback={<EmptyState title="Choose an agent to see its cluster." />}>
            <Show
              when={!namespaces.state().offline}
              fallback={
                <Offline agent={agent()} message={namespaces.state().error ?? ""} onRetry={namespaces.reload} />
              }
            >
              <Show
                when={namespaces.state().denied}
                fallback={<InlineError message={namespaces.state().error ?? ""} onRetry={namespaces.reload} />}
              >
                <RbacDenied message={namespaces.state().error ?? ""} onRetry={namespaces.reload} />
                <OpenNamespace />
              </Show>
              <div class="cluster">
                <nav class="card namespaces" aria-label="Namespaces">
                  <h2>Namespaces</h2>
                  <Show
                    when={namespaces.state().data}
                    fallback={
                      <Show when={namespaces.state().loading}>
                        <Loading label="Asking the agent…" />
                      </Show>
                    }
                  >
                    {(list) => (
                      <Show
                        when={list().length > 0}
                        fallback={<p class="muted">No namespaces visible to the agent.</p>}
                      >
                        <ul class="ns-list">
                          <For each={list()}>
                            {(ns) => (
                              <li>
                                <a
                                  href={`/cluster?agent=${encodeURIComponent(agentId())}&namespace=${encodeURIComponent(ns.name)}`}
                                  aria-current={ns.name === namespace() ? "true" : undefined}
                                  onClick={(e) => {
                                    e.preventDefault();
                                    setSearchParams({ namespace: ns.name });
                                  }}
                                >
                                  {ns.name}
                                  <Show when={ns.phase && ns.phase !== "Active"}>
                                    <span class="muted small"> ({ns.phase})</span>
                                  </Show>
                                </a>
                              </li>
                            )}
                          </For>
                        </ul>
                      </Show>
                    )}
                  </Show>
                </nav>
                <section class="workloads" aria-labelledby="workloads-h">
                  <h2 id="workloads-h">{namespace() ? `Workloads in ${namespace()}` : "Workloads"}</h2>
                  <Show when={namespace()} fallback={<p class="muted">Choose a namespace.</p>}>
                    <Show
                      when={!workloads.state().offline}
                      fallback={
                        <Offline agent={agent()} message={workloads.state().error ?? ""} onRetry={workloads.reload} />
                      }
                    >
                      <Show
                        when={workloads.state().denied}
                        fallback={<InlineError message={workloads.state().error ?? ""} onRetry={workloads.reload} />}
                      >
                        <RbacDenied
                          namespace={namespace()}
                          message={workloads.state().error ?? ""}
                          onRetry={workloads.reload}
                        />
                      </Show>
                      <Show
                        when={workloads.state().data}
                        fallback={
                          <Show when={workloads.state().loading}>
                            <Loading label="Asking the agent…" />
                          </Show>
                        }
                      >
                        {(list) => (
                          <Show
                            when={list().length > 0}
                            fallback={
                              <EmptyState title="No Deployments, StatefulSets or DaemonSets in this namespace." />
                            }
                          >
                            <WorkloadsTable workloads={list()} />
                          </Show>
                        )}
                      </Show>
                    </Show>
                  </Show>
                </section>
              </div>
            </Show>
          </Show>
        </Show>
      </Show>
    </>
  );
}
