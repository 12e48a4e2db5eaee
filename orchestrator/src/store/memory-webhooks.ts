// In-memory WebhookStore (the memory store's part): the same semantics as the Redis one, for a
// single replica.
import { randomBytes } from "node:crypto";
import {
  type ClaimedDelivery,
  DELIVERY_LOG_LIMIT,
  type DeliveryRecord,
  type WebhookRecord,
  type WebhookStore,
} from "./store.js";

interface Stored {
  delivery: DeliveryRecord;
  body: string | undefined;
  claim?: { token: string; until: number };
}

export class MemoryWebhooks implements WebhookStore {
  private readonly hooks = new Map<string, WebhookRecord>();
  /** Insertion order = creation order. */
  private readonly deliveries = new Map<string, Stored>();

  async createWebhook(webhook: WebhookRecord): Promise<void> {
    this.hooks.set(webhook.id, structuredClone(webhook));
  }

  async getWebhook(id: string): Promise<WebhookRecord | undefined> {
    return structuredClone(this.hooks.get(id));
  }

  async listWebhooks(agentId?: string): Promise<WebhookRecord[]> {
    return [...this.hooks.values()]
      .filter((w) => !agentId || w.agentId === agentId)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1))
      .map((w) => structuredClone(w));
  }

  async deleteWebhook(id: string): Promise<boolean> {
    return this.hooks.delete(id);
  }

  async enqueueDeliveries(items: { delivery: DeliveryRecord; body: string }[]): Promise<void> {
    for (const { delivery, body } of items) {
      if (this.deliveries.has(delivery.id)) continue;
      this.deliveries.set(delivery.id, { delivery: structuredClone(delivery), body });
    }
    let excess = this.deliveries.size - DELIVERY_LOG_LIMIT;
    for (const [id, stored] of this.deliveries) {
      if (excess <= 0) break;
      if (stored.delivery.state === "pending") continue;
      this.deliveries.delete(id);
      excess -= 1;
    }
  }

  async claimDue(now: Date, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const at = now.getTime();
    const due = [...this.deliveries.values()]
      .filter(
        (s) =>
          s.delivery.state === "pending" &&
          (s.delivery.nextAttemptAt?.getTime() ?? 0) <= at &&
          (!s.claim || s.claim.until <= at),
      )
      .sort((a, b) => (a.delivery.nextAttemptAt?.getTime() ?? 0) - (b.delivery.nextAttemptAt?.getTime() ?? 0))
      .slice(0, Math.max(0, limit));
    const token = randomBytes(9).toString("base64url");
    return due.map((s) => {
      s.claim = { token, until: at + leaseMs };
      return { delivery: structuredClone(s.delivery), body: s.body ?? "", claim: token };
    });
  }

  async completeDelivery(claim: string, delivery: DeliveryRecord): Promise<boolean> {
    const stored = this.deliveries.get(delivery.id);
    if (!stored || stored.claim?.token !== claim) return false;
    stored.delivery = structuredClone(delivery);
    stored.claim = undefined;
    if (delivery.state !== "pending") stored.body = undefined;
    return true;
  }

  async getDelivery(id: string): Promise<DeliveryRecord | undefined> {
    return structuredClone(this.deliveries.get(id)?.delivery);
  }

  async listDeliveries(filter: { webhookId?: string; deploymentId?: string }, limit: number) {
    return [...this.deliveries.values()]
      .map((s) => s.delivery)
      .filter(
        (d) =>
          (!filter.webhookId || d.webhookId === filter.webhookId) &&
          (!filter.deploymentId || d.deploymentId === filter.deploymentId),
      )
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .slice(0, Math.max(0, limit))
      .map((d) => structuredClone(d));
  }

  async pendingDeliveries(): Promise<number> {
    let n = 0;
    for (const s of this.deliveries.values()) if (s.delivery.state === "pending") n += 1;
    return n;
  }
}
