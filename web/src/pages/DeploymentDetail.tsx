// One deployment: what, where, from which commit, what happened (timeline), and a rollback.
import {
  ChangeKind,
  type ContainerImage,
  type Deployment,
  DeploymentState,
  type OidcClaims,
} from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { createEffect, createMemo, createSignal, For, onMount, Show } from "solid-js";
import { admin, deploy } from "../api/clients.js";
import { StateBadge } from "../components/Badge.js";
import { ConfirmDialog } from "../components/ConfirmDialog.js";
import { EmptyState, InlineError, Loading } from "../components/Feedback.js";
import { ImageRef } from "../components/ImageRef.js";
import { PageHeader } from "../components/Layout.js";
import { LiveIndicator } from "../components/LiveIndicator.js";
import { RelativeTime } from "../components/RelativeTime.js";
import {
  absoluteTime,
  duration,
  failureLabel,
  isFinalState,
  kindLabel,
  shortSha,
  toDate,
  toMillis,
} from "../lib/format.js";
import { githubLinks } from "../lib/github-links.js";
import { markFirstContent } from "../lib/perf.js";
import { navigate } from "../lib/router.js";
import { createAction } from "../state/action.js";
import { agentName, createAgentsQuery } from "../state/agents.js";
import { dashboardConfig } from "../state/dashboard-config.js";
import { createDeploymentDetail } from "../state/deployment-detail.js";

/** The failure text the page shows once, in the callout ("" when the deployment did not fail). */
export function failureText(d: Deployment): string {
  return d.failure ? d.failure.message || d.message : "";
}

/**
 * A timeline event's message without the deployment's failure text (the callout shows it), so
 * the text appears once on the page; what remains, or the failure's label when nothing does.
 */
export function eventText(message: string, failure: string, label: string): string {
  if (!failure || !message.includes(failure)) return message;
  const rest = message
    .replace(failure, "")
    .replace(/^[\s:;,.—-]+|[\s:;,.—-]+$/g, "")
    .trim();
  return rest || `${label} (see above)`;
}

/** Why the deployment cannot be rolled back from here, or "" if it can. */
export function rollbackBlocker(d: Deployment): string {
  if (d.changeKind === ChangeKind.AGENT_UPDATE) {
    return "Agent updates roll themselves back when the new agent does not become Ready; to go back, update the agent to the previous image.";
  }
  if (!isFinalState(d.state)) return "It can be rolled back once it has finished.";
  if (d.state === DeploymentState.ROLLED_BACK) return "The agent already restored the previous images.";
  const images = new Set(d.previousImages.map((p) => p.image));
  if (images.size === 0) return "No previous images were recorded: it never changed the workload.";
  if (images.size > 1) return "The changed containers had different images; deploy each one explicitly.";
  return "";
}

function Origin(props: { d: Deployment }) {
  const o = () => props.d.origin;
  const links = () => githubLinks(dashboardConfig()?.githubServerUrl ?? "", o());
  const repo = () => o()?.repository ?? "";
  return (
    <Show when={o() && (o()!.repository || o()!.actor || o()!.sha)} fallback={<p class="muted">No origin recorded.</p>}>
      <dl class="facts">
        <Show when={repo()}>
          <dt>Repository</dt>
          <dd>
            <Show when={links().repository} fallback={<span>{repo()}</span>}>
              {(href) => (
                <a href={href()} rel="noopener noreferrer" target="_blank">
                  {repo()}
                </a>
              )}
            </Show>
          </dd>
        </Show>
        <Show when={o()!.sha}>
          <dt>Commit</dt>
          <dd>
            <Show when={links().commit} fallback={<code>{shortSha(o()!.sha)}</code>}>
              {(href) => (
                <a href={href()} rel="noopener noreferrer" target="_blank">
                  <code>{shortSha(o()!.sha)}</code>
                </a>
              )}
            </Show>
            <Show when={o()!.ref}>
              <span class="muted"> on {o()!.ref.replace(/^refs\/heads\//, "")}</span>
            </Show>
          </dd>
        </Show>
        <Show when={o()!.workflow || o()!.runUrl}>
          <dt>Workflow run</dt>
          <dd>
            <Show when={links().run} fallback={<span>{o()!.workflow || o()!.runUrl}</span>}>
              {(url) => (
                <a href={url()} rel="noopener noreferrer" target="_blank">
                  {o()!.workflow || "Open run"}
                </a>
              )}
            </Show>
          </dd>
        </Show>
        <Show when={o()!.actor}>
          <dt>Actor</dt>
          <dd>
            <Show
              when={links().actor}
              fallback={<span>{o()!.actor === "dashboard" ? "dashboard" : `@${o()!.actor}`}</span>}
            >
              {(href) => (
                <a href={href()} rel="noopener noreferrer" target="_blank">
                  @{o()!.actor}
                </a>
              )}
            </Show>
          </dd>
        </Show>
      </dl>
    </Show>
  );
}

/** The digest the agent's image pre-flight resolved, whether it was pinned, and what that means. */
function Digest(props: { d: Deployment }) {
  return (
    <Show
      when={props.d.resolvedDigest}
      fallback={
        <span class="muted" data-testid="digest">
          {props.d.state === DeploymentState.QUEUED || props.d.state === DeploymentState.DELIVERED
            ? "resolved by the agent before it patches anything"
            : "not resolved (the registry could not be asked: see the timeline)"}
        </span>
      }
    >
      <code class="small digest" data-testid="digest">
        {props.d.resolvedDigest}
      </code>
      <div class="muted small">
        {props.d.pinDigest
          ? "pinned: the workload runs the image by this digest, so the tag cannot drift"
          : "the tag was written as given; deploy with pin-digest to run it by digest"}
      </div>
      <div class="muted small">
        The agent resolves the image against its registry before patching (image pre-flight: tag exists, credentials
        accepted, a variant for every node platform the pods can land on), with the workload's imagePullSecrets, its
        service account's or the agent's own registry secret. Those never leave the cluster.
      </div>
    </Show>
  );
}

/** The verified claims of the ID token that let the deployment in: the audit trail of an OIDC deploy. */
function OidcClaimsCard(props: { claims: OidcClaims; policyId: string }) {
  const c = () => props.claims;
  const rows = () =>
    [
      ["Repository", c().repository],
      ["Ref", c().ref],
      ["Environment", c().environment],
      ["Workflow", c().workflowRef],
      ["Reusable workflow", c().jobWorkflowRef !== c().workflowRef ? c().jobWorkflowRef : ""],
      ["Commit", c().sha],
      ["Actor", c().actor],
      ["Event", c().eventName],
      ["Run", c().runId ? `${c().runId} (attempt ${c().runAttempt || "1"})` : ""],
      ["Subject", c().subject],
      ["Issuer", c().issuer],
      ["Token id", c().tokenId],
    ].filter(([, v]) => v);
  return (
    <section class="card" aria-labelledby="oidc-h" data-testid="oidc-claims">
      <h2 id="oidc-h">Authenticated by GitHub OIDC</h2>
      <p class="muted small">
        Verified claims of the ID token that trust policy <code>{props.policyId}</code> accepted
        <Show when={toDate(c().issuedAt)}>{(t) => <> (issued {absoluteTime(t())})</>}</Show>.
      </p>
      <dl class="facts">
        <For each={rows()}>
          {([name, value]) => (
            <>
              <dt>{name}</dt>
              <dd>
                <code class="small">{value}</code>
              </dd>
            </>
          )}
        </For>
      </dl>
    </section>
  );
}

function Images(props: { previous: ContainerImage[]; applied: ContainerImage[] }) {
  const rows = createMemo(() => {
    const names = [...new Set([...props.previous, ...props.applied].map((c) => c.container))];
    return names.map((name) => ({
      name,
      init: [...props.previous, ...props.applied].some((c) => c.container === name && c.init),
      before: props.previous.find((c) => c.container === name)?.image ?? "",
      after: props.applied.find((c) => c.container === name)?.image ?? "",
    }));
  });
  return (
    <Show when={rows().length > 0} fallback={<p class="muted">The agent has not reported any container change yet.</p>}>
      <div class="table-wrap">
        <table class="table responsive" aria-label="Container images">
          <thead>
            <tr>
              <th scope="col">Container</th>
              <th scope="col">Previous image</th>
              <th scope="col">Applied image</th>
            </tr>
          </thead>
          <tbody>
            <For each={rows()}>
              {(r) => (
                <tr>
                  <td data-label="Container">
                    {r.name}
                    <Show when={r.init}>
                      <span class="muted small"> (init)</span>
                    </Show>
                  </td>
                  <td data-label="Previous">
                    {r.before ? <ImageRef image={r.before} /> : <span class="muted">—</span>}
                  </td>
                  <td data-label="Applied">{r.after ? <ImageRef image={r.after} /> : <span class="muted">—</span>}</td>
                </tr>
              )}
            </For>
          </tbody>
        </table>
      </div>
    </Show>
  );
}

export function DeploymentDetail(props: { id: string }) {
  const detail = createDeploymentDetail(props.id);
  const agents = createAgentsQuery(30_000);
  const [confirming, setConfirming] = createSignal<"rollback" | "cancel" | undefined>();
  const action = createAction();
  onMount(() => {
    document.title = `${props.id} · K8sDeploy`;
  });
  createEffect(() => {
    if (detail.deployment() || detail.error() || detail.notFound()) markFirstContent();
  });

  const rollback = () =>
    action.run(async () => {
      const response = await admin.rollbackDeployment({ id: props.id });
      setConfirming(undefined);
      if (response.deployment) navigate(`/deployments/${encodeURIComponent(response.deployment.id)}`);
    });
  const cancel = () =>
    action.run(async () => {
      await deploy.cancelDeployment({ id: props.id, reason: "cancelled from the dashboard" });
      setConfirming(undefined);
    });
  const ask = (what: "rollback" | "cancel") => {
    action.setError("");
    setConfirming(what);
  };

  return (
    <>
      <p class="breadcrumb">
        <a href="/deployments">← Deployments</a>
      </p>
      <Show when={!detail.notFound()} fallback={<NotFoundState id={props.id} />}>
        <InlineError message={detail.error()} onRetry={() => location.reload()} retryLabel="Reload" />
        <Show
          when={detail.deployment()}
          fallback={
            <Show when={!detail.error()}>
              <Loading label="Loading deployment…" />
            </Show>
          }
        >
          {(d) => {
            const blocker = () => rollbackBlocker(d());
            return (
              <>
                <PageHeader
                  title={`${d().namespace}/${d().workload}`}
                  sub={
                    <p class="subtitle">
                      <StateBadge state={d().state} />{" "}
                      <Show when={d().changeKind === ChangeKind.AGENT_UPDATE}>
                        <span class="badge tone-info" data-testid="agent-update-badge">
                          Agent update{d().agentVersion ? ` to ${d().agentVersion}` : ""}
                        </span>{" "}
                      </Show>
                      <span class="muted">{kindLabel(d().kind)} ·</span> <code class="small">{d().id}</code>
                    </p>
                  }
                >
                  <Show when={!isFinalState(d().state)}>
                    <LiveIndicator status={detail.status()} />
                  </Show>
                  <Show when={d().state === DeploymentState.QUEUED}>
                    <button type="button" class="btn" onClick={() => ask("cancel")}>
                      ⊘ Cancel
                    </button>
                  </Show>
                  <button
                    type="button"
                    class="btn"
                    disabled={blocker() !== ""}
                    title={blocker() || undefined}
                    aria-describedby={blocker() ? "rollback-blocker" : undefined}
                    onClick={() => ask("rollback")}
                  >
                    ↶ Roll back
                  </button>
                </PageHeader>
                <Show when={blocker() && isFinalState(d().state)}>
                  <p id="rollback-blocker" class="hint right">
                    {blocker()}
                  </p>
                </Show>

                <Show when={d().failure}>
                  {(f) => (
                    <div class="callout callout-danger" role="note" aria-label="Failure" data-testid="failure">
                      <p class="callout-title">{failureLabel(f().reason)}</p>
                      <p class="callout-body">{f().message || d().message}</p>
                    </div>
                  )}
                </Show>

                <div class="grid-2">
                  <section class="card" aria-labelledby="what-h">
                    <h2 id="what-h">Target</h2>
                    <dl class="facts">
                      <dt>{d().changeKind === ChangeKind.AGENT_UPDATE ? "Agent image" : "Image"}</dt>
                      <dd>
                        <ImageRef image={d().image} />
                      </dd>
                      <Show when={d().changeKind !== ChangeKind.AGENT_UPDATE}>
                        <dt>Digest</dt>
                        <dd>
                          <Digest d={d()} />
                        </dd>
                      </Show>
                      <dt>Agent</dt>
                      <dd>{agentName(agents.data(), d().agentId)}</dd>
                      <dt>Namespace</dt>
                      <dd>{d().namespace}</dd>
                      <dt>Workload</dt>
                      <dd>
                        {kindLabel(d().kind)} {d().workload}
                      </dd>
                      <dt>Containers</dt>
                      <dd>{d().containers.length > 0 ? d().containers.join(", ") : "Every container of that image"}</dd>
                      <dt>Timeout</dt>
                      <dd>
                        {d().timeoutSeconds} s{d().rollbackOnFailure ? " · rolls back on failure" : ""}
                      </dd>
                      <dt>Started</dt>
                      <dd>
                        <RelativeTime value={d().createdAt} />
                        <Show when={isFinalState(d().state)}>
                          <span class="muted">
                            {" "}
                            · took {duration(toMillis(d().updatedAt) - toMillis(d().createdAt))}
                          </span>
                        </Show>
                      </dd>
                      <Show when={d().rollbackOf}>
                        <dt>Rollback of</dt>
                        <dd>
                          <a href={`/deployments/${encodeURIComponent(d().rollbackOf)}`}>{d().rollbackOf}</a>
                        </dd>
                      </Show>
                      <dt>Requested by</dt>
                      <dd data-testid="requested-by">
                        <Show
                          when={d().trustPolicyId}
                          fallback={d().keyId ? <code class="small">{d().keyId}</code> : "admin"}
                        >
                          GitHub OIDC, trust policy{" "}
                          <a href="/trust">
                            <code class="small">{d().trustPolicyId}</code>
                          </a>
                        </Show>
                      </dd>
                    </dl>
                  </section>
                  <section class="card" aria-labelledby="origin-h">
                    <h2 id="origin-h">Origin</h2>
                    <Origin d={d()} />
                  </section>
                </div>

                <Show when={d().oidcClaims}>{(c) => <OidcClaimsCard claims={c()} policyId={d().trustPolicyId} />}</Show>

                <section class="card" aria-labelledby="images-h">
                  <h2 id="images-h">Images</h2>
                  <Images previous={d().previousImages} applied={d().appliedImages} />
                </section>

                <section class="card" aria-labelledby="timeline-h">
                  <h2 id="timeline-h">Timeline</h2>
                  <Show when={detail.events().length > 0} fallback={<p class="muted">No events yet.</p>}>
                    <ol class="timeline">
                      <For each={detail.events()}>
                        {(e) => (
                          <li class="timeline-item" data-seq={e.seq}>
                            <div class="timeline-head">
                              <StateBadge state={e.state} />
                              <Show when={toDate(e.time)}>
                                {(t) => (
                                  <time class="muted small" datetime={t().toISOString()}>
                                    {absoluteTime(t())}
                                  </time>
                                )}
                              </Show>
                            </div>
                            <p class="timeline-message">
                              {eventText(
                                e.message,
                                failureText(d()),
                                e.failure ? failureLabel(e.failure.reason) : "Failed",
                              )}
                            </p>
                            <Show
                              when={
                                e.replicas && e.replicas.desired > 0 && !/\breplicas?\b/.test(e.message)
                                  ? e.replicas
                                  : undefined
                              }
                            >
                              {(r) => (
                                <p class="muted small">
                                  {r().updated}/{r().desired} updated · {r().ready} ready · {r().available} available
                                </p>
                              )}
                            </Show>
                            <Show
                              when={
                                e.failure &&
                                e.failure.message !== failureText(d()) &&
                                !e.message.includes(e.failure.message)
                                  ? e.failure
                                  : undefined
                              }
                            >
                              {(f) => (
                                <p class="small danger-text">
                                  {failureLabel(f().reason)}: {f().message}
                                </p>
                              )}
                            </Show>
                          </li>
                        )}
                      </For>
                    </ol>
                  </Show>
                </section>

                <ConfirmDialog
                  open={confirming() === "rollback"}
                  title="Roll back this deployment?"
                  confirmLabel="Roll back"
                  danger
                  busy={action.pending()}
                  error={action.error()}
                  onConfirm={() => void rollback()}
                  onCancel={() => setConfirming(undefined)}
                >
                  <p>
                    This starts a new deployment through agent {agentName(agents.data(), d().agentId)} that sets these
                    containers of {kindLabel(d().kind)} {d().namespace}/{d().workload} back to the images recorded
                    before this deployment:
                  </p>
                  <ul class="rollback-images" aria-label="Images the rollback deploys">
                    <For each={d().previousImages}>
                      {(p) => (
                        <li>
                          {p.container}
                          {p.init ? " (init)" : ""}: <ImageRef image={p.image} />
                        </li>
                      )}
                    </For>
                  </ul>
                </ConfirmDialog>
                <ConfirmDialog
                  open={confirming() === "cancel"}
                  title="Cancel this deployment?"
                  confirmLabel="Cancel deployment"
                  danger
                  busy={action.pending()}
                  error={action.error()}
                  onConfirm={() => void cancel()}
                  onCancel={() => setConfirming(undefined)}
                >
                  <p>
                    It has not been sent to the agent yet. Once cancelled it is never applied to {d().namespace}/
                    {d().workload}.
                  </p>
                </ConfirmDialog>
              </>
            );
          }}
        </Show>
      </Show>
    </>
  );
}

function NotFoundState(props: { id: string }) {
  return (
    <>
      <PageHeader title="Deployment not found" />
      <EmptyState title={`There is no deployment ${props.id}.`}>
        <p>
          Check the link, or find it on <a href="/deployments">Deployments</a>.
        </p>
      </EmptyState>
    </>
  );
}
