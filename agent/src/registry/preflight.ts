// Image pre-flight, before a deploy patches anything: resolve the image against its registry with
// the credentials the cluster holds for the workload, fail fast when the tag does not exist, the
// credentials are refused, or the image has no variant for a node the pods can land on; report the
// digest; optionally pin it. A registry that cannot be reached only warns unless the agent is strict.
import type { DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState, type Failure, FailureReason } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { V1Node, V1PodSpec } from "@kubernetes/client-node";
import { ANNOTATION_DEPLOYMENT_ID } from "../deploy/annotations.js";
import { getWorkload, podTemplate } from "../deploy/workload.js";
import type { Progress, Result } from "../executor.js";
import { apiErrorInfo, type KubeClients } from "../kube.js";
import { RegistryClient, type RegistryClientOptions, RegistryError, type ResolvedImage } from "./client.js";
import { type CredentialLookup, lookUpCredentials, type RegistryCredential } from "./credentials.js";
import type { PreflightMode } from "./modes.js";
import { checkPlatforms, mismatchMessage, platformName } from "./platforms.js";
import { pinnedImage, type RegistryImage, registryImage } from "./reference.js";

export interface PreflightOptions {
  /** lenient (default): an unreachable registry only warns; strict: it fails the deploy; off: no pre-flight. */
  mode?: PreflightMode;
  /** The agent's own dockerconfigjson secret (K8SDEPLOY_REGISTRY_SECRET). */
  agentSecret?: { namespace: string; name: string } | undefined;
  /** Whole pre-flight budget in ms (default 10 000). */
  timeoutMs?: number;
  /** Registry HTTP settings (CA, insecure registries, connect timeout); or a ready client. */
  registry?: RegistryClientOptions;
  client?: RegistryClient;
}

export type PreflightOutcome =
  /** Go ahead with `command` (its image pinned when asked). */
  | { ok: true; command: DeployCommand }
  /** Stop: nothing was patched. */
  | { ok: false; result: Result };

export type Preflight = (
  clients: KubeClients,
  command: DeployCommand,
  emit: (p: Progress) => void,
) => Promise<PreflightOutcome>;

/** Creates the pre-flight step of the deploy executor (one registry client, kept alive between deploys). */
export function createPreflight(options: PreflightOptions = {}): Preflight {
  const mode = options.mode ?? "lenient";
  let client = options.client;
  return async (clients, command, emit) => {
    if (mode === "off") {
      if (!command.pinDigest) return { ok: true, command };
      return stop(
        FailureReason.FAILURE_REASON_INVALID_COMMAND,
        "pin-digest needs the image pre-flight, which is off on this agent (K8SDEPLOY_PREFLIGHT=off)",
      );
    }
    client ??= new RegistryClient(options.registry);
    return run(client, clients, command, emit, { ...options, mode });
  };
}

function stop(reason: FailureReason, message: string, resolvedDigest = ""): PreflightOutcome {
  const failure: Failure = { reason, message };
  return {
    ok: false,
    result: {
      state: DeploymentState.DEPLOYMENT_STATE_FAILED,
      failure,
      message: `${message}; nothing was changed`,
      previousImages: [],
      appliedImages: [],
      resolvedDigest,
    },
  };
}

async function run(
  registry: RegistryClient,
  clients: KubeClients,
  command: DeployCommand,
  emit: (p: Progress) => void,
  options: PreflightOptions & { mode: PreflightMode },
): Promise<PreflightOutcome> {
  const say = (message: string, resolvedDigest = "") =>
    emit({
      state: DeploymentState.DEPLOYMENT_STATE_DELIVERED,
      message,
      previousImages: [],
      appliedImages: [],
      resolvedDigest,
    });

  // The workload: for its pull secrets, service account and placement. If it cannot be read, the
  // deploy reports that itself (WORKLOAD_NOT_FOUND, PERMISSION_DENIED) without a pre-flight.
  let spec: V1PodSpec | undefined;
  try {
    const obj = await getWorkload(clients.apps, command.kind, command.namespace, command.workload);
    spec = podTemplate(obj)?.spec;
    if (obj.metadata?.annotations?.[ANNOTATION_DEPLOYMENT_ID] === command.deploymentId) {
      // A redelivery of a command already applied: the image was checked (and maybe pinned) then;
      // resolving the tag again could pin a different digest.
      const applied = [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]
        .map((c) => c.image ?? "")
        .find((i) => command.pinDigest && i.startsWith(`${command.image}@`));
      return { ok: true, command: applied ? { ...command, image: applied } : command };
    }
  } catch {
    return { ok: true, command };
  }

  const image = registryImage(command.image);
  const lookup = await lookUpCredentials(image, {
    core: clients.core,
    namespace: command.namespace,
    podSpec: spec,
    agentSecret: options.agentSecret,
  });
  const secrets = lookup.credentials;
  const redact = (text: string) => redactCredentials(text, secrets);
  const signal = AbortSignal.timeout(options.timeoutMs ?? 10_000);

  let resolved: ResolvedImage | undefined;
  let used: RegistryCredential | undefined;
  const refusals: string[] = [];
  try {
    if (secrets.length === 0) {
      resolved = await registry.resolve(image, { signal });
    } else {
      for (const credential of secrets) {
        try {
          resolved = await registry.resolve(image, { credential, signal });
          used = credential;
          break;
        } catch (err) {
          if (!(err instanceof RegistryError) || err.kind !== "unauthorized") throw err;
          refusals.push(`secret ${credential.secret} (${credential.source}): ${err.message}`);
        }
      }
    }
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    if (err.kind === "not-found") {
      return stop(FailureReason.FAILURE_REASON_IMAGE_NOT_FOUND, redact(`image pre-flight: ${err.message}`));
    }
    if (err.kind === "unauthorized") {
      return stop(
        FailureReason.FAILURE_REASON_REGISTRY_UNAUTHORIZED,
        redact(noCredentialsMessage(image, lookup, err.message)),
      );
    }
    const why = redact(`image pre-flight: ${image.display}: ${err.message}`);
    if (options.mode === "strict") {
      return stop(FailureReason.FAILURE_REASON_REGISTRY_UNREACHABLE, `${why} (K8SDEPLOY_PREFLIGHT=strict)`);
    }
    if (command.pinDigest) {
      return stop(
        FailureReason.FAILURE_REASON_REGISTRY_UNREACHABLE,
        `${why}; cannot pin the digest without the registry`,
      );
    }
    say(`warning: ${why}; deploying without the image check (K8SDEPLOY_PREFLIGHT=strict would stop here)`);
    return { ok: true, command };
  }
  if (resolved === undefined) {
    return stop(
      FailureReason.FAILURE_REASON_REGISTRY_UNAUTHORIZED,
      redact(
        `image pre-flight: registry ${image.registry} refused every credential the agent has for ${image.display}: ${refusals.join("; ")}`,
      ),
    );
  }

  const { digest } = resolved;
  const platforms = resolved.platforms.map((p) => platformName(p)).join(", ") || "platform unknown";
  const via = used ? `with secret ${used.secret}` : "anonymously";
  say(`image pre-flight: ${image.display} is ${digest} (${platforms}; resolved ${via})`, digest);

  // Platform check against the nodes the pods can land on.
  if (resolved.platforms.length > 0) {
    let nodes: V1Node[] | undefined;
    try {
      nodes = (await clients.core.listNode()).items;
    } catch (err) {
      const info = apiErrorInfo(err);
      say(
        `warning: platform check skipped: ${info.code === 403 ? "the agent may not list nodes (ClusterRole k8sdeploy-agent-nodes)" : `listing nodes failed: ${info.message}`}`,
        digest,
      );
    }
    if (nodes !== undefined) {
      const verdict = checkPlatforms(resolved.platforms, nodes, spec);
      if (verdict.missing.size > 0) {
        return stop(
          FailureReason.FAILURE_REASON_PLATFORM_MISMATCH,
          mismatchMessage(image.display, resolved.platforms, verdict.missing),
          digest,
        );
      }
    }
  }

  if (!command.pinDigest) return { ok: true, command };
  return { ok: true, command: { ...command, image: pinnedImage(command.image, digest) } };
}

function noCredentialsMessage(image: RegistryImage, lookup: CredentialLookup, answer: string): string {
  const checked =
    lookup.checked.length > 0 ? `checked ${lookup.checked.join(", ")}` : "the workload has no imagePullSecrets";
  const problems = lookup.problems.length > 0 ? `; ${lookup.problems.join("; ")}` : "";
  return `image pre-flight: ${answer}; none of the secrets the agent can use has credentials for registry ${image.registry} (${checked}${problems})`;
}

/** Defence in depth: a registry echoing a credential must not get it into a message. */
function redactCredentials(text: string, credentials: readonly RegistryCredential[]): string {
  let out = text;
  for (const c of credentials) {
    for (const secret of [c.password, Buffer.from(`${c.username}:${c.password}`).toString("base64")]) {
      if (secret.length >= 4) out = out.split(secret).join("[REDACTED]");
    }
  }
  return out;
}
