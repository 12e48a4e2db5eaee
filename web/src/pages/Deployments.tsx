// Every deployment, newest first, updated live; filters by agent, namespace and state in the URL.
import type { Deployment } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { createEffect, createMemo, createSignal, For, on, onCleanup, Show } from "solid-js";
import { StateBadge } from "../components/Badge.js";
import { DataTable } from "../components/DataTable.js";
import { EmptyState } from "../components/Feedback.js";
import { ImageRef } from "../components/ImageRef.js";
import { PageHeader } from "../components/Layout.js";
import { LiveIndicator } from "../components/LiveIndicator.js";
import { PolledView } from "../components/PolledView.js";
import { RelativeTime } from "../components/RelativeTime.js";
import { isFinalState, kindLabel, shortSha, stateInfo, stateOrder } from "../lib/format.js";
import { pageTitle } from "../lib/page-title.js";
import { markFirstContentWhen } from "../lib/perf.js";
import { agentName, createAgentsQuery } from "../state/agents.js";
import { createLiveDeployments } from "../state/live-deployments.js";
import { useDeploymentFilters } from "./deployment-filters.js";

function Filters(props: { agents: ReturnType<typeof createAgentsQuery>; namespaces: string[] }) {
  const { filter, set, active, clear } = useDeploymentFilters();
  const [namespace, setNamespace] = createSignal(filter().namespace);
  createEffect(on(() => filter().namespace, setNamespace));
  let debounce: ReturnType<typeof setTimeout> | undefined;
  onCleanup(() => clearTimeout(debounce));
  const applyNamespace = (value: string) => {
    clearTimeout(debounce);
    if (value.trim() !== filter().namespace) set({ namespace: value.trim() });
  };
  const toggleState = (state: number, on: boolean) => {
    const states = filter().states.filter((s) => s !== state);
    set({ states: on ? [...states, state].sort() : states });
  };
  return (
    <form
      class="filters"
      aria-label="Filter deployments"
      onSubmit={(e) => {
        e.preventDefault();
        applyNamespace(namespace());
      }}
    >
      <div class="field">
        <label for="filter-agent">Agent</label>
        <select id="filter-agent" value={filter().agentId} onChange={(e) => set({ agentId: e.currentTarget.value })}>
          <option value="" selected={filter().agentId === ""}>
            All agents
          </option>
          <For each={props.agents.data() ?? []}>
            {(a) => (
              <option value={a.id} selected={a.id === filter().agentId}>
                {a.name}
              </option>
            )}
          </For>
          <Show when={filter().agentId && !props.agents.data()?.some((a) => a.id === filter().agentId)}>
            <option value={filter().agentId} selected>
              {filter().agentId}
            </option>
          </Show>
        </select>
      </div>
      <div class="field">
        <label for="filter-namespace">Namespace</label>
        <input
          id="filter-namespace"
          type="search"
          list="filter-namespaces"
          placeholder="Any namespace"
          value={namespace()}
          onInput={(e) => {
            const value = e.currentTarget.value;
            setNamespace(value);
            clearTimeout(debounce);
            debounce = setTimeout(() => applyNamespace(value), 500);
          }}
          onChange={(e) => applyNamespace(e.currentTarget.value)}
        />
        <datalist id="filter-namespaces">
          <For each={props.namespaces}>{(ns) => <option value={ns} />}</For>
        </datalist>
      </div>
      <fieldset class="field state-filter">
        <legend>State</legend>
        <div class="chips">
          <For each={stateOrder}>
            {(state) => (
              <label class="chip">
                <input
                  type="checkbox"
                  checked={filter().states.includes(state)}
                  onChange={(e) => toggleState(state, e.currentTarget.checked)}
                />
                <span>{stateInfo(state).label}</span>
              </label>
            )}
          </For>
        </div>
      </fieldset>
      <Show when={active()}>
        <button type="button" class="btn btn-ghost" onClick={clear}>
          Clear filters
        </button>
      </Show>
    </form>
  );
}

function Progress(props: { deployment: Deployment }) {
  const r = () => props.deployment.replicas;
  return (
    <Show when={!isFinalState(props.deployment.state) && r() && r()!.desired > 0}>
      <span class="muted small">
        {" "}
        · {r()!.updated}/{r()!.desired} updated
      </span>
    </Show>
  );
}

export function Deployments() {
  pageTitle("Deployments");
  const { filter, active, clear } = useDeploymentFilters();
  const agents = createAgentsQuery(15_000);
  const live = createLiveDeployments(filter);
  const namespaces = createMemo(() => [...new Set(live.items().map((d) => d.namespace))].sort());
  markFirstContentWhen(() => live.loaded());

  return (
    <>
      <PageHeader title="Deployments">
        <LiveIndicator status={live.status()} />
      </PageHeader>
      <Filters agents={agents} namespaces={namespaces()} />
      <PolledView
        source={{ error: live.listError, loading: () => !live.loaded() }}
        count={live.items().length}
        loadingLabel="Loading deployments…"
        empty={
          <Show
            when={active()}
            fallback={
              <EmptyState title="No deployments yet">
                <p>
                  Deployments appear here, live, as soon as a workflow starts one. Register an agent in your cluster on{" "}
                  <a href="/agents">Agents</a>, create a key on <a href="/keys">Deploy keys</a>, and add the K8sDeploy
                  action to a GitHub workflow.
                </p>
              </EmptyState>
            }
          >
            <EmptyState title="No deployments match these filters">
              <button type="button" class="btn" onClick={clear}>
                Clear filters
              </button>
            </EmptyState>
          </Show>
        }
        emptyOnError
      >
        <DataTable
          label="Deployments"
          class="deployments"
          columns={["State", "Workload", "Image", "Agent", "Origin", "Started"]}
        >
          <For each={live.items()}>
            {(d) => (
              <tr
                data-deployment-id={d.id}
                data-state={stateInfo(d.state).slug}
                classList={{ flash: live.flashing(d.id) }}
              >
                <td data-label="State">
                  <StateBadge state={d.state} />
                  <Progress deployment={d} />
                </td>
                <td data-label="Workload">
                  <a href={`/deployments/${encodeURIComponent(d.id)}`} class="strong">
                    {d.namespace}/{d.workload}
                  </a>
                  <div class="muted small">
                    {kindLabel(d.kind)}
                    <Show when={d.rollbackOf}> · rollback</Show>
                  </div>
                </td>
                <td data-label="Image">
                  <ImageRef image={d.image} />
                </td>
                <td data-label="Agent">{agentName(agents.data(), d.agentId)}</td>
                <td data-label="Origin">
                  <Show when={d.origin?.repository} fallback={<span class="muted">{d.origin?.actor || "—"}</span>}>
                    <span>{d.origin?.repository}</span>
                    <Show when={d.origin?.sha}>
                      {" "}
                      <code class="small">{shortSha(d.origin?.sha ?? "")}</code>
                    </Show>
                    <Show when={d.origin?.actor}>
                      <div class="muted small">by {d.origin?.actor}</div>
                    </Show>
                  </Show>
                </td>
                <td data-label="Started">
                  <RelativeTime value={d.createdAt} />
                </td>
              </tr>
            )}
          </For>
        </DataTable>
        <Show when={live.nextPageToken()}>
          <div class="center">
            <button type="button" class="btn" onClick={() => void live.loadMore()} disabled={live.loadingMore()}>
              {live.loadingMore() ? "Loading…" : "Load older deployments"}
            </button>
          </div>
        </Show>
      </PolledView>
    </>
  );
}
