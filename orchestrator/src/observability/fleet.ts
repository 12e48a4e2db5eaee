// The fleet-wide numbers behind k8sdeploy_agents, k8sdeploy_queue_* and k8sdeploy_agent_queue_*:
// every agent's connection state and version, and its queue. Read from the store only when
// /metrics is scraped, and at most once per CACHE_MS however many scrapers there are (one
// listAgents plus one batched queue look-up). Every replica reports the same values; dashboards
// aggregate them with max().
//
// Cardinality: per-agent series exist only for the QUEUE_TOP_AGENTS agents with the oldest
// waiting command (then the most waiting commands); the totals cover every agent.
import { isConnected } from "../agents/connection-state.js";
import { type FleetSnapshot, QUEUE_TOP_AGENTS, VersionCounts } from "../metrics.js";
import type { AgentRecord, Store } from "../store/store.js";

const CACHE_MS = 10_000;

function connectionState(agent: AgentRecord, now: number): string {
  if (agent.revokedAt) return "revoked";
  if (isConnected(agent, now)) return "connected";
  return agent.lastSeenAt ? "disconnected" : "never_connected";
}

export async function fleetSnapshot(store: Store, now = Date.now()): Promise<FleetSnapshot> {
  const agents = await store.agents.listAgents();
  const byState = new Map<string, VersionCounts>();
  for (const agent of agents) {
    const state = connectionState(agent, now);
    let counts = byState.get(state);
    if (!counts) {
      counts = new VersionCounts();
      byState.set(state, counts);
    }
    counts.add(agent.hello?.version ?? "");
  }
  const active = agents.filter((a) => !a.revokedAt).map((a) => a.id);
  const stats = active.length > 0 ? await store.queue.stats(active) : [];
  let waiting = 0;
  let inFlight = 0;
  let oldest: number | undefined;
  const top: FleetSnapshot["top"] = [];
  for (const s of stats) {
    waiting += s.waiting;
    inFlight += s.inFlight;
    if (!s.oldestWaitingSince) continue;
    const age = Math.max(0, (now - s.oldestWaitingSince.getTime()) / 1000);
    oldest = Math.max(oldest ?? 0, age);
    top.push({ agentId: s.agentId, waiting: s.waiting, inFlight: s.inFlight, oldestWaitingSeconds: age });
  }
  top.sort((a, b) => b.oldestWaitingSeconds - a.oldestWaitingSeconds || b.waiting - a.waiting);
  return {
    agents: [...byState].flatMap(([state, counts]) =>
      [...counts.entries()].map(([version, count]) => ({ state, version, count })),
    ),
    waiting,
    inFlight,
    oldestWaitingSeconds: oldest,
    top: top.slice(0, QUEUE_TOP_AGENTS),
  };
}

/** fleetSnapshot, shared by concurrent scrapes and reused for CACHE_MS. */
export function cachedFleetSnapshot(store: Store, cacheMs = CACHE_MS): () => Promise<FleetSnapshot> {
  let cached: { at: number; value: Promise<FleetSnapshot> } | undefined;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > cacheMs) {
      const value = fleetSnapshot(store, now);
      cached = { at: now, value };
      // A failed read is not kept: the next scrape tries again.
      value.catch(() => {
        if (cached?.value === value) cached = undefined;
      });
    }
    return cached.value;
  };
}
