// Ends agent streams whose token stopped authenticating: after a rotation, the stream opened with
// the previous token closes when that token's grace period ends (at once without a grace period,
// or when a second rotation drops it). The hub tells it which token hash each stream used; a
// rotation on any replica reaches the holder of the stream through the bus
// ("agent-token-rotated"), and the hub's sweep re-reads the record every RECHECK_MS in case a bus
// message was lost.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { AgentRecord, Store } from "../store/store.js";
import type { AgentSession } from "./agent-session.js";

export const RECHECK_MS = 60_000;

interface Tracked {
  session: AgentSession;
  tokenHash: string;
  timer: NodeJS.Timeout | undefined;
  checkedAt: number;
}

export class TokenExpiry {
  private readonly tracked = new Map<string, Tracked>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  /** Starts watching `session`, opened with the token whose hash is `tokenHash`; `agent` as just read. */
  track(session: AgentSession, tokenHash: string, agent: AgentRecord): void {
    this.forget(session.agentId);
    if (session.isClosed) return;
    const entry: Tracked = { session, tokenHash, timer: undefined, checkedAt: Date.now() };
    this.tracked.set(session.agentId, entry);
    this.apply(entry, agent);
  }

  /** The session ended (or was replaced). */
  forget(agentId: string, session?: AgentSession): void {
    const entry = this.tracked.get(agentId);
    if (!entry || (session && entry.session !== session)) return;
    clearTimeout(entry.timer);
    this.tracked.delete(agentId);
  }

  /** Re-reads the agent's tokens now (a rotation was announced). */
  async recheck(agentId: string): Promise<void> {
    const entry = this.tracked.get(agentId);
    if (!entry) return;
    entry.checkedAt = Date.now();
    try {
      const agent = await this.store.agents.getAgent(agentId);
      if (this.tracked.get(agentId) === entry) this.apply(entry, agent);
    } catch (err) {
      this.log.warn({ err, agentId }, "re-checking an agent's token failed; will retry");
    }
  }

  /** Re-checks every stream not checked for RECHECK_MS (called from the hub's sweep). */
  sweep(now = Date.now()): void {
    for (const [agentId, entry] of this.tracked) {
      if (entry.session.isClosed) this.forget(agentId, entry.session);
      else if (now - entry.checkedAt >= RECHECK_MS) void this.recheck(agentId);
    }
  }

  private apply(entry: Tracked, agent: AgentRecord | undefined): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const token = agent?.tokens.find((t) => t.hash === entry.tokenHash);
    const remaining = token?.expiresAt ? token.expiresAt.getTime() - Date.now() : Number.POSITIVE_INFINITY;
    if (!token || remaining <= 0) {
      this.close(entry);
      return;
    }
    if (Number.isFinite(remaining)) {
      // Re-read at the end of the grace period rather than trusting this copy of the record.
      entry.timer = setTimeout(() => void this.recheck(entry.session.agentId), Math.min(remaining, 2 ** 31 - 1) + 50);
      entry.timer.unref();
    }
  }

  private close(entry: Tracked): void {
    this.forget(entry.session.agentId, entry.session);
    this.log.info(
      { agentId: entry.session.agentId, connectionId: entry.session.connectionId },
      "the token of an agent stream was rotated out: closing the stream",
    );
    entry.session.fail(
      grpc.status.UNAUTHENTICATED,
      `the token this stream of agent ${entry.session.agentId} authenticated with was rotated and its grace period is over; reconnect with the new token`,
    );
  }
}
