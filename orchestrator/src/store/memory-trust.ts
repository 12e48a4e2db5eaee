// In-memory trust policies and one-time markers (the MemoryStore's halves of the GitHub OIDC
// trust feature; redis-trust.ts is the Redis one).
import type { OnceStore, TrustPolicyRecord, TrustPolicyStore } from "./store.js";

export class MemoryTrustPolicies implements TrustPolicyStore {
  private readonly policies = new Map<string, TrustPolicyRecord>();

  async createPolicy(policy: TrustPolicyRecord): Promise<void> {
    this.policies.set(policy.id, structuredClone(policy));
  }

  async getPolicy(id: string): Promise<TrustPolicyRecord | undefined> {
    return structuredClone(this.policies.get(id));
  }

  async listPolicies(agentId?: string): Promise<TrustPolicyRecord[]> {
    return [...this.policies.values()]
      .filter((p) => !agentId || p.agentId === agentId)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1))
      .map((p) => structuredClone(p));
  }

  async updatePolicy(id: string, patch: Partial<Omit<TrustPolicyRecord, "id">>) {
    const current = this.policies.get(id);
    if (!current) return undefined;
    const next: TrustPolicyRecord = { ...current, ...structuredClone(patch), id };
    this.policies.set(id, next);
    return structuredClone(next);
  }
}

/** Markers expire lazily: every claim drops the expired ones once the map has grown. */
export class MemoryOnce implements OnceStore {
  private readonly markers = new Map<string, number>();
  private sweepAt = 1024;

  async claimOnce(id: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    if (this.markers.size >= this.sweepAt) {
      for (const [key, expiresAt] of this.markers) if (expiresAt <= now) this.markers.delete(key);
      this.sweepAt = Math.max(1024, this.markers.size * 2);
    }
    const expiresAt = this.markers.get(id);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.markers.set(id, now + Math.max(1, Math.ceil(ttlMs)));
    return true;
  }
}
