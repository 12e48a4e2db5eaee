// Whether an agent counts as connected, as any replica sees it: a connection is recorded and the
// agent was heard from recently (a replica that died cannot clear its record).
import type { AgentRecord } from "../store/store.js";

export const HEARTBEAT_INTERVAL_SECONDS = 20;
/** Three missed heartbeats, plus slack. */
export const STALE_AFTER_MS = (HEARTBEAT_INTERVAL_SECONDS * 3 + 10) * 1000;

export function isConnected(agent: AgentRecord, now = Date.now()): boolean {
  return (
    agent.connectionId !== undefined &&
    agent.lastSeenAt !== undefined &&
    now - agent.lastSeenAt.getTime() < STALE_AFTER_MS
  );
}

export function offlineMessage(agent: AgentRecord): string {
  return agent.lastSeenAt
    ? `agent ${agent.id} (${agent.name}) is offline since ${agent.lastSeenAt.toISOString()}`
    : `agent ${agent.id} (${agent.name}) has never connected; install it with its token (see \`k8sdeploy agent create\`)`;
}
