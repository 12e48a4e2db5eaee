// The one write path for images: a strategic merge patch that sets images by container name and
// records annotations on the workload and its pod template. Used by deploy, rollback and the
// agent's self-update.

import type { DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { ContainerImage, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { AppsV1Api } from "@kubernetes/client-node";
import {
  ANNOTATION_CHANGE_CAUSE,
  ANNOTATION_DEPLOYMENT_CREATED_AT,
  ANNOTATION_DEPLOYMENT_ID,
  ANNOTATION_ORIGIN,
  ANNOTATION_PREVIOUS_IMAGES,
  ANNOTATION_PREVIOUS_TEMPLATE_DEPLOYMENT_ID,
  ANNOTATION_ROLLED_BACK,
  changeCause,
  originAnnotation,
  previousImagesAnnotation,
} from "./annotations.js";
import { patchWorkload, type WorkloadObject } from "./workload.js";

export interface ImagePatch {
  /** Containers to change and their new images. */
  images: readonly ContainerImage[];
  /** Annotations on the workload's metadata; null removes one. */
  workloadAnnotations?: Record<string, string | null>;
  /** Annotations on the pod template (copied to new pods); null removes one. */
  templateAnnotations?: Record<string, string | null>;
  /** When set, the API rejects the patch with 409 if the workload changed since it was read. */
  resourceVersion?: string;
}

/** The strategic-merge-patch body: containers and initContainers merge by name. */
export function buildImagePatch(p: ImagePatch): Record<string, unknown> {
  const containers = p.images.filter((c) => !c.init).map((c) => ({ name: c.container, image: c.image }));
  const initContainers = p.images.filter((c) => c.init).map((c) => ({ name: c.container, image: c.image }));
  const podSpec: Record<string, unknown> = {};
  if (containers.length > 0) podSpec.containers = containers;
  if (initContainers.length > 0) podSpec.initContainers = initContainers;
  const template: Record<string, unknown> = { spec: podSpec };
  if (p.templateAnnotations && Object.keys(p.templateAnnotations).length > 0) {
    template.metadata = { annotations: p.templateAnnotations };
  }
  const metadata: Record<string, unknown> = {};
  if (p.resourceVersion) metadata.resourceVersion = p.resourceVersion;
  if (p.workloadAnnotations && Object.keys(p.workloadAnnotations).length > 0) {
    metadata.annotations = p.workloadAnnotations;
  }
  const body: Record<string, unknown> = { spec: { template } };
  if (Object.keys(metadata).length > 0) body.metadata = metadata;
  return body;
}

export function applyImagePatch(
  apps: AppsV1Api,
  kind: WorkloadKind,
  namespace: string,
  name: string,
  p: ImagePatch,
): Promise<WorkloadObject> {
  return patchWorkload(apps, kind, namespace, name, buildImagePatch(p));
}

/**
 * The patch of a deploy: new images, the deployment id on the workload and on the pod template
 * (so new pods can be told apart), origin, change-cause, and what is needed to undo it.
 */
export function deployPatch(
  command: Pick<DeployCommand, "deploymentId" | "image" | "origin">,
  previous: ContainerImage[],
  previousTemplateDeploymentId: string | undefined,
  resourceVersion: string | undefined,
  createdAt?: Date,
): ImagePatch {
  const workloadAnnotations: Record<string, string | null> = {
    [ANNOTATION_DEPLOYMENT_ID]: command.deploymentId,
    [ANNOTATION_DEPLOYMENT_CREATED_AT]: createdAt ? createdAt.toISOString() : null,
    [ANNOTATION_ORIGIN]: originAnnotation(command.origin) ?? null,
    [ANNOTATION_CHANGE_CAUSE]: changeCause(command.deploymentId, command.image, command.origin),
    [ANNOTATION_PREVIOUS_IMAGES]: previousImagesAnnotation(previous),
    [ANNOTATION_PREVIOUS_TEMPLATE_DEPLOYMENT_ID]: previousTemplateDeploymentId ?? "",
    [ANNOTATION_ROLLED_BACK]: null,
  };
  const p: ImagePatch = {
    images: previous.map((c) => ({ ...c, image: command.image })),
    workloadAnnotations,
    templateAnnotations: { [ANNOTATION_DEPLOYMENT_ID]: command.deploymentId },
  };
  if (resourceVersion) p.resourceVersion = resourceVersion;
  return p;
}
