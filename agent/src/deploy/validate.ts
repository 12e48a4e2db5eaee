// Defence in depth: the orchestrator validates commands, the agent checks them again before
// touching the cluster.
import { InvalidImageReferenceError, parseImageReference } from "@k8sdeploy/proto/contract/image-ref.js";
import { MAX_CONTAINERS, MAX_TIMEOUT_SECONDS } from "@k8sdeploy/proto/contract/limits.js";
import { validateDns1123Label, validateDns1123Subdomain } from "@k8sdeploy/proto/contract/names.js";
import type { DeployCommand } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { kindInfo } from "./workload.js";

const DEPLOYMENT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** Returns what is wrong with an image reference, or undefined. */
export function imageProblem(image: string): string | undefined {
  try {
    parseImageReference(image);
    return undefined;
  } catch (err) {
    if (err instanceof InvalidImageReferenceError) return err.message;
    throw err;
  }
}

/** Every problem of a deploy command, joined with "; "; undefined when it is valid. */
export function validateDeployCommand(c: DeployCommand): string | undefined {
  const problems: string[] = [];
  if (!DEPLOYMENT_ID.test(c.deploymentId ?? "")) {
    problems.push(
      `deployment id ${JSON.stringify((c.deploymentId ?? "").slice(0, 140))} must be 1-128 characters of letters, digits, '_', '.', ':' and '-'`,
    );
  }
  const ns = validateDns1123Label(c.namespace, "namespace");
  if (ns) problems.push(ns);
  const wl = validateDns1123Subdomain(c.workload, "workload");
  if (wl) problems.push(wl);
  if (!kindInfo(c.kind))
    problems.push(`workload kind ${c.kind} is not supported (Deployment, StatefulSet or DaemonSet)`);
  const img = imageProblem(c.image);
  if (img) problems.push(img);
  if (c.containers.length > MAX_CONTAINERS) {
    problems.push(`${c.containers.length} containers named; at most ${MAX_CONTAINERS} are allowed`);
  }
  for (const name of c.containers.slice(0, MAX_CONTAINERS)) {
    const p = validateDns1123Label(name, "container");
    if (p) problems.push(p);
  }
  if (c.timeoutSeconds > MAX_TIMEOUT_SECONDS) {
    problems.push(`timeout_seconds ${c.timeoutSeconds} is above the maximum of ${MAX_TIMEOUT_SECONDS}`);
  }
  return problems.length > 0 ? problems.join("; ") : undefined;
}
