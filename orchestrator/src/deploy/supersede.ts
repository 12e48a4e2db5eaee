// When a deployment succeeds, older deployments of the same workload that are still waiting in the
// agent's queue must never be applied after it (they would revert the newer images): they end
// SUPERSEDED and leave the queue. One the agent already started is left to the agent, which
// compares creation times with what the workload records and reports SUPERSEDED itself.
import type { Deployment } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.js";
import type { Store } from "../store/store.js";
import { asStoreUpdate, createdBefore, isFinal, supersedeRule, type Verdict } from "./lifecycle.js";
import type { Outcomes } from "./outcome.js";

/** How many queued commands of the agent are looked at at most (this bounds the work). */
const SCAN_LIMIT = 1000;
/**
 * Queues are oldest first, and older commands are what is looked for: the first few entries are
 * read, and the rest only when every one of them is older than `newer` (a long backlog of older
 * commands). A busy agent's queue then costs a short read per success, not the whole backlog.
 */
const FIRST_SCAN = 32;

export async function supersedeOlder(
  store: Store,
  newer: Deployment,
  metrics: Metrics,
  log: Logger,
  outcomes: Outcomes,
): Promise<void> {
  const first = await store.queue.list(newer.agentId, FIRST_SCAN);
  const moreOlder =
    first.length === FIRST_SCAN && first.every((c) => createdBefore({ id: c.id, createdAt: c.createdAt }, newer));
  const commands = moreOlder ? await store.queue.list(newer.agentId, SCAN_LIMIT) : first;
  const now = new Date();
  for (const command of commands) {
    const payload = command.payload;
    if (payload?.$case !== "deploy" || command.id === newer.id) continue;
    const d = payload.value;
    if (d.namespace !== newer.namespace || d.kind !== newer.kind || d.workload !== newer.workload) continue;
    if (!createdBefore({ id: command.id, createdAt: command.createdAt }, newer)) continue;
    const seen: { verdict?: Verdict } = {};
    const ended = await store.deployments.appendEvent(command.id, asStoreUpdate(supersedeRule(now, newer), seen));
    if (ended) {
      metrics.deploymentsEndedUnapplied.inc({ state: "superseded" });
      outcomes.ended(ended.deployment);
    } else {
      log.debug({ deploymentId: command.id, supersededBy: newer.id }, "not superseded: it had moved on");
    }
    const current = ended?.deployment ?? (await store.deployments.getDeployment(command.id));
    // Final (superseded now, or ended before) or gone: the queue entry has no use any more.
    if (!current || isFinal(current.state)) await store.queue.ack(newer.agentId, command.id);
  }
}
