// Agent tokens and deploy keys: `<prefix>_<record id>_<secret>`. The prefix lets secret
// scanners recognise them; the id finds the record; only a SHA-256 of the secret is stored and
// it is compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { StoredSecret } from "../store/store.js";

export const AGENT_TOKEN_PREFIX = "kda";
export const DEPLOY_KEY_PREFIX = "kdk";

const SECRET_BYTES = 32;

function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Creates a new secret for the record `id`: the full token (shown once) and what is stored. */
export function issueSecret(prefix: string, id: string, expiresAt?: Date): { token: string; stored: StoredSecret } {
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  const token = `${prefix}_${id}_${secret}`;
  return {
    token,
    stored: { hash: hashSecret(secret), prefix: token.slice(0, id.length + prefix.length + 6), expiresAt },
  };
}

/** Splits a presented token into the record id and secret; undefined when it is not shaped like one. */
export function parseSecret(prefix: string, token: string): { id: string; secret: string } | undefined {
  const match = new RegExp(`^${prefix}_([a-z]{3}_[0-9a-z]+)_([A-Za-z0-9_-]{43})$`).exec(token);
  if (!match?.[1] || !match[2]) return undefined;
  return { id: match[1], secret: match[2] };
}

/** Hex SHA-256 of the secret part of a presented token, as StoredSecret.hash would hold it. */
export function presentedSecretHash(prefix: string, token: string): string | undefined {
  const parsed = parseSecret(prefix, token);
  return parsed ? hashSecret(parsed.secret) : undefined;
}

export function secretMatches(secret: string, stored: StoredSecret, now = new Date()): boolean {
  if (stored.expiresAt && stored.expiresAt.getTime() <= now.getTime()) return false;
  const presented = Buffer.from(hashSecret(secret), "hex");
  const expected = Buffer.from(stored.hash, "hex");
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

/** Constant-time comparison of two strings of possibly different lengths (admin token). */
export function constantTimeEquals(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}
