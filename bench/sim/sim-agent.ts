// A simulated agent: one grpc-js AgentService.Connect stream on its own connection, speaking the
// wire protocol as the real agent does (hello → welcome, heartbeats at the interval the welcome
// names, ack then result for each command, the agent's reconnect backoff) without touching
// Kubernetes. Light enough to run thousands per process; used by the fleet (sim/fleet.ts) and, for
// latency, inside the bench driver itself.
import * as grpc from "@grpc/grpc-js";
import {
  AgentServiceClient,
  type Command,
  type ConnectRequest,
  type ConnectResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

/** What the agent does with a command: finish it at once, or ack it and finish only a redelivery. */
export type CommandMode = "complete" | "hold";

export interface SimAgentEvents {
  welcome?(agent: SimAgent, at: number): void;
  command?(agent: SimAgent, command: Command, at: number, duplicate: boolean): void;
  heartbeatRtt?(ms: number): void;
  disconnected?(agent: SimAgent, code: number): void;
}

// Same channel options as the real agent (agent/src/connection/servers.ts): keepalive every 30 s,
// and a local subchannel pool so that every agent has its own TCP connection.
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.use_local_subchannel_pool": 1,
};

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 60_000;
const HEALTHY_RESET_MS = 60_000;

export class SimAgent {
  private client: AgentServiceClient | undefined;
  private call: grpc.ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private heartbeatSentAt = 0;
  private attempt = 0;
  private welcomedAt = 0;
  private stopped = false;
  /** Command ids seen on any stream of this agent (a second sighting is a redelivery). */
  private readonly seen = new Set<string>();
  connected = false;

  constructor(
    readonly id: string,
    private readonly token: string,
    private readonly address: string,
    private readonly mode: CommandMode,
    private readonly events: SimAgentEvents,
  ) {}

  start(): void {
    this.stopped = false;
    this.dial();
  }

  stop(): void {
    this.stopped = true;
    this.teardown();
  }

  private dial(): void {
    if (this.stopped) return;
    this.client = new AgentServiceClient(this.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${this.token}`);
    const call = this.client.connect(metadata);
    this.call = call;
    call.on("data", (m: ConnectResponse) => this.onMessage(m));
    call.on("error", () => {});
    call.on("status", (s: grpc.StatusObject) => this.onEnd(call, s.code));
    call.write({
      msg: {
        $case: "hello",
        value: {
          agentVersion: "0.0.0-bench",
          arch: process.arch,
          kubernetesVersion: "v1.36.3",
          capabilities: [1, 2, 4],
          autoUpdateEnabled: false,
          instance: `bench-${this.id}`,
          namespace: "k8sdeploy",
          runningCommandIds: [],
          agentDeployment: "",
        },
      },
    });
  }

  private onMessage(m: ConnectResponse): void {
    const now = Date.now();
    switch (m.msg?.$case) {
      case "welcome": {
        this.connected = true;
        this.welcomedAt = now;
        const interval = (m.msg.value.heartbeatIntervalSeconds || 20) * 1000;
        // Spread the first heartbeat over the interval, as agents that connected at different times would.
        this.heartbeat = setTimeout(() => this.beat(interval), Math.floor(Math.random() * interval));
        this.events.welcome?.(this, now);
        return;
      }
      case "heartbeat":
        if (this.heartbeatSentAt > 0) {
          this.events.heartbeatRtt?.(now - this.heartbeatSentAt);
          this.heartbeatSentAt = 0;
        }
        return;
      case "command": {
        const command = m.msg.value;
        const duplicate = this.seen.has(command.id);
        this.seen.add(command.id);
        this.events.command?.(this, command, now, duplicate);
        this.send({ msg: { $case: "ack", value: { commandId: command.id } } });
        if (this.mode === "complete" || duplicate) this.finish(command);
        return;
      }
      case "resultAck":
        this.seen.delete(m.msg.value.commandId);
        return;
      case "drain":
        // The server closes the stream next; reconnect after the delay it asked for.
        return;
      default:
        return;
    }
  }

  private finish(command: Command): void {
    if (command.payload?.$case === "deploy") {
      this.send({
        msg: {
          $case: "result",
          value: {
            commandId: command.id,
            state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
            failure: undefined,
            message: "rolled out (simulated)",
            replicas: { desired: 1, updated: 1, ready: 1, available: 1 },
            previousImages: [],
            appliedImages: [],
            resolvedDigest: "",
          },
        },
      });
    } else {
      this.send({
        msg: {
          $case: "describeReply",
          value: { commandId: command.id, namespaces: [], workloads: [], error: undefined },
        },
      });
    }
  }

  private beat(interval: number): void {
    if (!this.connected) return;
    this.heartbeatSentAt = Date.now();
    this.send({ msg: { $case: "heartbeat", value: { sentAt: new Date() } } });
    this.heartbeat = setTimeout(() => this.beat(interval), interval);
  }

  private send(m: ConnectRequest): void {
    if (this.call && this.connected) this.call.write(m);
  }

  private onEnd(call: grpc.ClientDuplexStream<ConnectRequest, ConnectResponse>, code: number): void {
    if (call !== this.call) return;
    const wasWelcomed = this.connected;
    const upFor = wasWelcomed ? Date.now() - this.welcomedAt : 0;
    this.teardown();
    if (wasWelcomed) this.events.disconnected?.(this, code);
    if (this.stopped) return;
    // The real agent's backoff (agent/src/connection/backoff.ts): full jitter, reset after a healthy minute.
    if (upFor >= HEALTHY_RESET_MS) this.attempt = 0;
    const delay = Math.floor(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt));
    this.attempt++;
    setTimeout(() => this.dial(), delay);
  }

  private teardown(): void {
    this.connected = false;
    clearTimeout(this.heartbeat);
    this.heartbeatSentAt = 0;
    const call = this.call;
    const client = this.client;
    this.call = undefined;
    this.client = undefined;
    call?.cancel();
    client?.close();
  }
}
