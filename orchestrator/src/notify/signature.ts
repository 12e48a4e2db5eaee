// Webhook signatures per the Standard Webhooks specification (standardwebhooks.com), so that
// receivers can verify with an existing library (`standardwebhooks`, `svix`, …) or by hand:
//   webhook-id:        the delivery id (the same on every retry: deduplicate by it)
//   webhook-timestamp: Unix seconds of this attempt (refuse ones older than a few minutes)
//   webhook-signature: `v1,` + base64 HMAC-SHA256 over `${id}.${timestamp}.${body}`, keyed with
//                      the base64-decoded part of the `whsec_…` secret
// Signing is these few lines of node:crypto; the tests verify with the `standardwebhooks` package.
import { createHmac, randomBytes } from "node:crypto";

export const SECRET_PREFIX = "whsec_";

export function newSigningSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString("base64")}`;
}

export function signatureHeaders(secret: string, id: string, timestampSeconds: number, body: string) {
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), "base64");
  const signature = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": `v1,${signature}`,
  };
}
