// Who is calling: the admin, a deploy key or an agent. Messages say what to fix and never echo
// the presented secret.

import type { OidcClaims } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { permissionDenied, unauthenticated } from "../rpc/rpc-error.js";
import type { AgentRecord, KeyRecord, Store, TrustPolicyRecord } from "../store/store.js";
import type { OidcTrust } from "../trust/oidc-trust.js";
import { looksLikeJwt } from "../trust/oidc-verifier.js";
import { AGENT_TOKEN_PREFIX, constantTimeEquals, DEPLOY_KEY_PREFIX, parseSecret, secretMatches } from "./secrets.js";

export type Caller =
  | { kind: "admin" }
  | { kind: "key"; key: KeyRecord }
  /** A GitHub Actions ID token: the trust policies it satisfies (see OidcIdentity) and its claims. */
  | { kind: "oidc"; policies: TrustPolicyRecord[]; claims: OidcClaims };

export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}

export class Authenticator {
  constructor(
    private readonly store: Store,
    private readonly adminToken: string,
    /** GitHub OIDC trust; without it ID tokens are refused like any unknown credential. */
    private readonly trust?: OidcTrust,
  ) {}

  isAdmin(authorization: string | undefined): boolean {
    const token = bearerToken(authorization);
    return token !== undefined && constantTimeEquals(token, this.adminToken);
  }

  requireAdmin(authorization: string | undefined): void {
    if (!bearerToken(authorization)) {
      throw unauthenticated("missing admin token: send `authorization: Bearer <K8SDEPLOY_ADMIN_TOKEN>`");
    }
    if (!this.isAdmin(authorization)) throw unauthenticated("invalid admin token");
  }

  /** The admin, a valid deploy key, or a GitHub Actions ID token that a trust policy accepts. */
  async caller(authorization: string | undefined): Promise<Caller> {
    const token = bearerToken(authorization);
    if (!token) {
      throw unauthenticated("missing deploy key: send `authorization: Bearer kdk_…` (or a GitHub Actions ID token)");
    }
    if (!token.startsWith(`${DEPLOY_KEY_PREFIX}_`)) {
      if (this.isAdmin(authorization)) return { kind: "admin" };
      if (this.trust && looksLikeJwt(token)) return { kind: "oidc", ...(await this.trust.authenticate(token)) };
      throw unauthenticated("invalid deploy key: it should start with `kdk_`; create one with `k8sdeploy key create`");
    }
    return { kind: "key", key: await this.deployKey(token) };
  }

  private async deployKey(token: string): Promise<KeyRecord> {
    const parsed = parseSecret(DEPLOY_KEY_PREFIX, token);
    const key = parsed ? await this.store.keys.getKey(parsed.id) : undefined;
    if (!parsed || !key || !secretMatches(parsed.secret, key.secret)) {
      throw unauthenticated("invalid deploy key: no such key; check the secret holds the whole key");
    }
    if (key.revokedAt) throw unauthenticated(`deploy key ${key.id} was revoked; create a new one`);
    const agent = await this.store.agents.getAgent(key.agentId);
    if (!agent || agent.revokedAt)
      throw permissionDenied(`the agent ${key.agentId} of deploy key ${key.id} was revoked`);
    return key;
  }

  async agent(authorization: string | undefined): Promise<AgentRecord> {
    const token = bearerToken(authorization);
    if (!token) throw unauthenticated("missing agent token: send `authorization: Bearer kda_…`");
    const parsed = parseSecret(AGENT_TOKEN_PREFIX, token);
    const agent = parsed ? await this.store.agents.getAgent(parsed.id) : undefined;
    if (!parsed || !agent?.tokens.some((t) => secretMatches(parsed.secret, t))) {
      throw unauthenticated("invalid agent token");
    }
    if (agent.revokedAt) throw unauthenticated(`agent ${agent.id} was revoked`);
    return agent;
  }
}
