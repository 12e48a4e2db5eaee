// Formatting of times, enums and names for display.
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectionState } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { DeploymentState, FailureReason, WorkloadKind } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";

export function toDate(ts: Timestamp | undefined): Date | undefined {
  if (!ts || (ts.seconds === 0n && ts.nanos === 0)) return undefined;
  return timestampDate(ts);
}

export function toMillis(ts: Timestamp | undefined): number {
  return ts ? Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6) : 0;
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago", or a date for older times. */
export function relativeTime(date: Date, now: number): string {
  const diff = Math.round((now - date.getTime()) / 1000);
  const future = diff < 0;
  const s = Math.abs(diff);
  let text: string;
  if (s < 5) return "just now";
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86_400) text = `${Math.floor(s / 3600)} h`;
  else if (s < 30 * 86_400) text = `${Math.floor(s / 86_400)} d`;
  else return date.toLocaleDateString();
  return future ? `in ${text}` : `${text} ago`;
}

export function absoluteTime(date: Date): string {
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export type Tone = "neutral" | "info" | "progress" | "success" | "danger" | "warning";

interface StateInfo {
  label: string;
  /** The lowercase name used in URLs and by the GitHub Action's `status` output. */
  slug: string;
  tone: Tone;
  icon: string;
}

export const deploymentStates: Record<number, StateInfo> = {
  [DeploymentState.QUEUED]: { label: "Queued", slug: "queued", tone: "neutral", icon: "◷" },
  [DeploymentState.DELIVERED]: { label: "Delivered", slug: "delivered", tone: "info", icon: "↧" },
  [DeploymentState.IN_PROGRESS]: { label: "In progress", slug: "in_progress", tone: "progress", icon: "↻" },
  [DeploymentState.SUCCEEDED]: { label: "Succeeded", slug: "succeeded", tone: "success", icon: "✓" },
  [DeploymentState.FAILED]: { label: "Failed", slug: "failed", tone: "danger", icon: "✕" },
  [DeploymentState.ROLLED_BACK]: { label: "Rolled back", slug: "rolled_back", tone: "warning", icon: "↶" },
  [DeploymentState.TIMED_OUT]: { label: "Timed out", slug: "timed_out", tone: "danger", icon: "⧗" },
  [DeploymentState.CANCELLED]: { label: "Cancelled", slug: "cancelled", tone: "neutral", icon: "⊘" },
  [DeploymentState.SUPERSEDED]: { label: "Superseded", slug: "superseded", tone: "neutral", icon: "⤼" },
  [DeploymentState.EXPIRED]: { label: "Expired", slug: "expired", tone: "warning", icon: "⌛" },
};

export const stateOrder: DeploymentState[] = [
  DeploymentState.QUEUED,
  DeploymentState.DELIVERED,
  DeploymentState.IN_PROGRESS,
  DeploymentState.SUCCEEDED,
  DeploymentState.FAILED,
  DeploymentState.ROLLED_BACK,
  DeploymentState.TIMED_OUT,
  DeploymentState.CANCELLED,
  DeploymentState.SUPERSEDED,
  DeploymentState.EXPIRED,
];

export function stateInfo(state: DeploymentState): StateInfo {
  return deploymentStates[state] ?? { label: "Unknown", slug: "unknown", tone: "neutral", icon: "?" };
}

export function stateFromSlug(slug: string): DeploymentState | undefined {
  return stateOrder.find((s) => stateInfo(s).slug === slug);
}

export function isFinalState(state: DeploymentState): boolean {
  return state >= DeploymentState.SUCCEEDED;
}

export function connectionInfo(state: ConnectionState, revoked: boolean): { label: string; tone: Tone; icon: string } {
  if (revoked) return { label: "Revoked", tone: "neutral", icon: "⊘" };
  switch (state) {
    case ConnectionState.CONNECTED:
      return { label: "Connected", tone: "success", icon: "●" };
    case ConnectionState.DISCONNECTED:
      return { label: "Offline", tone: "danger", icon: "○" };
    case ConnectionState.NEVER_CONNECTED:
      return { label: "Never connected", tone: "warning", icon: "◌" };
    default:
      return { label: "Unknown", tone: "neutral", icon: "?" };
  }
}

export function kindLabel(kind: WorkloadKind): string {
  switch (kind) {
    case WorkloadKind.STATEFUL_SET:
      return "StatefulSet";
    case WorkloadKind.DAEMON_SET:
      return "DaemonSet";
    default:
      return "Deployment";
  }
}

const failureLabels: Record<number, string> = {
  [FailureReason.IMAGE_PULL]: "Image pull failed",
  [FailureReason.CRASH_LOOP]: "Crash loop",
  [FailureReason.PROGRESS_DEADLINE_EXCEEDED]: "Progress deadline exceeded",
  [FailureReason.TIMEOUT]: "Timed out",
  [FailureReason.WORKLOAD_NOT_FOUND]: "Workload not found",
  [FailureReason.CONTAINER_NOT_FOUND]: "Container not found",
  [FailureReason.PERMISSION_DENIED]: "Permission denied",
  [FailureReason.INVALID_COMMAND]: "Invalid command",
  [FailureReason.KUBERNETES_API]: "Kubernetes API error",
  [FailureReason.ROLLBACK_FAILED]: "Rollback failed",
  [FailureReason.POD_NOT_SCHEDULED]: "Pod not scheduled",
  [FailureReason.SUPERSEDED]: "Superseded by a newer deployment",
  [FailureReason.QUEUE_DEADLINE_EXCEEDED]: "Queue deadline passed",
  [FailureReason.CANCELLED]: "Cancelled",
  [FailureReason.IMAGE_NOT_FOUND]: "Image not found",
  [FailureReason.REGISTRY_UNAUTHORIZED]: "Registry refused the credentials",
  [FailureReason.PLATFORM_MISMATCH]: "No image for the nodes' platform",
  [FailureReason.REGISTRY_UNREACHABLE]: "Registry unreachable",
  [FailureReason.AGENT_NOT_READY]: "New agent never became Ready",
};

export function failureLabel(reason: FailureReason): string {
  return failureLabels[reason] ?? "Failure";
}

export const shortSha = (sha: string): string => sha.slice(0, 7);

/** Splits "a, b c" into ["a", "b", "c"]. */
export function splitList(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}
