// TEST HELPER — a stand-in orchestrator for the agent's connection-layer tests. NOT the real
// orchestrator (orchestrator/ implements AgentService for real, with queues and a store). This is
// a real grpc-js server implementing AgentService.Connect by hand, so the agent's client, its
// channel options, metadata and stream handling are exercised over real HTTP/2 on loopback.
import * as grpc from "@grpc/grpc-js";
import {
  AgentServiceService,
  type Command,
  type ConnectRequest,
  type ConnectResponse,
  type Drain,
  DrainReason,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";

export interface FakeOrchestratorOptions {
  /** Token accepted in `authorization: Bearer …`; anything else gets UNAUTHENTICATED. */
  token: string;
  /** Sent in welcome (default 20). */
  heartbeatIntervalSeconds?: number;
  agentId?: string;
  replicaId?: string;
  /** Answer each agent heartbeat with a heartbeat (default true). */
  echoHeartbeats?: boolean;
  /** Never send welcome or anything else (a hung server). */
  silent?: boolean;
  /** Set `acks_results` in welcome (the test then sends result_ack itself with FakeStream.ackResult). */
  acksResults?: boolean;
  /** Reject every stream with this status instead of welcoming it. */
  rejectWith?: { code: grpc.status; details: string };
}

/** One agent stream as seen by the stand-in orchestrator. */
export class FakeStream {
  readonly received: ConnectRequest[] = [];
  ended = false;

  constructor(
    readonly call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>,
    readonly authorization: string | undefined,
  ) {}

  send(message: ConnectResponse): void {
    if (!this.ended) this.call.write(message);
  }

  ackResult(commandId: string): void {
    this.send({ msg: { $case: "resultAck", value: { commandId } } });
  }

  sendCommand(command: Command): void {
    this.send({ msg: { $case: "command", value: command } });
  }

  /** Sends `drain`; with `end`, ends the call right after it (as the real orchestrator does). */
  drain(drain: Partial<Drain> = {}, options: { end?: boolean } = {}): void {
    this.send({
      msg: {
        $case: "drain",
        value: { reason: DrainReason.DRAIN_REASON_REBALANCE, reconnectAfterMs: 0, reconnect: true, ...drain },
      },
    });
    if (options.end) {
      this.ended = true;
      this.call.end();
    }
  }

  /** Messages of one kind, in order. */
  messages<K extends RequestKind>(kind: K): RequestOf<K>[] {
    const out: RequestOf<K>[] = [];
    for (const r of this.received) {
      if (r.msg?.$case === kind) out.push(r.msg.value as RequestOf<K>);
    }
    return out;
  }
}

type RequestMsg = NonNullable<ConnectRequest["msg"]>;
export type RequestKind = RequestMsg["$case"];
export type RequestOf<K extends RequestKind> = Extract<RequestMsg, { $case: K }>["value"];

export class FakeOrchestrator {
  readonly streams: FakeStream[] = [];
  private server: grpc.Server | undefined;
  private boundPort = 0;

  constructor(readonly options: FakeOrchestratorOptions) {}

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  /** Starts on `port` (0: a free one; after stop(), the same port again). */
  async start(port = this.boundPort): Promise<this> {
    const server = new grpc.Server();
    server.addService(AgentServiceService, {
      connect: (call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) => this.onConnect(call),
    });
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.server = server;
    return this;
  }

  /** Kills the server: every open stream is reset (like a crashed replica). */
  stop(): void {
    for (const s of this.streams) s.ended = true;
    this.server?.forceShutdown();
    this.server = undefined;
  }

  get current(): FakeStream | undefined {
    return this.streams.at(-1);
  }

  /** Every message received on every stream, in order. */
  allReceived(): ConnectRequest[] {
    return this.streams.flatMap((s) => s.received);
  }

  all<K extends RequestKind>(kind: K): RequestOf<K>[] {
    return this.streams.flatMap((s) => s.messages(kind));
  }

  /** Waits for the stream number `index` (0-based) to have been welcomed (hello received). */
  async stream(index: number, timeoutMs = 5000): Promise<FakeStream> {
    await waitFor(() => (this.streams[index]?.received.length ?? 0) > 0, timeoutMs, `stream #${index}`);
    return this.streams[index]!;
  }

  private onConnect(call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>): void {
    const auth = call.metadata.get("authorization")[0];
    const stream = new FakeStream(call, typeof auth === "string" ? auth : undefined);
    this.streams.push(stream);
    call.on("error", () => {
      stream.ended = true;
    });
    call.on("end", () => {
      stream.ended = true;
      call.end();
    });
    call.on("cancelled", () => {
      stream.ended = true;
    });
    const o = this.options;
    call.on("data", (req: ConnectRequest) => {
      stream.received.push(req);
      if (o.silent || stream.ended) return;
      if (req.msg?.$case === "hello") {
        if (o.rejectWith !== undefined) {
          stream.ended = true;
          call.emit("error", { code: o.rejectWith.code, details: o.rejectWith.details });
          return;
        }
        if (stream.authorization !== `Bearer ${o.token}`) {
          stream.ended = true;
          call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: "invalid or revoked agent token" });
          return;
        }
        stream.send({
          msg: {
            $case: "welcome",
            value: {
              agentId: o.agentId ?? "agt_test",
              replicaId: o.replicaId ?? `replica-${this.boundPort}`,
              heartbeatIntervalSeconds: o.heartbeatIntervalSeconds ?? 20,
              acksResults: o.acksResults ?? false,
            },
          },
        });
      } else if (req.msg?.$case === "heartbeat" && (o.echoHeartbeats ?? true)) {
        stream.send({ msg: { $case: "heartbeat", value: { sentAt: new Date() } } });
      }
    });
  }
}

/** Polls `condition` every few ms until true; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
