// Registry credentials, only from the cluster, in the order the kubelet would use them: the
// workload's imagePullSecrets, then its service account's, then (not something the kubelet has) the
// agent's own secret. Secrets are kubernetes.io/dockerconfigjson (or the legacy dockercfg); entries
// are matched to the registry the way the kubelet's credential keyring matches them (host globs
// like `*.example.com`, exact port, path prefix). Nothing here is ever logged or reported except
// the secret's namespace/name.
import type { CoreV1Api, V1PodSpec } from "@kubernetes/client-node";
import { apiErrorInfo } from "../kube.js";
import type { RegistryImage } from "./reference.js";

export interface RegistryCredential {
  /** `namespace/name` of the secret, and where it came from, for messages. */
  secret: string;
  source: "imagePullSecrets" | "service account" | "agent secret";
  username: string;
  password: string;
}

export interface CredentialLookup {
  /** Matching credentials, most specific first within a secret, secrets in kubelet order. */
  credentials: RegistryCredential[];
  /** Secrets that were looked at (`namespace/name`), whether or not they matched. */
  checked: string[];
  /** Secrets that could not be used, with why (missing, forbidden, wrong type, malformed). */
  problems: string[];
}

interface DockerConfigEntry {
  auth?: string;
  username?: string;
  password?: string;
}

/** The `auths` map of a dockerconfigjson / dockercfg secret; throws on malformed JSON. */
export function parseDockerConfig(type: string | undefined, data: Record<string, string> | undefined) {
  const raw =
    type === "kubernetes.io/dockercfg" ? data?.[".dockercfg"] : (data?.[".dockerconfigjson"] ?? data?.[".dockercfg"]);
  if (raw === undefined) throw new Error("has no .dockerconfigjson key");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, "base64").toString("utf8"));
  } catch {
    throw new Error("holds no valid JSON in .dockerconfigjson");
  }
  const auths =
    type === "kubernetes.io/dockercfg" || (parsed as { auths?: unknown })?.auths === undefined
      ? parsed
      : (parsed as { auths: unknown }).auths;
  if (auths === null || typeof auths !== "object") throw new Error("has no auths object");
  return auths as Record<string, DockerConfigEntry>;
}

/** Username/password of an entry (`auth` is base64 `user:pass`), or undefined without any. */
function entryCredentials(e: DockerConfigEntry): { username: string; password: string } | undefined {
  if (typeof e.username === "string" && typeof e.password === "string" && (e.username || e.password)) {
    return { username: e.username, password: e.password };
  }
  if (typeof e.auth === "string" && e.auth !== "") {
    const decoded = Buffer.from(e.auth, "base64").toString("utf8");
    const c = decoded.indexOf(":");
    if (c > 0) return { username: decoded.slice(0, c), password: decoded.slice(c + 1) };
  }
  return undefined;
}

const DOCKER_HUB_KEYS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/**
 * How well a dockerconfig key matches the image (higher is more specific), or -1 for no match.
 * Keys may carry a scheme and a path (`https://index.docker.io/v1/`, `registry.example/team`).
 */
export function keyMatch(key: string, image: Pick<RegistryImage, "registry" | "repository">): number {
  let url: URL;
  try {
    url = new URL(key.includes("://") ? key : `https://${key}`);
  } catch {
    return -1;
  }
  const keyHost = url.hostname.toLowerCase();
  const keyPort = url.port;
  const registry = image.registry.toLowerCase();
  const [imageHost, imagePort] = splitHostPort(registry);
  if (imageHost === "docker.io") {
    // Docker Hub keys come in several spellings; the path (/v1/) is the legacy API's, not a repository.
    return DOCKER_HUB_KEYS.has(keyHost) && keyPort === "" ? 1 : -1;
  }
  if (keyPort !== imagePort) return -1;
  if (!hostGlobMatch(keyHost, imageHost)) return -1;
  const path = url.pathname.replace(/\/+$/, "");
  if (path !== "" && !`/${image.repository}`.startsWith(path)) return -1;
  return 1 + path.length;
}

function splitHostPort(hostPort: string): [string, string] {
  if (hostPort.startsWith("[")) {
    const end = hostPort.indexOf("]");
    return [hostPort.slice(0, end + 1), hostPort.slice(end + 2)];
  }
  const c = hostPort.lastIndexOf(":");
  return c === -1 ? [hostPort, ""] : [hostPort.slice(0, c), hostPort.slice(c + 1)];
}

/** Label-wise glob as the kubelet does it: `*.example.com` matches `a.example.com`, not `a.b.example.com`. */
function hostGlobMatch(glob: string, host: string): boolean {
  const g = glob.split(".");
  const h = host.split(".");
  if (g.length !== h.length) return false;
  return g.every((part, i) => {
    if (!part.includes("*")) return part === h[i];
    const re = new RegExp(`^${part.split("*").map(escapeRegExp).join("[^.]*")}$`);
    return re.test(h[i] ?? "");
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Matching credentials of one parsed secret, most specific key first. */
export function matchingCredentials(
  auths: Record<string, DockerConfigEntry>,
  image: Pick<RegistryImage, "registry" | "repository">,
  secret: string,
  source: RegistryCredential["source"],
): RegistryCredential[] {
  return Object.entries(auths)
    .map(([key, entry]) => ({ score: keyMatch(key, image), creds: entryCredentials(entry ?? {}) }))
    .filter((m) => m.score >= 0 && m.creds !== undefined)
    .sort((a, b) => b.score - a.score)
    .map((m) => ({ secret, source, username: m.creds!.username, password: m.creds!.password }));
}

export interface CredentialSources {
  core: CoreV1Api;
  namespace: string;
  podSpec: V1PodSpec | undefined;
  /** The agent's own secret (K8SDEPLOY_REGISTRY_SECRET) in its namespace, if configured. */
  agentSecret?: { namespace: string; name: string } | undefined;
}

/** Reads the secrets that may hold credentials for `image` and returns the matching ones. */
export async function lookUpCredentials(image: RegistryImage, sources: CredentialSources): Promise<CredentialLookup> {
  const { core, namespace, podSpec } = sources;
  const out: CredentialLookup = { credentials: [], checked: [], problems: [] };
  const wanted: { namespace: string; name: string; source: RegistryCredential["source"] }[] = [];
  for (const ref of podSpec?.imagePullSecrets ?? []) {
    if (ref.name) wanted.push({ namespace, name: ref.name, source: "imagePullSecrets" });
  }
  const serviceAccount = podSpec?.serviceAccountName || podSpec?.serviceAccount || "default";
  try {
    const sa = await core.readNamespacedServiceAccount({ name: serviceAccount, namespace });
    for (const ref of sa.imagePullSecrets ?? []) {
      if (ref.name) wanted.push({ namespace, name: ref.name, source: "service account" });
    }
  } catch (err) {
    const info = apiErrorInfo(err);
    out.problems.push(
      info.code === 403
        ? `the agent may not get serviceaccount "${serviceAccount}" in namespace "${namespace}" (RBAC), so its imagePullSecrets were not used`
        : `service account "${serviceAccount}" in namespace "${namespace}": ${info.code === 404 ? "not found" : info.message}`,
    );
  }
  if (sources.agentSecret) wanted.push({ ...sources.agentSecret, source: "agent secret" });

  const seen = new Set<string>();
  for (const w of wanted) {
    const id = `${w.namespace}/${w.name}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.checked.push(id);
    let secret: Awaited<ReturnType<CoreV1Api["readNamespacedSecret"]>>;
    try {
      secret = await core.readNamespacedSecret({ name: w.name, namespace: w.namespace });
    } catch (err) {
      const info = apiErrorInfo(err);
      out.problems.push(
        info.code === 404
          ? `secret ${id} not found`
          : info.code === 403
            ? `the agent may not get secret ${id} (RBAC)`
            : `secret ${id}: ${info.message}`,
      );
      continue;
    }
    if (secret.type !== "kubernetes.io/dockerconfigjson" && secret.type !== "kubernetes.io/dockercfg") {
      out.problems.push(`secret ${id} is of type ${secret.type ?? "Opaque"}, not kubernetes.io/dockerconfigjson`);
      continue;
    }
    try {
      const auths = parseDockerConfig(secret.type, secret.data);
      out.credentials.push(...matchingCredentials(auths, image, id, w.source));
    } catch (err) {
      out.problems.push(`secret ${id} ${(err as Error).message}`);
    }
  }
  return out;
}
