// Verifies GitHub Actions ID tokens with jose: the signature against the issuer's JWKS (found
// through its OpenID discovery document, fetched and cached by jose's createRemoteJWKSet, which
// refetches once when a token names an unknown key id and at most once per cooldown), the
// algorithm against an allow-list of asymmetric ones (never `none`, never HS*), `iss`, `exp`,
// `nbf` and `iat` with a small clock skew, and the claims a trust policy can match. Audience and
// one-time use are decided by the caller (oidc-trust.ts), which knows the policies.
//
// Error messages go to the client: they say what is wrong with the token and never echo it.
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { unauthenticated, unavailable } from "../rpc/rpc-error.js";

/** Signature algorithms accepted (GitHub signs with RS256). Symmetric ones and `none` never are. */
export const ALLOWED_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

/** Clock skew tolerated on `exp`, `nbf` and `iat`. */
export const CLOCK_SKEW_SECONDS = 60;

/** Tokens issued longer ago than this are refused whatever their `exp` (GitHub's live minutes). */
export const MAX_TOKEN_AGE_SECONDS = 3600;

/** GitHub.com's issuer; GitHub Enterprise Server's is `https://<host>/_services/token`. */
export const GITHUB_ISSUER = "https://token.actions.githubusercontent.com";

/** The claims of a verified token that trust policies match and the audit trail records. */
export interface VerifiedToken {
  issuer: string;
  audiences: string[];
  subject: string;
  repository: string;
  repositoryId: string;
  repositoryOwner: string;
  ref: string;
  sha: string;
  environment: string;
  workflowRef: string;
  jobWorkflowRef: string;
  actor: string;
  runId: string;
  runAttempt: string;
  eventName: string;
  /** `jti`. */
  tokenId: string;
  issuedAt: Date;
  expiresAt: Date;
}

export interface OidcVerifierOptions {
  /** The trusted issuer (K8SDEPLOY_OIDC_ISSUER), without a trailing slash. */
  issuer: string;
  /** Least time between two JWKS fetches caused by unknown key ids (default 30 s, jose's). */
  jwksCooldownMs?: number;
  /** A fetched JWKS is used this long before it is fetched again (default 10 min, jose's). */
  jwksMaxAgeMs?: number;
  /** Timeout of the discovery and JWKS requests (default 5 s). */
  timeoutMs?: number;
}

/** Looks like a compact JWS: three base64url parts (the second may not be empty). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

const DISCOVERY_RETRY_MS = 5_000;

const claimText = (payload: JWTPayload, name: string): string => {
  const value = payload[name];
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : "";
};

export class OidcVerifier {
  readonly issuer: string;
  private keys: Promise<JWTVerifyGetKey> | undefined;
  private discoveryFailedAt = 0;

  constructor(private readonly options: OidcVerifierOptions) {
    this.issuer = options.issuer.replace(/\/+$/, "");
  }

  async verify(token: string): Promise<VerifiedToken> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      throw unauthenticated("invalid OIDC token: not a well-formed JWT (send the ID token the runner issued)");
    }
    // Checked before any key is fetched: foreign tokens must not make us call the issuer.
    if (typeof header.alg !== "string" || !ALLOWED_ALGORITHMS.includes(header.alg)) {
      throw unauthenticated(
        `invalid OIDC token: algorithm ${JSON.stringify(header.alg ?? "")} is not accepted (allowed: ${ALLOWED_ALGORITHMS.join(", ")})`,
      );
    }
    const claimedIssuer = typeof unverified.iss === "string" ? unverified.iss.replace(/\/+$/, "") : "";
    if (claimedIssuer !== this.issuer) {
      throw unauthenticated(
        `OIDC token from issuer ${JSON.stringify(unverified.iss ?? "")}: this orchestrator trusts only ${this.issuer} (K8SDEPLOY_OIDC_ISSUER)`,
      );
    }
    const getKey = await this.jwks();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms: ALLOWED_ALGORITHMS,
        issuer: [this.issuer, `${this.issuer}/`],
        clockTolerance: CLOCK_SKEW_SECONDS,
        maxTokenAge: MAX_TOKEN_AGE_SECONDS,
        requiredClaims: ["exp", "iat", "jti", "aud", "repository"],
      }));
    } catch (err) {
      throw this.explain(err);
    }
    const audiences = typeof payload.aud === "string" ? [payload.aud] : (payload.aud ?? []);
    const repository = claimText(payload, "repository");
    const tokenId = claimText(payload, "jti");
    if (repository === "" || tokenId === "") {
      throw unauthenticated("invalid OIDC token: the `repository` and `jti` claims must be strings");
    }
    return {
      issuer: this.issuer,
      audiences,
      subject: claimText(payload, "sub"),
      repository,
      repositoryId: claimText(payload, "repository_id"),
      repositoryOwner: claimText(payload, "repository_owner"),
      ref: claimText(payload, "ref"),
      sha: claimText(payload, "sha"),
      environment: claimText(payload, "environment"),
      workflowRef: claimText(payload, "workflow_ref"),
      jobWorkflowRef: claimText(payload, "job_workflow_ref"),
      actor: claimText(payload, "actor"),
      runId: claimText(payload, "run_id"),
      runAttempt: claimText(payload, "run_attempt"),
      eventName: claimText(payload, "event_name"),
      tokenId,
      issuedAt: new Date((payload.iat ?? 0) * 1000),
      expiresAt: new Date((payload.exp ?? 0) * 1000),
    };
  }

  private explain(err: unknown): Error {
    if (err instanceof errors.JWTExpired) {
      return unauthenticated(
        err.claim === "iat"
          ? `OIDC token too old: issued more than ${MAX_TOKEN_AGE_SECONDS} s ago; request a fresh one`
          : "OIDC token expired; request a fresh one (the action does for every call)",
      );
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      return unauthenticated(
        `invalid OIDC token: ${err.claim} claim: ${err.reason === "check_failed" ? err.message : err.reason}`,
      );
    }
    if (err instanceof errors.JWKSNoMatchingKey) {
      return unauthenticated(
        `invalid OIDC token: signed by a key the issuer ${this.issuer} does not publish (unknown key id)`,
      );
    }
    if (err instanceof errors.JWSSignatureVerificationFailed) {
      return unauthenticated("invalid OIDC token: the signature does not verify");
    }
    if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
      return unauthenticated(`invalid OIDC token: ${err.message}`);
    }
    if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
      return unauthenticated(`invalid OIDC token: ${err.message}`);
    }
    // JWKS timeouts, unreachable issuer, a broken JWKS: not the caller's fault.
    return unavailable(
      `cannot fetch the signing keys of the OIDC issuer ${this.issuer}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }

  /** The issuer's key set, found through discovery once per process (retried after a failure). */
  private jwks(): Promise<JWTVerifyGetKey> {
    if (!this.keys) {
      if (Date.now() - this.discoveryFailedAt < DISCOVERY_RETRY_MS) {
        return Promise.reject(
          unavailable(`the OIDC issuer ${this.issuer} could not be reached a moment ago; retry shortly`),
        );
      }
      this.keys = this.discover().catch((err: unknown) => {
        this.keys = undefined;
        this.discoveryFailedAt = Date.now();
        throw err;
      });
    }
    return this.keys;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    const url = `${this.issuer}/.well-known/openid-configuration`;
    const timeoutMs = this.options.timeoutMs ?? 5_000;
    let document: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      document = (await res.json()) as typeof document;
    } catch (err) {
      throw unavailable(
        `cannot read the OIDC discovery document ${url}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const issuer = typeof document.issuer === "string" ? document.issuer.replace(/\/+$/, "") : "";
    if (issuer !== this.issuer || typeof document.jwks_uri !== "string") {
      throw unavailable(`the OIDC discovery document ${url} names another issuer or no jwks_uri`);
    }
    return createRemoteJWKSet(new URL(document.jwks_uri), {
      timeoutDuration: timeoutMs,
      ...(this.options.jwksCooldownMs !== undefined ? { cooldownDuration: this.options.jwksCooldownMs } : {}),
      ...(this.options.jwksMaxAgeMs !== undefined ? { cacheMaxAge: this.options.jwksMaxAgeMs } : {}),
    });
  }
}
