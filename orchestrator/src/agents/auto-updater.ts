// The release channel's automatic rollout: every K8SDEPLOY_AGENT_UPDATE_INTERVAL_SECONDS, the one
// replica holding the "agent-updates" lease updates agents that opted in, are connected, are behind
// the current release and run no deploy — at most K8SDEPLOY_AGENT_UPDATE_CONCURRENCY at a time.
// Each agent gets one automatic attempt per release version: a failed (rolled back) update is not
// retried by itself, and neither is one after which the agent still announces an older version.
import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import type { AgentUpdates } from "./agent-updates.js";
import { isConnected } from "./connection-state.js";

const LEASE = "agent-updates";

export interface AutoUpdaterOptions {
  store: Store;
  updates: AgentUpdates;
  replicaId: string;
  intervalMs: number;
  log: Logger;
}

export class AutoUpdater {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: AutoUpdaterOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One pass (exported for tests); concurrent calls share the pass in progress. */
  tick(): Promise<void> {
    this.running ??= this.pass()
      .catch((err: unknown) => this.options.log.warn({ err }, "agent update rollout pass failed"))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async pass(): Promise<void> {
    const { store, updates, replicaId, intervalMs, log } = this.options;
    const release = updates.channel.current();
    if (release === undefined) return;
    if (!(await store.tryLease(LEASE, replicaId, intervalMs * 3))) return;
    for (const agent of await store.agents.listAgents()) {
      if (agent.revokedAt || !agent.hello?.autoUpdateEnabled || !isConnected(agent)) continue;
      if (updates.channel.newerThan(agent.hello.version) === undefined) continue;
      if (agent.autoUpdatedTo === release.version) continue; // one automatic attempt per release
      const obstacle = await updates.obstacle(agent);
      if (obstacle) {
        log.debug({ agentId: agent.id, obstacle }, "agent update postponed");
        continue;
      }
      const d = await updates.start(agent, { image: "" }, "release channel");
      await store.agents.updateAgent(agent.id, { autoUpdatedTo: release.version });
      log.info(
        { agentId: agent.id, deploymentId: d.id, from: agent.hello.version, to: release.version },
        "agent update started",
      );
    }
  }
}
