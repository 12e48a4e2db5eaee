// One agent stream on this replica: delivers the agent's queued commands down the stream and
// applies what the agent reports (acks, progress, results, describe replies) to the store.
// A command leaves the durable queue only when its result (or reply) arrives.
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import {
  type Command,
  type ConnectRequest,
  type ConnectResponse,
  DescribeReply,
  DrainReason,
  type Hello,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { Logger } from "pino";
import { expireDeployment } from "../deploy/expiry.js";
import {
  applyAck,
  applyProgress,
  applyResult,
  asStoreUpdate,
  type RefusalReason,
  type Rule,
  type Verdict,
} from "../deploy/lifecycle.js";
import type { Outcomes } from "../deploy/outcome.js";
import { supersedeOlder } from "../deploy/supersede.js";
import type { Metrics } from "../metrics.js";
import type { QueueEntry, Store } from "../store/store.js";
import { boundDescribeReply, boundProgress, boundResult, truncate } from "./bounded-reports.js";
import { HEARTBEAT_INTERVAL_SECONDS } from "./connection-state.js";

const TAKE_BATCH = 100;
/** A describe request nobody waits for any more is not worth delivering. */
const DESCRIBE_MAX_AGE_MS = 60_000;
/**
 * lastSeenAt is written at most this often (heartbeats come every 20 s, so about every 40 s): well
 * inside the 70 s after which an agent counts as gone (connection-state.ts), and half the writes of
 * an idle fleet compared with writing on every heartbeat.
 */
const LAST_SEEN_WRITE_INTERVAL_MS = 35_000;

export interface SessionDeps {
  store: Store;
  replicaId: string;
  log: Logger;
  metrics: Metrics;
  /** Final states and deliveries: metrics, the outcome log line, webhooks. */
  outcomes: Outcomes;
}

type AgentMessage = NonNullable<ConnectRequest["msg"]>;

/** What a retried message already did (so a retry does not do it twice). */
interface ApplyState {
  owned?: boolean;
  published?: boolean;
}

const isDeploymentId = (id: string) => id.startsWith("dep_");

/** Waits between attempts to store a message (about 8 s in all), then the stream is failed. */
export const STORE_RETRY_DELAYS_MS: readonly number[] = [100, 400, 1500, 6000];
/**
 * One attempt may take this long. node-redis times a command out only while it waits to be
 * written: one written to a connected but stalled Redis waits for its reply forever.
 */
export const STORE_ATTEMPT_TIMEOUT_MS = 10_000;

class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`the store did not answer within ${ms} ms`);
  }
}

/** `work`, or a rejection after `ms` (the work itself goes on; every step it takes is idempotent). */
async function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AttemptTimeout(ms)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class AgentSession {
  lastHeardAt = Date.now();
  private inbox: Promise<void> = Promise.resolve();
  /** Overridable by tests. */
  retryDelaysMs: readonly number[] = STORE_RETRY_DELAYS_MS;
  attemptTimeoutMs = STORE_ATTEMPT_TIMEOUT_MS;
  private lastSeenWrittenAt = Date.now();
  /** When the queue was last read for this stream (the hub's sweep re-reads it now and then). */
  lastPumpedAt = Date.now();
  private pumping = false;
  private pumpAgain = false;
  private closed = false;

  constructor(
    readonly agentId: string,
    readonly connectionId: string,
    readonly hello: Hello,
    private readonly call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>,
    private readonly deps: SessionDeps,
    private readonly onClosed: (session: AgentSession) => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  send(message: ConnectResponse): void {
    if (this.closed) return;
    this.call.write(message);
  }

  welcome(): void {
    this.send({
      msg: {
        $case: "welcome",
        value: {
          agentId: this.agentId,
          replicaId: this.deps.replicaId,
          heartbeatIntervalSeconds: HEARTBEAT_INTERVAL_SECONDS,
          acksResults: true,
        },
      },
    });
  }

  /**
   * Reads the agent's queue and sends what it finds. `includePending` also re-sends commands
   * handed out before and never completed (a previous connection or a dead replica).
   * Calls made while a pump runs are folded into one more pass.
   */
  async pump(includePending: boolean): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    this.lastPumpedAt = Date.now();
    try {
      let pending = includePending;
      do {
        this.pumpAgain = false;
        for (;;) {
          if (this.closed) return;
          const entries = await this.deps.store.queue.take(this.agentId, this.deps.replicaId, {
            includePending: pending,
            count: TAKE_BATCH,
          });
          pending = false;
          for (const entry of entries) await this.deliver(entry);
          if (entries.length < TAKE_BATCH) break;
        }
      } while (this.pumpAgain && !this.closed);
    } catch (err) {
      if (!this.closed)
        this.deps.log.warn({ err, agentId: this.agentId }, "reading the agent's queue failed; will retry");
    } finally {
      this.pumping = false;
    }
  }

  private async deliver(entry: QueueEntry): Promise<void> {
    const command: Command = entry.command;
    const kind = command.payload?.$case;
    const now = Date.now();
    const age = now - (command.createdAt?.getTime() ?? 0);
    if ((kind === "describeNamespaces" || kind === "describeWorkloads") && age > DESCRIBE_MAX_AGE_MS) {
      await this.deps.store.queue.ack(this.agentId, command.id);
      return;
    }
    // Past its queue deadline and never handed to a stream before: it ends unapplied. One that was
    // handed out before may have reached the agent, which decides (it knows whether it applied it).
    if (kind === "deploy" && entry.deliveries === 0 && command.expiresAt && command.expiresAt.getTime() <= now) {
      await expireDeployment(this.deps.store, command.id, this.deps.metrics, this.deps.outcomes);
      await this.deps.store.queue.ack(this.agentId, command.id);
      return;
    }
    this.deps.log.debug(
      { agentId: this.agentId, commandId: command.id, kind, redelivery: entry.deliveries },
      "sending command",
    );
    this.deps.metrics.commandsDelivered.inc();
    this.send({ msg: { $case: "command", value: command } });
  }

  /**
   * Takes a message from the agent. Heartbeats are answered at once; everything else is applied
   * in arrival order, each retried while the store fails, and if it still fails the stream is
   * failed (UNAVAILABLE) so that the agent reconnects and sends it again: nothing is dropped.
   */
  receive(request: ConnectRequest): void {
    this.lastHeardAt = Date.now();
    const msg = request.msg;
    if (!msg || this.closed) return;
    if (msg.$case === "heartbeat") {
      const now = new Date();
      this.send({ msg: { $case: "heartbeat", value: { sentAt: now } } });
      this.touchLastSeen(now).catch((err: unknown) =>
        this.deps.log.debug({ err, agentId: this.agentId }, "recording when the agent was last seen failed"),
      );
      return;
    }
    this.inbox = this.inbox.then(() => this.applyWithRetry(msg));
  }

  /** Resolves once every message received so far has been applied (or the stream failed). */
  settled(): Promise<void> {
    return this.inbox;
  }

  private async applyWithRetry(msg: AgentMessage): Promise<void> {
    const state: ApplyState = {};
    for (let attempt = 0; ; attempt++) {
      if (this.closed) return;
      try {
        await bounded(this.apply(msg, state), this.attemptTimeoutMs);
        return;
      } catch (err) {
        const delay = this.retryDelaysMs[attempt];
        if (delay === undefined) {
          this.deps.log.warn(
            { err, agentId: this.agentId, message: msg.$case, attempts: attempt + 1 },
            "storing an agent message failed; failing the stream so that the agent sends it again",
          );
          this.fail(grpc.status.UNAVAILABLE, "the orchestrator could not store a message; reconnect and send it again");
          return;
        }
        if (this.closed) return; // the stream (or the whole replica) is going away: the agent sends it again
        this.deps.log.warn(
          { err, agentId: this.agentId, message: msg.$case, attempt: attempt + 1 },
          "storing an agent message failed; retrying",
        );
        await sleep(delay);
      }
    }
  }

  private async apply(msg: AgentMessage, state: ApplyState): Promise<void> {
    const { store } = this.deps;
    const now = new Date();
    switch (msg.$case) {
      case "ack":
        if (isDeploymentId(msg.value.commandId)) {
          await this.applyRule(msg.value.commandId, applyAck(this.agentId, now, this.hello.instance), now);
        }
        return;
      case "progress": {
        if (!isDeploymentId(msg.value.commandId)) return;
        const bounded = boundProgress(msg.value);
        this.reportDropped(msg.value.commandId, bounded.dropped);
        await this.applyRule(msg.value.commandId, applyProgress(this.agentId, now, bounded.value), now);
        return;
      }
      case "result": {
        const id = msg.value.commandId;
        if (isDeploymentId(id)) {
          const bounded = boundResult(msg.value);
          this.reportDropped(id, bounded.dropped);
          const { applied, verdict } = await this.applyRule(id, applyResult(this.agentId, now, bounded.value), now);
          if (verdict?.kind !== "refuse") {
            // Together (one round trip): the queue entry goes, and older queued deploys of the same
            // workload are looked for (supersedeOlder skips this command itself).
            if (applied) this.deps.outcomes.ended(applied.deployment);
            const succeeded = applied?.deployment.state === DeploymentState.DEPLOYMENT_STATE_SUCCEEDED;
            await Promise.all([
              store.queue.ack(this.agentId, id),
              succeeded && applied
                ? supersedeOlder(store, applied.deployment, this.deps.metrics, this.deps.log, this.deps.outcomes)
                : undefined,
            ]);
          }
        } else {
          state.owned ??= await store.queue.ack(this.agentId, id);
          if (!state.owned) {
            this.refused("unknown_command", `no command ${id} is queued for this agent`, id);
          } else {
            this.deps.log.info(
              { agentId: this.agentId, commandId: id, state: msg.value.state, message: truncate(msg.value.message) },
              "command finished",
            );
          }
        }
        // Acknowledged only once stored on the replicas too: a failover must not lose a result the
        // agent was told is safe (it forgets it then).
        await store.syncReplicas();
        this.send({ msg: { $case: "resultAck", value: { commandId: id } } });
        return;
      }
      case "describeReply": {
        const id = msg.value.commandId;
        // Only an answer to a describe command sent to this agent is passed on.
        state.owned ??= await store.queue.ack(this.agentId, id);
        if (!state.owned) {
          this.refused(
            "unknown_command",
            `no describe command ${id} is queued for this agent (or it was answered)`,
            id,
          );
        } else if (!state.published) {
          const bounded = boundDescribeReply(msg.value);
          this.reportDropped(id, bounded.dropped);
          await store.bus.publish({
            type: "reply",
            commandId: id,
            payload: Buffer.from(DescribeReply.encode(bounded.value).finish()).toString("base64"),
          });
          state.published = true;
        }
        this.send({ msg: { $case: "resultAck", value: { commandId: id } } });
        return;
      }
      case "hello":
        this.deps.log.warn({ agentId: this.agentId }, "ignoring a second hello on the same stream");
        return;
      default:
        return;
    }
  }

  /** Applies a lifecycle rule to one of this agent's deployments; refusals are logged and counted. */
  private async applyRule(id: string, rule: Rule, now: Date) {
    const seen: { verdict?: Verdict } = {};
    const applied = await this.deps.store.deployments.appendEvent(id, asStoreUpdate(rule, seen));
    const verdict = seen.verdict;
    if (verdict?.kind === "refuse") this.refused(verdict.reason, verdict.detail, id, verdict.owner);
    // The rules set deliveredAt to `now` only on the agent's first report about the deployment.
    if (applied?.deployment.deliveredAt?.getTime() === now.getTime()) this.deps.outcomes.delivered(applied.deployment);
    return { applied, verdict };
  }

  private refused(reason: RefusalReason, detail: string, commandId: string, ownerAgentId?: string): void {
    this.deps.metrics.agentMessagesRefused.inc({ reason });
    this.deps.log.warn(
      { agentId: this.agentId, ownerAgentId, commandId, reason, detail },
      "ignored an agent message that breaks the protocol's rules",
    );
  }

  private reportDropped(commandId: string, dropped: string[]): void {
    if (dropped.length === 0) return;
    this.deps.metrics.agentMessagesRefused.inc({ reason: "invalid_field" }, dropped.length);
    this.deps.log.warn({ agentId: this.agentId, commandId, dropped }, "dropped invalid entries from an agent report");
  }

  private async touchLastSeen(now: Date): Promise<void> {
    if (now.getTime() - this.lastSeenWrittenAt < LAST_SEEN_WRITE_INTERVAL_MS) return;
    this.lastSeenWrittenAt = now.getTime();
    await this.deps.store.agents.touchAgent(this.agentId, this.connectionId, now);
  }

  /** Asks the agent to go away (and whether to come back), then ends the stream. */
  drain(reason: DrainReason, reconnect: boolean, reconnectAfterMs = 0): void {
    this.send({ msg: { $case: "drain", value: { reason, reconnect, reconnectAfterMs } } });
    this.end();
  }

  /** Ends the stream with an error status (e.g. the agent was revoked). */
  fail(code: grpc.status, details: string): void {
    if (this.closed) return;
    this.call.emit("error", { code, details });
    this.markClosed();
  }

  end(): void {
    if (this.closed) return;
    this.call.end();
    this.markClosed();
  }

  /** The transport went away. */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClosed(this);
  }
}

export { DrainReason };
