// Limits credential guessing on both ports. Every failed authentication (UNAUTHENTICATED) is
// counted in k8sdeploy_auth_failures_total{kind}, logged without the credential, and charged to
// the client's address; an address past `failuresPerMinute` failures is refused with
// RESOURCE_EXHAUSTED for BLOCK_SECONDS before its credentials are even looked at. Addresses are
// independent, so a correct credential from elsewhere is never locked out by someone else's
// failures (unlike a per-account lockout). The counters live in this process (rate-limiter-flexible's
// memory limiter): with several replicas an address gets that many failures per replica.
import type { Logger } from "pino";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import { audit } from "../audit/audit.js";
import type { Metrics } from "../metrics.js";
import { Code, RpcError } from "../rpc/rpc-error.js";
import { looksLikeJwt } from "../trust/oidc-verifier.js";
import { bearerToken } from "./authenticate.js";
import { AGENT_TOKEN_PREFIX, DEPLOY_KEY_PREFIX, parseSecret } from "./secrets.js";

export const BLOCK_SECONDS = 60;

export type CredentialKind = "admin" | "deploy_key" | "agent" | "oidc" | "missing";

/** What kind of credential a request presented, judged by its shape only. */
export function credentialKind(authorization: string | undefined): CredentialKind {
  const token = bearerToken(authorization);
  if (!token) return "missing";
  if (token.startsWith(`${AGENT_TOKEN_PREFIX}_`)) return "agent";
  if (token.startsWith(`${DEPLOY_KEY_PREFIX}_`)) return "deploy_key";
  if (looksLikeJwt(token)) return "oidc";
  return "admin";
}

/**
 * The record id a presented agent token or deploy key names (`key_…`, `agt_…`), never its secret
 * part; undefined for the admin token or anything not shaped like a token.
 */
export function claimedId(authorization: string | undefined): string | undefined {
  const token = bearerToken(authorization);
  if (!token) return undefined;
  return (parseSecret(DEPLOY_KEY_PREFIX, token) ?? parseSecret(AGENT_TOKEN_PREFIX, token))?.id;
}

/** `::ffff:127.0.0.1` → `127.0.0.1`, so both socket families count as one address. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return "unknown";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

export interface AuthFailure {
  address: string | undefined;
  authorization: string | undefined;
  /** e.g. `/k8sdeploy.v1.AdminService/ListAgents`. */
  method: string;
  /** The message sent to the client (never contains the credential). */
  reason: string;
  transport: "grpc" | "http";
}

export class AuthGuard {
  private readonly limiter: RateLimiterMemory;

  constructor(
    private readonly failuresPerMinute: number,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.limiter = new RateLimiterMemory({
      points: failuresPerMinute,
      duration: 60,
      blockDuration: BLOCK_SECONDS,
    });
  }

  /** Seconds until `address` may authenticate again; 0 when it may now. */
  async retryAfterSeconds(address: string | undefined): Promise<number> {
    const res = await this.limiter.get(normalizeAddress(address));
    if (!res || res.consumedPoints <= this.failuresPerMinute) return 0;
    return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  }

  /** The error for a refused address (counted in k8sdeploy_auth_rate_limited_total). */
  refusal(address: string | undefined, retryAfterSeconds: number): RpcError {
    this.metrics.authRateLimited.inc();
    return new RpcError(
      Code.RESOURCE_EXHAUSTED,
      `too many failed authentications from ${normalizeAddress(address)}: retry in ${retryAfterSeconds} s ` +
        `(limit K8SDEPLOY_AUTH_FAILURES_PER_MINUTE=${this.failuresPerMinute}); check the token or key you send`,
    );
  }

  /** Records one failed authentication. Never rejects. */
  async failed(failure: AuthFailure): Promise<void> {
    const address = normalizeAddress(failure.address);
    const kind = credentialKind(failure.authorization);
    this.metrics.authFailures.inc({ kind });
    audit(
      this.log,
      {
        event: "auth.failed",
        actor: claimedId(failure.authorization) ?? kind,
        credential: kind,
        peer: address,
        outcome: "UNAUTHENTICATED",
        method: failure.method,
        transport: failure.transport,
        reason: failure.reason,
      },
      "authentication failed",
    );
    try {
      await this.limiter.consume(address);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        this.log.warn({ err }, "auth rate limiter failed");
        return;
      }
      // Logged once per block: the failure that crossed the limit.
      if (err.consumedPoints === this.failuresPerMinute + 1) {
        this.log.warn(
          { peer: address, failuresPerMinute: this.failuresPerMinute, blockSeconds: BLOCK_SECONDS },
          "too many failed authentications from one address: refusing it for a while",
        );
      }
    }
  }
}
