// The platform check: which nodes can the workload's pods land on (the pod template's nodeName,
// nodeSelector, required node affinity and tolerations against the nodes' labels, taints and
// cordons), and does the image offer their os/architecture (`kubernetes.io/os`, `kubernetes.io/arch`)?
import type { V1Node, V1NodeSelectorRequirement, V1PodSpec, V1Taint, V1Toleration } from "@kubernetes/client-node";
import type { Platform } from "./client.js";

export const OS_LABEL = "kubernetes.io/os";
export const ARCH_LABEL = "kubernetes.io/arch";

/** The scheduler's verdict for one node, reduced to what the platform check needs. */
export function canLand(node: V1Node, spec: V1PodSpec | undefined): boolean {
  const labels = node.metadata?.labels ?? {};
  const name = node.metadata?.name ?? "";
  if (spec?.nodeName) return spec.nodeName === name;
  if (node.spec?.unschedulable) return false;
  for (const [k, v] of Object.entries(spec?.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const terms = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (terms && terms.length > 0) {
    // Terms are ORed; the requirements of one term are ANDed; an empty term matches nothing.
    const ok = terms.some((t) => {
      const exprs = t.matchExpressions ?? [];
      const fields = t.matchFields ?? [];
      if (exprs.length === 0 && fields.length === 0) return false;
      return (
        exprs.every((r) => requirementMatches(r, labels[r.key])) &&
        fields.every((r) => r.key !== "metadata.name" || requirementMatches(r, name))
      );
    });
    if (!ok) return false;
  }
  return (node.spec?.taints ?? []).every(
    (taint) => !repels(taint) || (spec?.tolerations ?? []).some((t) => tolerates(t, taint)),
  );
}

function requirementMatches(r: V1NodeSelectorRequirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
      return value !== undefined && Number(value) > Number(values[0]);
    case "Lt":
      return value !== undefined && Number(value) < Number(values[0]);
    default:
      return false;
  }
}

/**
 * Taints that keep new pods away. The node-lifecycle ones (`node.kubernetes.io/not-ready`, …) are
 * transient and tolerated by DaemonSet pods: they do not decide where an image must run.
 */
function repels(taint: V1Taint): boolean {
  if (taint.key.startsWith("node.kubernetes.io/")) return false;
  return taint.effect === "NoSchedule" || taint.effect === "NoExecute";
}

function tolerates(t: V1Toleration, taint: V1Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.operator === "Exists") return !t.key || t.key === taint.key;
  return t.key === taint.key && (t.value ?? "") === (taint.value ?? "");
}

export function nodePlatform(node: V1Node): { os: string; architecture: string } | undefined {
  const labels = node.metadata?.labels ?? {};
  const os = labels[OS_LABEL] ?? node.status?.nodeInfo?.operatingSystem;
  const architecture = labels[ARCH_LABEL] ?? node.status?.nodeInfo?.architecture;
  return os && architecture ? { os, architecture } : undefined;
}

export const platformName = (p: Pick<Platform, "os" | "architecture" | "variant">, withVariant = true) =>
  `${p.os}/${p.architecture}${withVariant && p.variant ? `/${p.variant}` : ""}`;

export interface PlatformVerdict {
  /** Nodes the pods can land on, by platform (`linux/arm64` → names). */
  eligible: Map<string, string[]>;
  /** Platforms of eligible nodes the image does not offer, with their nodes. */
  missing: Map<string, string[]>;
}

/**
 * Compares the image's platforms with the eligible nodes'. Nodes are compared by os and
 * architecture only: node labels carry no variant (an arm64 node runs arm64/v8 images).
 */
export function checkPlatforms(
  imagePlatforms: readonly Platform[],
  nodes: readonly V1Node[],
  spec: V1PodSpec | undefined,
): PlatformVerdict {
  const offered = new Set(imagePlatforms.map((p) => platformName(p, false)));
  const eligible = new Map<string, string[]>();
  const missing = new Map<string, string[]>();
  for (const node of nodes) {
    if (!canLand(node, spec)) continue;
    const p = nodePlatform(node);
    if (!p) continue;
    const key = platformName(p, false);
    const name = node.metadata?.name ?? "?";
    eligible.set(key, [...(eligible.get(key) ?? []), name]);
    if (!offered.has(key)) missing.set(key, [...(missing.get(key) ?? []), name]);
  }
  return { eligible, missing };
}

/** `example.com/app:2 has linux/amd64 only; the pods can land on linux/arm64 nodes pi-1, pi-2` */
export function mismatchMessage(
  display: string,
  imagePlatforms: readonly Platform[],
  missing: Map<string, string[]>,
): string {
  const offered = [...new Set(imagePlatforms.map((p) => platformName(p)))];
  const has = offered.length === 1 ? `${offered[0]} only` : offered.join(", ");
  const where = [...missing.entries()].map(([platform, names]) => {
    const shown = names.slice(0, 5).join(", ");
    const more = names.length > 5 ? ` and ${names.length - 5} more` : "";
    return `${platform} ${names.length === 1 ? "node" : "nodes"} ${shown}${more}`;
  });
  return `${display} has ${has}; the pods can land on ${where.join(" and ")}`;
}
