// The job summary: what was deployed where, how it ended, where it came from, and its timeline.
import type * as core from "@actions/core";
import type { Deployment, DeploymentEvent, Origin, ReplicaStatus } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { stateName } from "./follow.js";

type Summary = typeof core.summary;

export interface Report {
  namespace: string;
  kindName: string;
  workload: string;
  image: string;
  containers: string[];
  /** The deployment as last seen, if Deploy answered. */
  deployment?: Deployment;
  events: DeploymentEvent[];
  /** `status` output (lowercase state), or "" when there is no deployment. */
  status: string;
  /** `message` output. */
  message: string;
  /** Why the action failed when the deployment itself says nothing (gRPC error, deadline). */
  error?: string;
  /** False when `wait` was false. */
  waited: boolean;
  origin: Origin;
  /** Epoch ms when the step started and ended. */
  startedAt: number;
  finishedAt: number;
}

const ICONS: Record<string, string> = {
  succeeded: "✅",
  failed: "❌",
  rolled_back: "↩️",
  timed_out: "⏱️",
  cancelled: "🚫",
  superseded: "⏭️",
  expired: "⌛",
};

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const code = (text: string) => `<code>${escapeHtml(text)}</code>`;

/** A table cell; core.summary renders an empty one as an unclosed `<td>`. */
const cell = (data: string) => ({ data: data === "" ? " " : data });

/** `IMAGE_PULL`, … ("" when unspecified). */
export function failureReasonName(reason: FailureReason): string {
  if (reason === FailureReason.FAILURE_REASON_UNSPECIFIED || reason === FailureReason.UNRECOGNIZED) return "";
  return (FailureReason[reason] ?? "").replace(/^FAILURE_REASON_/, "");
}

/** `1m 05s`, `42s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

/** `12:00:01` (UTC). */
export function formatTime(time: Date): string {
  return time.toISOString().slice(11, 19);
}

export function formatReplicas(replicas: ReplicaStatus | undefined): string {
  if (!replicas) return "";
  return `${replicas.updated}/${replicas.desired} updated, ${replicas.ready} ready, ${replicas.available} available`;
}

function duration(report: Report): string {
  const created = report.deployment?.createdAt;
  const last = report.events.at(-1)?.time;
  if (created && last && last >= created) return formatDuration(last.getTime() - created.getTime());
  return formatDuration(report.finishedAt - report.startedAt);
}

function originCell(origin: Origin): string {
  const parts: string[] = [];
  if (origin.repository)
    parts.push(code(origin.sha ? `${origin.repository}@${origin.sha.slice(0, 12)}` : origin.repository));
  if (origin.ref) parts.push(code(origin.ref));
  if (origin.actor) parts.push(`by ${escapeHtml(origin.actor)}`);
  if (origin.workflow) parts.push(`workflow ${escapeHtml(origin.workflow)}`);
  if (origin.runUrl) parts.push(`<a href="${escapeHtml(origin.runUrl)}">run</a>`);
  return parts.length > 0 ? parts.join(" · ") : "—";
}

/** The trust policy and the verified OIDC claims that let the deployment in (no deploy key). */
function trustCell(deployment: Deployment): string {
  const claims = deployment.oidcClaims;
  const parts = [`GitHub OIDC, trust policy ${code(deployment.trustPolicyId)}`];
  if (claims) {
    parts.push(code(`${claims.repository}@${claims.ref}`));
    if (claims.environment) parts.push(`environment ${code(claims.environment)}`);
    if (claims.workflowRef) parts.push(`workflow ${code(claims.workflowRef)}`);
  }
  return parts.join(" · ");
}

/** Appends the report to `summary` (e.g. core.summary) and returns it; the caller writes it. */
export function addReport(summary: Summary, report: Report): Summary {
  const deployment = report.deployment;
  const icon = ICONS[report.status] ?? (report.error ? "❌" : "⏳");
  const target = `${report.kindName} ${report.namespace}/${report.workload}`;
  summary.addHeading(`${icon} K8sDeploy: ${escapeHtml(target)} → ${escapeHtml(report.image)}`, 3);

  const rows: [string, string][] = [];
  rows.push(["Deployment", deployment ? code(deployment.id) : "— (not created)"]);
  rows.push(["Workload", `${escapeHtml(report.kindName)} ${code(`${report.namespace}/${report.workload}`)}`]);
  if (report.containers.length > 0) rows.push(["Containers", report.containers.map(code).join(", ")]);
  rows.push(["Image", code(report.image)]);
  if (deployment?.resolvedDigest) {
    const pinned = deployment.pinDigest ? " (pinned: the workload runs the image by this digest)" : "";
    rows.push(["Digest", `${code(deployment.resolvedDigest)}${pinned}`]);
  } else if (deployment?.pinDigest) {
    rows.push(["Digest", "— (not resolved)"]);
  }
  const statusText = report.status ? `<b>${escapeHtml(report.status)}</b>` : "—";
  rows.push(["Status", report.waited || !deployment ? statusText : `${statusText} (not waited for)`]);
  rows.push(["Duration", duration(report)]);
  const failure = deployment?.failure;
  if (failure) {
    const reason = failureReasonName(failure.reason);
    rows.push(["Failure", `${reason ? `${code(reason)}: ` : ""}${escapeHtml(failure.message)}`]);
  }
  if (report.error) rows.push(["Error", escapeHtml(report.error)]);
  else if (report.message && !failure) rows.push(["Message", escapeHtml(report.message)]);
  if (deployment && deployment.previousImages.length > 0) {
    rows.push([
      "Previous images",
      deployment.previousImages.map((c) => `${escapeHtml(c.container)}: ${code(c.image)}`).join("<br>"),
    ]);
  }
  rows.push(["Origin", originCell(report.origin)]);
  if (deployment?.trustPolicyId) rows.push(["Authenticated by", trustCell(deployment)]);

  summary.addTable([
    [
      { data: "Field", header: true },
      { data: "Value", header: true },
    ],
    ...rows.map(([name, value]) => [cell(name), cell(value)]),
  ]);

  if (report.events.length > 0) {
    summary.addHeading("Timeline", 4);
    summary.addTable([
      [
        { data: "#", header: true },
        { data: "Time (UTC)", header: true },
        { data: "State", header: true },
        { data: "Message", header: true },
        { data: "Replicas", header: true },
      ],
      ...report.events.map((event) => [
        cell(String(event.seq)),
        cell(event.time ? formatTime(event.time) : ""),
        cell(escapeHtml(stateName(event.state))),
        cell(
          escapeHtml(
            event.failure && !event.message.includes(event.failure.message)
              ? `${event.message} (${event.failure.message})`.trim()
              : event.message,
          ),
        ),
        cell(escapeHtml(formatReplicas(event.replicas))),
      ]),
    ]);
  }
  return summary;
}
