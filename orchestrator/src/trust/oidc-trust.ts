// From a presented ID token to the trust policies it satisfies: verify it (oidc-verifier.ts),
// match it against the stored policies (policy-match.ts), and accept each token once within its
// lifetime (an atomic one-time marker in the store, shared by every replica). The token is
// consumed only once it matched a policy; a replay is refused before anything else happens.
import { createHash } from "node:crypto";
import type { OidcClaims } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { permissionDenied, unauthenticated } from "../rpc/rpc-error.js";
import type { Store, TrustPolicyRecord } from "../store/store.js";
import { CLOCK_SKEW_SECONDS, MAX_TOKEN_AGE_SECONDS, type OidcVerifier, type VerifiedToken } from "./oidc-verifier.js";
import { policyMismatch } from "./policy-match.js";

/** A caller authenticated by a GitHub Actions ID token. */
export interface OidcIdentity {
  /**
   * The active policies the token satisfies (at least one). Which one applies depends on the call:
   * Deploy picks the one whose agent and allowlists fit the target, reads the one whose agent and
   * allowlists cover the deployment.
   */
  policies: TrustPolicyRecord[];
  claims: OidcClaims;
}

export function claimsOf(token: VerifiedToken): OidcClaims {
  return {
    issuer: token.issuer,
    subject: token.subject,
    repository: token.repository,
    repositoryId: token.repositoryId,
    repositoryOwner: token.repositoryOwner,
    ref: token.ref,
    sha: token.sha,
    environment: token.environment,
    workflowRef: token.workflowRef,
    jobWorkflowRef: token.jobWorkflowRef,
    actor: token.actor,
    runId: token.runId,
    runAttempt: token.runAttempt,
    eventName: token.eventName,
    tokenId: token.tokenId,
    issuedAt: token.issuedAt,
  };
}

/** `repository acme/web, ref refs/heads/main, environment production, audience "k8sdeploy"` */
function describeToken(token: VerifiedToken): string {
  return [
    `repository ${token.repository}`,
    `ref ${token.ref || "(none)"}`,
    `environment ${token.environment || "(none)"}`,
    `workflow_ref ${token.workflowRef || "(none)"}`,
    `audience ${token.audiences.map((a) => JSON.stringify(a)).join(", ")}`,
  ].join(", ");
}

export class OidcTrust {
  constructor(
    private readonly store: Store,
    private readonly verifier: OidcVerifier,
  ) {}

  get issuer(): string {
    return this.verifier.issuer;
  }

  async authenticate(token: string): Promise<OidcIdentity> {
    const verified = await this.verifier.verify(token);
    const all = await this.store.trust.listPolicies();
    const matched = all.filter((p) => policyMismatch(p, verified) === undefined);
    if (matched.length === 0) {
      // Reasons only for the token's own repository: a caller learns nothing about other repositories' policies.
      const own = all.filter((p) => !p.deletedAt && p.repository.toLowerCase() === verified.repository.toLowerCase());
      if (own.length === 0) {
        throw unauthenticated(
          `no trust policy for repository ${verified.repository}: create one with \`k8sdeploy trust create --agent <id> --repository ${verified.repository}\``,
        );
      }
      throw unauthenticated(
        `no trust policy accepts this OIDC token (${describeToken(verified)}): ${own
          .map((p) => `${p.id}: ${policyMismatch(p, verified)}`)
          .join("; ")}`,
      );
    }
    const agents = await Promise.all(matched.map((p) => this.store.agents.getAgent(p.agentId)));
    const usable = matched.filter((_, i) => agents[i] && !agents[i]?.revokedAt);
    if (usable.length === 0) {
      throw permissionDenied(
        `the agent of trust policy ${matched.map((p) => `${p.id} (${p.agentId})`).join(", ")} was revoked`,
      );
    }
    const lifetimeMs = verified.expiresAt.getTime() + CLOCK_SKEW_SECONDS * 1000 - Date.now();
    const ttlMs = Math.min(Math.max(lifetimeMs, 1000), (MAX_TOKEN_AGE_SECONDS + CLOCK_SKEW_SECONDS) * 1000);
    const marker = createHash("sha256").update(`${verified.issuer}\n${verified.tokenId}`).digest("hex");
    if (!(await this.store.once.claimOnce(`oidc:${marker}`, ttlMs))) {
      throw unauthenticated(
        `OIDC token ${verified.tokenId} was already used: each ID token is accepted once; request a new one for every call`,
      );
    }
    return { policies: usable, claims: claimsOf(verified) };
  }
}
