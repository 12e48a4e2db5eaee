// Annotations K8sDeploy records on the workloads it changes: what was deployed, from where, what
// it replaced (for rollback and for redelivered commands), and whether it was rolled back.
import { MAX_ORIGIN_FIELD_LENGTH } from "@k8sdeploy/proto/contract/limits.js";
import type { ContainerImage, Failure, Origin } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

/** Deployment id of the last change; on the workload and on its pod template (so pods carry it). */
export const ANNOTATION_DEPLOYMENT_ID = "k8sdeploy.dev/deployment-id";
/**
 * Creation time (RFC 3339, from the command) of the last change: a deploy created before it is
 * never applied (it would revert a newer one) and ends SUPERSEDED.
 */
export const ANNOTATION_DEPLOYMENT_CREATED_AT = "k8sdeploy.dev/deployment-created-at";
/** JSON {repository, sha, ref, actor, runUrl, workflow} of the last change. */
export const ANNOTATION_ORIGIN = "k8sdeploy.dev/origin";
/** JSON [{container, image, init}]: images of the changed containers before the last change. */
export const ANNOTATION_PREVIOUS_IMAGES = "k8sdeploy.dev/previous-images";
/** Pod template's deployment-id annotation before the last change ("" when it had none). */
export const ANNOTATION_PREVIOUS_TEMPLATE_DEPLOYMENT_ID = "k8sdeploy.dev/previous-template-deployment-id";
/** JSON {deploymentId, reason, message}: the last change failed and its previous images were restored. */
export const ANNOTATION_ROLLED_BACK = "k8sdeploy.dev/rolled-back";
/** Shown by `kubectl rollout history`. */
export const ANNOTATION_CHANGE_CAUSE = "kubernetes.io/change-cause";

function clip(s: string): string {
  return s.length > MAX_ORIGIN_FIELD_LENGTH ? s.slice(0, MAX_ORIGIN_FIELD_LENGTH) : s;
}

/** JSON of the origin's non-empty fields (each clipped); undefined when there is none. */
export function originAnnotation(origin: Origin | undefined): string | undefined {
  if (!origin) return undefined;
  const out: Record<string, string> = {};
  for (const key of ["repository", "sha", "ref", "actor", "runUrl", "workflow"] as const) {
    const v = origin[key];
    if (typeof v === "string" && v.length > 0) out[key] = clip(v);
  }
  return Object.keys(out).length > 0 ? JSON.stringify(out) : undefined;
}

/** `k8sdeploy dep_123: owner/repo@abc1234 by actor`, or `k8sdeploy dep_123: image nginx:1.26` without origin. */
export function changeCause(deploymentId: string, image: string, origin: Origin | undefined): string {
  const repo = clip(origin?.repository ?? "");
  const sha = (origin?.sha ?? "").slice(0, 7);
  const actor = clip(origin?.actor ?? "");
  let source = repo && sha ? `${repo}@${sha}` : repo || (sha ? `commit ${sha}` : "");
  if (actor) source = source ? `${source} by ${actor}` : `by ${actor}`;
  return `k8sdeploy ${deploymentId}: ${source || `image ${image}`}`;
}

export function previousImagesAnnotation(images: ContainerImage[]): string {
  return JSON.stringify(images.map((c) => ({ container: c.container, image: c.image, init: c.init })));
}

/** Parses ANNOTATION_PREVIOUS_IMAGES; undefined when missing or malformed. */
export function parsePreviousImages(value: string | undefined): ContainerImage[] | undefined {
  if (!value) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    if (!Array.isArray(parsed)) return undefined;
    const out: ContainerImage[] = [];
    for (const x of parsed) {
      if (!x || typeof x !== "object") return undefined;
      const { container, image, init } = x as Record<string, unknown>;
      if (typeof container !== "string" || typeof image !== "string") return undefined;
      out.push({ container, image, init: init === true });
    }
    return out;
  } catch {
    return undefined;
  }
}

export interface RolledBackRecord {
  deploymentId: string;
  failure: Failure;
}

export function rolledBackAnnotation(deploymentId: string, failure: Failure): string {
  return JSON.stringify({ deploymentId, reason: failure.reason, message: failure.message.slice(0, 2000) });
}

export function parseRolledBack(value: string | undefined): RolledBackRecord | undefined {
  if (!value) return undefined;
  try {
    const x = JSON.parse(value) as Record<string, unknown>;
    if (typeof x.deploymentId !== "string" || typeof x.reason !== "number" || typeof x.message !== "string") {
      return undefined;
    }
    return { deploymentId: x.deploymentId, failure: { reason: x.reason, message: x.message } };
  } catch {
    return undefined;
  }
}
