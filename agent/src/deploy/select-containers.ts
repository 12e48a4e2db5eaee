// Which containers a deploy changes: the named ones (init containers included), or, when none is
// named, every container and init container whose image is from the new image's repository.

import { parseImageReference, sameRepository } from "@k8sdeploy/proto/contract/image-ref.js";
import { type ContainerImage, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1PodSpec } from "@kubernetes/client-node";
import { ExecutorError } from "../executor.js";

/** Containers then init containers of a pod spec, with their current images. */
export function podContainers(spec: Pick<V1PodSpec, "containers" | "initContainers"> | undefined): ContainerImage[] {
  return [
    ...(spec?.containers ?? []).map((c) => ({ container: c.name, image: c.image ?? "", init: false })),
    ...(spec?.initContainers ?? []).map((c) => ({ container: c.name, image: c.image ?? "", init: true })),
  ];
}

/** `web (nginx:1.25), init container migrate (app:1)` */
export function listContainers(containers: ContainerImage[]): string {
  if (containers.length === 0) return "no containers";
  return containers
    .map((c) => `${c.init ? "init container " : ""}${c.container} (${c.image || "no image"})`)
    .join(", ");
}

/**
 * Returns the selected containers with their current images (the deploy's previous images).
 * Throws ExecutorError CONTAINER_NOT_FOUND when a named container is missing or nothing matches;
 * the message lists the workload's containers and images. `where` names the workload, e.g.
 * `deployment "web" in namespace "default"`.
 */
export function selectContainers(
  spec: Pick<V1PodSpec, "containers" | "initContainers"> | undefined,
  requested: readonly string[],
  newImage: string,
  where: string,
): ContainerImage[] {
  const all = podContainers(spec);
  if (requested.length > 0) {
    const wanted = [...new Set(requested)];
    const missing = wanted.filter((name) => !all.some((c) => c.container === name));
    if (missing.length > 0) {
      const names = missing.map((n) => JSON.stringify(n)).join(", ");
      throw new ExecutorError(
        FailureReason.FAILURE_REASON_CONTAINER_NOT_FOUND,
        `${missing.length === 1 ? "container" : "containers"} ${names} not found in ${where}; it has: ${listContainers(all)}`,
      );
    }
    // Keep the workload's order (containers, then init containers).
    return all.filter((c) => wanted.includes(c.container));
  }
  const ref = parseImageReference(newImage);
  const repository = ref.repository;
  const matching = all.filter((c) => sameRepository(c.image, ref));
  if (matching.length === 0) {
    throw new ExecutorError(
      FailureReason.FAILURE_REASON_CONTAINER_NOT_FOUND,
      `no container of ${where} runs an image of repository ${repository}; it has: ${listContainers(all)}; name the container(s) to change explicitly`,
    );
  }
  return matching;
}
