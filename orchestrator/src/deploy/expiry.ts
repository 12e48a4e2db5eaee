// Ends deployments whose queue deadline passed before they were sent, wherever their agent is
// (offline agents have no stream to notice): each replica takes due entries from the queue's
// deadline index every few seconds; a command no stream was handed is withdrawn and its
// deployment ends EXPIRED. One that was handed out is left to the agent, which refuses it past the
// deadline unless it had applied it already. Delivery checks the deadline too (agent-session.ts).
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import type { Store } from "../store/store.js";
import { asStoreUpdate, expireRule, type Verdict } from "./lifecycle.js";
import type { Outcomes } from "./outcome.js";

const SWEEP_INTERVAL_MS = 5000;
const BATCH = 100;

/** Expires one deployment whose command was never sent (or is not queued). True if it ended now. */
export async function expireDeployment(
  store: Store,
  id: string,
  metrics: Metrics,
  outcomes: Outcomes,
): Promise<boolean> {
  const seen: { verdict?: Verdict } = {};
  const ended = await store.deployments.appendEvent(id, asStoreUpdate(expireRule(new Date()), seen));
  if (!ended) return false;
  metrics.deploymentsEndedUnapplied.inc({ state: "expired" });
  outcomes.ended(ended.deployment);
  return true;
}

export class ExpirySweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly outcomes: Outcomes,
    private readonly intervalMs = SWEEP_INTERVAL_MS,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        .catch((err: unknown) => this.log.warn({ err }, "expiring queued deployments failed; will retry"))
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass over everything due now. */
  async sweep(now = new Date()): Promise<void> {
    for (;;) {
      const due = await this.store.queue.takeDue(now, BATCH);
      for (const { agentId, commandId } of due) {
        if (!commandId.startsWith("dep_")) {
          await this.store.queue.withdraw(agentId, commandId);
          continue;
        }
        const outcome = await this.store.queue.withdraw(agentId, commandId);
        if (outcome !== "sent") await expireDeployment(this.store, commandId, this.metrics, this.outcomes);
      }
      if (due.length < BATCH) return;
    }
  }
}
