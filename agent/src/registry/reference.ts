// Where an image reference lives, in the distribution spec's terms: the registry host to talk to,
// the repository path inside it, and the tag or digest to resolve.
import { parseImageReference } from "@k8sdeploy/proto/contract/image-ref.js";

export interface RegistryImage {
  /** As written in the image reference's domain, e.g. `ghcr.io`, `localhost:5000`, `docker.io`. */
  registry: string;
  /** Host (and port) the HTTP requests go to: `docker.io` is served by `registry-1.docker.io`. */
  apiHost: string;
  /** Repository path inside the registry: `acme/web`, `library/nginx`. */
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
  /** The tag or digest asked for in the manifest URL (the digest wins, as runtimes do). */
  reference: string;
  /** For messages: `ghcr.io/acme/web:2`. */
  display: string;
}

const DOCKER_HUB = "docker.io";
const DOCKER_HUB_API = "registry-1.docker.io";

export function registryImage(image: string): RegistryImage {
  const ref = parseImageReference(image);
  const slash = ref.repository.indexOf("/");
  const registry = ref.repository.slice(0, slash);
  const repository = ref.repository.slice(slash + 1);
  const tag = ref.digest === undefined ? (ref.tag ?? "latest") : ref.tag;
  const reference = ref.digest ?? tag ?? "latest";
  const display = `${ref.repository}${tag !== undefined ? `:${tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
  return {
    registry,
    apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
    repository,
    tag,
    digest: ref.digest,
    reference,
    display,
  };
}

/** `repo:tag@sha256:…` for an image and the digest it resolved to (an existing digest is replaced). */
export function pinnedImage(image: string, digest: string): string {
  const at = image.indexOf("@");
  return `${at === -1 ? image : image.slice(0, at)}@${digest}`;
}

/** True for `localhost`, 127.0.0.0/8 and ::1 (with or without a port): plain HTTP is allowed there. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = hostOf(registry);
  return host === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === "[::1]" || host === "::1";
}

/** The host part of `host[:port]` / `[v6]:port`, lower-cased. */
export function hostOf(registry: string): string {
  if (registry.startsWith("[")) return registry.slice(0, registry.indexOf("]") + 1).toLowerCase();
  const c = registry.lastIndexOf(":");
  return (c === -1 ? registry : registry.slice(0, c)).toLowerCase();
}
