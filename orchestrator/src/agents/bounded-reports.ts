// Bounds on what an agent reports, applied before anything is stored or forwarded: an agent is
// trusted with its own commands only, and even then its text and lists must not be able to bloat
// the store or the answers built from it (a 4 MB progress message once made GetDeployment fail).
// Text is truncated with a visible marker; list entries beyond the bound are dropped; images must
// be valid image references and container names DNS labels, or the entry is dropped.
import { parseImageReference } from "@k8sdeploy/proto/contract/image-ref.js";
import {
  MAX_DESCRIBE_ITEMS,
  MAX_IMAGE_LENGTH,
  MAX_REPORTED_IMAGES,
  MAX_REPORTED_MESSAGE_LENGTH,
} from "@k8sdeploy/proto/contract/limits.js";
import { validateDns1123Label, validateDns1123Subdomain } from "@k8sdeploy/proto/contract/names.js";
import type { CommandProgress, CommandResult, DescribeReply } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { ContainerImage, Failure, Workload } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

const NAME_LIMIT = 253;

/** `text` cut to `max` characters, ending with `… [truncated N characters]` when it was longer. */
export function truncate(text: string, max = MAX_REPORTED_MESSAGE_LENGTH): string {
  if (text.length <= max) return text;
  const marker = ` … [truncated ${text.length - max} characters]`;
  return text.slice(0, Math.max(0, max - marker.length)) + marker;
}

export interface Bounded<T> {
  value: T;
  /** What was dropped, for the log (never the dropped content itself beyond a short preview). */
  dropped: string[];
}

function preview(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
}

/** Valid image entries (at most MAX_REPORTED_IMAGES); the rest are named in `dropped`. */
export function boundImages(images: readonly ContainerImage[], field: string, dropped: string[]): ContainerImage[] {
  const out: ContainerImage[] = [];
  for (const [i, c] of images.entries()) {
    if (out.length >= MAX_REPORTED_IMAGES) {
      dropped.push(`${field}: ${images.length - i} entries beyond ${MAX_REPORTED_IMAGES}`);
      break;
    }
    if (validateDns1123Label(c.container, "container") !== undefined) {
      dropped.push(`${field}[${i}]: container ${preview(c.container)} is not a container name`);
      continue;
    }
    try {
      parseImageReference(c.image);
    } catch {
      dropped.push(`${field}[${i}]: ${preview(c.image)} is not an image reference`);
      continue;
    }
    out.push({ container: c.container, image: c.image, init: c.init });
  }
  return out;
}

const DIGEST = /^sha(256:[a-f0-9]{64}|384:[a-f0-9]{96}|512:[a-f0-9]{128})$/;

/** A reported image digest (`sha256:…`), or "" when it is not one. */
export function boundDigest(digest: string, dropped: string[]): string {
  if (digest === "" || DIGEST.test(digest)) return digest;
  dropped.push(`resolved_digest: ${preview(digest)} is not a digest`);
  return "";
}

function boundFailure(failure: Failure | undefined): Failure | undefined {
  return failure && { reason: failure.reason, message: truncate(failure.message) };
}

export function boundProgress(p: CommandProgress): Bounded<CommandProgress> {
  const dropped: string[] = [];
  const value: CommandProgress = {
    ...p,
    message: truncate(p.message),
    previousImages: boundImages(p.previousImages, "previous_images", dropped),
    appliedImages: boundImages(p.appliedImages, "applied_images", dropped),
    resolvedDigest: boundDigest(p.resolvedDigest, dropped),
  };
  return { value, dropped };
}

export function boundResult(r: CommandResult): Bounded<CommandResult> {
  const dropped: string[] = [];
  const value: CommandResult = {
    ...r,
    message: truncate(r.message),
    failure: boundFailure(r.failure),
    previousImages: boundImages(r.previousImages, "previous_images", dropped),
    appliedImages: boundImages(r.appliedImages, "applied_images", dropped),
    resolvedDigest: boundDigest(r.resolvedDigest, dropped),
  };
  return { value, dropped };
}

function validName(name: string, subdomain: boolean): boolean {
  return (
    name.length <= NAME_LIMIT &&
    (subdomain ? validateDns1123Subdomain(name, "name") : validateDns1123Label(name, "name")) === undefined
  );
}

export function boundDescribeReply(reply: DescribeReply): Bounded<DescribeReply> {
  const dropped: string[] = [];
  const namespaces = reply.namespaces.filter((n) => validName(n.name, false));
  if (namespaces.length < reply.namespaces.length) {
    dropped.push(`namespaces: ${reply.namespaces.length - namespaces.length} entries with invalid names`);
  }
  const workloads: Workload[] = [];
  for (const [i, w] of reply.workloads.entries()) {
    if (!validName(w.name, true) || !validName(w.namespace, false)) {
      dropped.push(`workloads[${i}]: invalid name ${preview(w.name)}`);
      continue;
    }
    // What the cluster runs is shown as it is (Kubernetes accepts images this parser would not),
    // only bounded.
    workloads.push({
      ...w,
      containers: w.containers
        .filter((c) => validateDns1123Label(c.container, "container") === undefined)
        .slice(0, MAX_REPORTED_IMAGES)
        .map((c) => ({ container: c.container, image: truncate(c.image, MAX_IMAGE_LENGTH), init: c.init })),
      lastDeploymentId: w.lastDeploymentId.slice(0, 64),
    });
  }
  if (namespaces.length > MAX_DESCRIBE_ITEMS) dropped.push(`namespaces: beyond ${MAX_DESCRIBE_ITEMS}`);
  if (workloads.length > MAX_DESCRIBE_ITEMS) dropped.push(`workloads: beyond ${MAX_DESCRIBE_ITEMS}`);
  const value: DescribeReply = {
    commandId: reply.commandId,
    namespaces: namespaces.slice(0, MAX_DESCRIBE_ITEMS).map((n) => ({ ...n, phase: n.phase.slice(0, 32) })),
    workloads: workloads.slice(0, MAX_DESCRIBE_ITEMS),
    error: boundFailure(reply.error),
  };
  return { value, dropped };
}
