// Does a verified ID token satisfy a trust policy? Every condition the policy sets must hold.
import type { TrustPolicyRecord } from "../store/store.js";
import type { VerifiedToken } from "./oidc-verifier.js";

/** `refs/tags/v*` matches every value starting with `refs/tags/v`; anything else must be equal. */
export function patternMatches(pattern: string, value: string): boolean {
  if (pattern.endsWith("*")) return value.startsWith(pattern.slice(0, -1));
  return value === pattern;
}

const shown = (value: string) => (value === "" ? "(none)" : JSON.stringify(value));

/** Why the token does not satisfy the policy, or undefined when it does. */
export function policyMismatch(policy: TrustPolicyRecord, token: VerifiedToken): string | undefined {
  if (policy.deletedAt) return "the policy was deleted";
  if (policy.issuer.replace(/\/+$/, "") !== token.issuer) return `it trusts issuer ${policy.issuer}`;
  if (policy.repository.toLowerCase() !== token.repository.toLowerCase()) {
    return `it is for repository ${policy.repository}`;
  }
  if (!token.audiences.includes(policy.audience)) {
    return `it requires audience ${JSON.stringify(policy.audience)}, the token has ${token.audiences.map((a) => JSON.stringify(a)).join(", ") || "none"}`;
  }
  if (policy.repositoryId !== "" && policy.repositoryId !== token.repositoryId) {
    return `it requires repository_id ${policy.repositoryId}, the token has ${shown(token.repositoryId)}`;
  }
  if (policy.ref !== "" && !patternMatches(policy.ref, token.ref)) {
    return `it requires ref ${JSON.stringify(policy.ref)}, the token has ${shown(token.ref)}`;
  }
  if (policy.environment !== "" && policy.environment !== token.environment) {
    return `it requires environment ${JSON.stringify(policy.environment)}, the token has ${shown(token.environment)}`;
  }
  if (policy.workflowRef !== "" && !patternMatches(policy.workflowRef, token.workflowRef)) {
    return `it requires workflow_ref ${JSON.stringify(policy.workflowRef)}, the token has ${shown(token.workflowRef)}`;
  }
  return undefined;
}
