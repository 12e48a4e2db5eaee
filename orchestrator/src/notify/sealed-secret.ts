// Webhook URLs and signing secrets at rest. HMAC signing needs the secret itself (a hash will not
// do), and Slack and Discord URLs are credentials, so both are stored "sealed": with
// K8SDEPLOY_WEBHOOK_KEY set (32 random bytes, kept in a Kubernetes Secret, never in Redis),
// AES-256-GCM with the webhook id and field as associated data (a sealed value cannot be moved to
// another webhook or field); without it, as plain text marked `plain:`, so that a Redis dump shows
// them. Values sealed with one key are refused under another (the key id is recorded), with a
// message saying so instead of garbage.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

const PLAIN = "plain:";
const AES = "aes256gcm:";

export class Sealer {
  private readonly keyId: string | undefined;

  constructor(private readonly key?: Buffer) {
    if (key && key.length !== 32) throw new Error("the webhook key must be 32 bytes");
    this.keyId = key ? createHash("sha256").update(key).digest("hex").slice(0, 8) : undefined;
  }

  get encrypts(): boolean {
    return this.key !== undefined;
  }

  seal(plain: string, context: string): string {
    if (!this.key || !this.keyId) return `${PLAIN}${plain}`;
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const sealed = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    const parts = [iv, sealed, cipher.getAuthTag()].map((b) => b.toString("base64url"));
    return `${AES}${this.keyId}:${parts.join(":")}`;
  }

  /** Throws an Error whose message says what to fix (never the value). */
  open(sealed: string, context: string): string {
    if (sealed.startsWith(PLAIN)) return sealed.slice(PLAIN.length);
    if (!sealed.startsWith(AES)) throw new Error("the stored value is not sealed in a known format");
    const [keyId, iv, data, tag] = sealed.slice(AES.length).split(":");
    if (!this.key) throw new Error(`it was encrypted with K8SDEPLOY_WEBHOOK_KEY (key id ${keyId}), which is not set`);
    if (keyId !== this.keyId) {
      throw new Error(
        `it was encrypted with another K8SDEPLOY_WEBHOOK_KEY (key id ${keyId}, this one is ${this.keyId})`,
      );
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(iv ?? "", "base64url"));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag ?? "", "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(data ?? "", "base64url")), decipher.final()]).toString("utf8");
    } catch {
      throw new Error("the stored value does not decrypt (changed or moved from another webhook)");
    }
  }
}
