// One agent stream on this replica: delivers the agent's queued commands down the stream and
// applies what the agent reports (acks, progress, results, describe replies) to the store.
// A command leaves the durable queue only when its result (or reply) arrives.
import type * as grpc from "@grpc/grpc-js";
import {
  type Command,
  type ConnectRequest,
  type ConnectResponse,
  DescribeReply,
  DrainReason,
  type Hello,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { Logger } from "pino";
import { applyAck, applyProgress, applyResult } from "../deploy/lifecycle.js";
import type { Metrics } from "../metrics.js";
import type { QueueEntry, Store } from "../store/store.js";
import { HEARTBEAT_INTERVAL_SECONDS } from "./connection-state.js";

const TAKE_BATCH = 100;
/** A describe request nobody waits for any more is not worth delivering. */
const DESCRIBE_MAX_AGE_MS = 60_000;
const LAST_SEEN_WRITE_INTERVAL_MS = 15_000;

export interface SessionDeps {
  store: Store;
  replicaId: string;
  log: Logger;
  metrics: Metrics;
}

export class AgentSession {
  lastHeardAt = Date.now();
  private lastSeenWrittenAt = Date.now();
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
      this.deps.log.warn({ err, agentId: this.agentId }, "reading the agent's queue failed; will retry");
    } finally {
      this.pumping = false;
    }
  }

  private async deliver(entry: QueueEntry): Promise<void> {
    const command: Command = entry.command;
    const kind = command.payload?.$case;
    const age = Date.now() - (command.createdAt?.getTime() ?? 0);
    if ((kind === "describeNamespaces" || kind === "describeWorkloads") && age > DESCRIBE_MAX_AGE_MS) {
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

  async onMessage(request: ConnectRequest): Promise<void> {
    this.lastHeardAt = Date.now();
    const msg = request.msg;
    if (!msg) return;
    const { store } = this.deps;
    const now = new Date();
    switch (msg.$case) {
      case "ack":
        if (msg.value.commandId.startsWith("dep_")) {
          await store.deployments.appendEvent(msg.value.commandId, applyAck(now, this.hello.instance));
        }
        return;
      case "progress":
        await store.deployments.appendEvent(msg.value.commandId, applyProgress(now, msg.value));
        return;
      case "result": {
        const id = msg.value.commandId;
        if (id.startsWith("dep_")) {
          const applied = await store.deployments.appendEvent(id, applyResult(now, msg.value));
          if (applied) this.deps.metrics.deploymentsFinished.inc({ state: applied.deployment.state });
        } else {
          this.deps.log.info(
            { agentId: this.agentId, commandId: id, state: msg.value.state, message: msg.value.message },
            "command finished",
          );
        }
        await store.queue.ack(this.agentId, id);
        return;
      }
      case "describeReply":
        await store.bus.publish({
          type: "reply",
          commandId: msg.value.commandId,
          payload: Buffer.from(DescribeReply.encode(msg.value).finish()).toString("base64"),
        });
        await store.queue.ack(this.agentId, msg.value.commandId);
        return;
      case "heartbeat":
        this.send({ msg: { $case: "heartbeat", value: { sentAt: now } } });
        await this.touchLastSeen(now);
        return;
      case "hello":
        this.deps.log.warn({ agentId: this.agentId }, "ignoring a second hello on the same stream");
        return;
    }
  }

  private async touchLastSeen(now: Date): Promise<void> {
    if (now.getTime() - this.lastSeenWrittenAt < LAST_SEEN_WRITE_INTERVAL_MS) return;
    this.lastSeenWrittenAt = now.getTime();
    const current = await this.deps.store.agents.getAgent(this.agentId);
    if (current?.connectionId === this.connectionId)
      await this.deps.store.agents.updateAgent(this.agentId, { lastSeenAt: now });
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
