// How the CLI shows one deployment: its fields, its origin and audit trail, its timeline.

import type { Deployment, DeploymentEvent } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { FailureReason, workloadKindToJSON } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { deploymentStateName, formatTime, printFields, printTable } from "./output.js";

/** `deployment/web`, `statefulset/db`. */
export function targetName(d: Deployment): string {
  const kind = workloadKindToJSON(d.kind)
    .replace(/^WORKLOAD_KIND_/, "")
    .replaceAll("_", "")
    .toLowerCase();
  return `${kind}/${d.workload}`;
}

function reasonName(reason: FailureReason): string {
  return (FailureReason[reason] ?? "").replace(/^FAILURE_REASON_/, "");
}

/** Who let the deployment in: a deploy key, a trust policy with the token's claims, or an admin. */
export function requestedBy(d: Deployment): string {
  if (d.trustPolicyId) {
    const c = d.oidcClaims;
    const claims = c
      ? ` (${c.repository}@${c.ref}${c.environment ? `, environment ${c.environment}` : ""}${c.actor ? `, by ${c.actor}` : ""})`
      : "";
    return `GitHub OIDC via trust policy ${d.trustPolicyId}${claims}`;
  }
  if (d.keyId) return `deploy key ${d.keyId}`;
  return d.rollbackOf ? `an admin (rollback of ${d.rollbackOf})` : "an admin";
}

export function eventLine(event: DeploymentEvent): string {
  const failure = event.failure && !event.message.includes(event.failure.message) ? ` (${event.failure.message})` : "";
  return `[${formatTime(event.time)}] ${deploymentStateName(event.state)}${event.message ? `: ${event.message}` : ""}${failure}`;
}

export function printDeployment(d: Deployment, events: DeploymentEvent[]): void {
  const origin = d.origin;
  const fields: [string, string][] = [
    ["ID", d.id],
    ["STATE", deploymentStateName(d.state)],
    ["AGENT", d.agentId],
    ["TARGET", `${d.namespace}/${targetName(d)}`],
    ["IMAGE", d.image],
    ["CONTAINERS", d.containers.length > 0 ? d.containers.join(",") : "*"],
    ["CREATED", formatTime(d.createdAt)],
    ["UPDATED", formatTime(d.updatedAt)],
    ["REQUESTED BY", requestedBy(d)],
  ];
  if (origin?.repository) {
    fields.push(["ORIGIN", `${origin.repository}@${origin.sha.slice(0, 12) || "?"} ${origin.ref}`.trim()]);
  }
  if (origin?.runUrl) fields.push(["RUN", origin.runUrl]);
  // The failure text once: as FAILURE when there is one, else the latest message.
  if (d.failure) fields.push(["FAILURE", `${reasonName(d.failure.reason)}: ${d.failure.message || d.message}`]);
  else if (d.message) fields.push(["MESSAGE", d.message]);
  if (d.previousImages.length > 0) {
    fields.push(["PREVIOUS", d.previousImages.map((c) => `${c.container}=${c.image}`).join(", ")]);
  }
  if (d.supersededBy) fields.push(["SUPERSEDED BY", d.supersededBy]);
  printFields(fields);
  if (events.length > 0) {
    process.stdout.write("\n");
    printTable(
      ["SEQ", "TIME", "STATE", "MESSAGE"],
      events.map((e) => [String(e.seq), formatTime(e.time), deploymentStateName(e.state), e.message]),
    );
  }
}
