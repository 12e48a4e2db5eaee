// One AgentService.Connect stream, from `hello` to its end: waits for `welcome`, acks and
// dispatches commands, sends heartbeats, and watches for a silent server. One timer per stream
// does both: every heartbeat interval it sends a heartbeat (once welcomed) and declares the stream
// dead if nothing was received for 3 intervals.
import type * as grpc from "@grpc/grpc-js";
import type {
  AgentServiceClient,
  Command,
  ConnectRequest,
  ConnectResponse,
  Drain,
  Hello,
  Welcome,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { Logger } from "../log.js";
import type { Outgoing, Sink } from "./command-tracker.js";

export const DEFAULT_HEARTBEAT_SECONDS = 20;
/** The stream is dead after this many heartbeat intervals without any message from the server. */
export const WATCHDOG_INTERVALS = 3;

export type SessionEnd =
  /** The server asked us to go (`drain`). */
  | { reason: "drain"; drain: Drain; welcome?: Welcome; connectedMs: number }
  /** The call failed with a non-OK status (including connection failures). */
  | { reason: "failed"; code: grpc.status; details: string; welcome?: Welcome; connectedMs: number }
  /** The server ended the call with OK status without draining. */
  | { reason: "closed"; welcome?: Welcome; connectedMs: number }
  /** Nothing received for WATCHDOG_INTERVALS heartbeat intervals. */
  | { reason: "dead"; silentMs: number; welcome?: Welcome; connectedMs: number }
  /** Closed locally with `close()`. */
  | { reason: "stopped"; welcome?: Welcome; connectedMs: number };

export interface SessionDeps {
  client: AgentServiceClient;
  metadata: grpc.Metadata;
  hello: Hello;
  log: Logger;
  /** The server accepted the stream. */
  onWelcome: (welcome: Welcome, session: StreamSession) => void;
  /**
   * A command arrived. Return a function that starts (or re-answers) it, called right after the
   * ack is written; or undefined to ignore the command without acking it (while stopping).
   */
  onCommand: (command: Command) => (() => void) | undefined;
  /** The orchestrator stored the final message of this command. */
  onResultAck?: (commandId: string) => void;
  /** Length of one heartbeat "second" in ms (1000; tests shrink it). */
  heartbeatSecondMs?: number;
  /** How long `close()` waits for the server to end the call after our half-close. */
  closeTimeoutMs?: number;
  now?: () => number;
}

export class StreamSession implements Sink {
  private readonly call: grpc.ClientDuplexStream<ConnectRequest, ConnectResponse>;
  private readonly now: () => number;
  private readonly secondMs: number;
  private welcome: Welcome | undefined;
  private welcomedAt: number | undefined;
  private lastReceived: number;
  private intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private ended: SessionEnd | undefined;
  private halfClosed = false;
  private readonly pendingWrites = new Set<(ok: boolean) => void>();
  private resolveEnd!: (end: SessionEnd) => void;
  readonly done: Promise<SessionEnd>;

  constructor(private readonly deps: SessionDeps) {
    this.now = deps.now ?? Date.now;
    this.secondMs = deps.heartbeatSecondMs ?? 1000;
    this.intervalMs = DEFAULT_HEARTBEAT_SECONDS * this.secondMs;
    this.lastReceived = this.now();
    this.done = new Promise((resolve) => {
      this.resolveEnd = resolve;
    });
    this.call = deps.client.connect(deps.metadata);
    this.call.on("data", (message: ConnectResponse) => this.onMessage(message));
    // 'error' carries the same status as 'status'; it must have a listener or it would crash.
    this.call.on("error", () => {});
    this.call.on("status", (status: grpc.StatusObject) => {
      const settle = () => {
        if (status.code === 0) this.finish({ reason: "closed", ...this.common() });
        else this.finish({ reason: "failed", code: status.code, details: status.details, ...this.common() });
      };
      // grpc-js emits 'status' right after queueing the end of the readable side; messages still
      // buffered there (e.g. a `drain` followed at once by the end of the call) must be handled
      // first, or a superseded agent would mistake the drain for a lost connection.
      if (this.call.readableEnded) {
        settle();
      } else {
        this.call.once("end", settle);
        setTimeout(settle, 1000).unref();
      }
    });
    void this.write({ $case: "hello", value: deps.hello });
    this.startTimer();
  }

  /** The accepted stream's welcome, once received. */
  get welcomed(): Welcome | undefined {
    return this.welcome;
  }

  /** True when the orchestrator acknowledges stored results (`welcome.acks_results`). */
  get acksResults(): boolean {
    return this.welcome?.acksResults === true;
  }

  /** Sink for the command tracker: resolves true once the message is written to this stream. */
  send(message: Outgoing): Promise<boolean> {
    if (this.ended !== undefined || this.halfClosed || this.welcome === undefined) return Promise.resolve(false);
    return this.write(message);
  }

  /** Ends the stream from our side: half-close (flushes queued writes), then cancel after a grace period. */
  close(): void {
    this.finish({ reason: "stopped", ...this.common() });
  }

  private common(): { welcome?: Welcome; connectedMs: number } {
    return {
      welcome: this.welcome,
      connectedMs: this.welcomedAt === undefined ? 0 : this.now() - this.welcomedAt,
    };
  }

  private write(message: Outgoing): Promise<boolean> {
    if (this.ended !== undefined || this.halfClosed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const settle = (ok: boolean) => {
        if (this.pendingWrites.delete(settle)) resolve(ok);
      };
      this.pendingWrites.add(settle);
      try {
        this.call.write({ msg: message }, (error: Error | null | undefined) => settle(!error));
      } catch {
        settle(false);
      }
    });
  }

  private onMessage(message: ConnectResponse): void {
    if (this.ended !== undefined) return;
    this.lastReceived = this.now();
    const msg = message.msg;
    switch (msg?.$case) {
      case "welcome": {
        if (this.welcome !== undefined) {
          this.deps.log.warn("orchestrator sent a second welcome; ignored");
          return;
        }
        this.welcome = msg.value;
        this.welcomedAt = this.now();
        const seconds =
          msg.value.heartbeatIntervalSeconds > 0 ? msg.value.heartbeatIntervalSeconds : DEFAULT_HEARTBEAT_SECONDS;
        this.intervalMs = seconds * this.secondMs;
        this.startTimer();
        this.deps.onWelcome(msg.value, this);
        return;
      }
      case "command": {
        const command = msg.value;
        const start = this.deps.onCommand(command);
        if (start === undefined) return;
        void this.write({ $case: "ack", value: { commandId: command.id } });
        start();
        return;
      }
      case "heartbeat":
        return;
      case "resultAck":
        this.deps.onResultAck?.(msg.value.commandId);
        return;
      case "drain":
        this.finish({ reason: "drain", drain: msg.value, ...this.common() });
        return;
      default:
        this.deps.log.debug("ignoring an unknown message from the orchestrator (newer protocol?)");
    }
  }

  /** (Re)starts the single per-stream timer with the current interval. */
  private startTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), this.intervalMs);
  }

  private tick(): void {
    if (this.ended !== undefined) return;
    const silentMs = this.now() - this.lastReceived;
    if (silentMs >= WATCHDOG_INTERVALS * this.intervalMs) {
      this.finish({ reason: "dead", silentMs, ...this.common() }, { cancel: true });
      return;
    }
    if (this.welcome !== undefined) void this.write({ $case: "heartbeat", value: { sentAt: new Date() } });
  }

  private finish(end: SessionEnd, how: { cancel?: boolean } = {}): void {
    if (this.ended !== undefined) return;
    this.ended = end;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    const callDone = end.reason === "failed" || end.reason === "closed";
    if (callDone) {
      this.failPendingWrites();
      this.resolveEnd(end);
      return;
    }
    if (how.cancel) {
      this.call.cancel();
      this.failPendingWrites();
      this.resolveEnd(end);
      return;
    }
    // drain / stopped: half-close so queued writes (results) are flushed, give the server a moment
    // to end the call, then cancel whatever is left.
    this.halfClosed = true;
    const grace = setTimeout(() => this.call.cancel(), this.deps.closeTimeoutMs ?? 2000);
    this.call.once("status", () => clearTimeout(grace));
    const settled = new Promise<void>((resolve) => this.call.once("status", () => resolve()));
    try {
      this.call.end();
    } catch {
      this.call.cancel();
    }
    void settled.then(() => {
      this.failPendingWrites();
      this.resolveEnd(end);
    });
  }

  private failPendingWrites(): void {
    for (const settle of [...this.pendingWrites]) settle(false);
  }
}
