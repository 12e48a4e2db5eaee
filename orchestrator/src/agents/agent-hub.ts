// The agent streams held by this replica. A newer connection of an agent supersedes the older
// one on any replica (newest wins: a restarted agent pod must not wait for a half-dead TCP
// connection to time out). One timer per process, not per agent, checks liveness and re-reads
// queues in case a cross-replica notification was lost: after the bus reconnected (`resync`) every
// queue, else each queue once every few minutes, a few at a time, so that an idle fleet costs
// almost nothing and no burst stalls the event loop.
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import type { ConnectRequest, ConnectResponse, Hello } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { Logger } from "pino";
import type { Authenticator } from "../auth/authenticate.js";
import { bearerToken } from "../auth/authenticate.js";
import { AGENT_TOKEN_PREFIX, presentedSecretHash } from "../auth/secrets.js";
import type { Outcomes } from "../deploy/outcome.js";
import { newConnectionId } from "../ids.js";
import type { Metrics } from "../metrics.js";
import { RpcError } from "../rpc/rpc-error.js";
import type { BusMessage, Store, Subscription } from "../store/store.js";
import { AgentSession, DrainReason } from "./agent-session.js";
import { HEARTBEAT_INTERVAL_SECONDS } from "./connection-state.js";
import { TokenExpiry } from "./token-expiry.js";

const HELLO_TIMEOUT_MS = 10_000;
const SWEEP_INTERVAL_MS = 10_000;
const SILENT_LIMIT_MS = (HEARTBEAT_INTERVAL_SECONDS * 3 + 5) * 1000;
/** Every queue is re-read at least this often anyway (a wake-up lost without the bus noticing). */
const REPUMP_INTERVAL_MS = 300_000;
/** Queued re-reads run this many at a time, every PUMP_TICK_MS (1 000/s). */
const PUMP_BATCH = 100;
const PUMP_TICK_MS = 100;

export interface AgentHubOptions {
  store: Store;
  auth: Authenticator;
  replicaId: string;
  log: Logger;
  metrics: Metrics;
  outcomes: Outcomes;
}

type Call = grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>;

export class AgentHub {
  private readonly sessions = new Map<string, AgentSession>();
  private subscription: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  /** Agents whose queue is to be re-read (in order, each once). */
  private readonly toPump = new Set<string>();
  private shuttingDown = false;
  private readonly tokens: TokenExpiry;

  constructor(private readonly options: AgentHubOptions) {
    this.tokens = new TokenExpiry(options.store, options.log);
  }

  async start(): Promise<void> {
    this.subscription = await this.options.store.bus.subscribe((m) => this.onBus(m));
    this.timer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  get connectedCount(): number {
    return this.sessions.size;
  }

  /** Agent versions of the streams held here (metrics, read when scraped). */
  *streamVersions(): IterableIterator<string> {
    for (const session of this.sessions.values()) yield session.hello.agentVersion;
  }

  /** grpc-js handler for AgentService.Connect. */
  readonly connect = (call: Call): void => {
    const { log } = this.options;
    const buffered: ConnectRequest[] = [];
    let session: AgentSession | undefined;
    let helloReceived = false;
    let gone = false;
    const reject = (code: grpc.status, details: string) => {
      if (gone) return;
      gone = true;
      clearTimeout(helloTimer);
      call.emit("error", { code, details });
    };
    const helloTimer = setTimeout(
      () => reject(grpc.status.INVALID_ARGUMENT, `no hello within ${HELLO_TIMEOUT_MS / 1000} s`),
      HELLO_TIMEOUT_MS,
    );
    const authorization = call.metadata.get("authorization")[0];
    const agentPromise = this.options.auth.agent(typeof authorization === "string" ? authorization : undefined);
    agentPromise.catch(() => {}); // handled when hello arrives; avoid an unhandled rejection meanwhile

    call.on("data", (request: ConnectRequest) => {
      if (session) {
        this.handle(session, request);
        return;
      }
      if (helloReceived) {
        buffered.push(request);
        return;
      }
      if (request.msg?.$case !== "hello") {
        reject(grpc.status.INVALID_ARGUMENT, "the first message on the stream must be hello");
        return;
      }
      helloReceived = true;
      const hello = request.msg.value;
      agentPromise.then(
        async (agent) => {
          clearTimeout(helloTimer);
          if (gone) return;
          try {
            session = await this.open(agent.id, hello, call);
          } catch (err) {
            log.warn({ err, agentId: agent.id }, "accepting an agent stream failed");
            reject(grpc.status.UNAVAILABLE, "the orchestrator could not register the stream; reconnect");
            return;
          }
          const tokenHash = presentedSecretHash(
            AGENT_TOKEN_PREFIX,
            bearerToken(typeof authorization === "string" ? authorization : undefined) ?? "",
          );
          if (tokenHash) this.tokens.track(session, tokenHash, agent);
          for (const early of buffered.splice(0)) this.handle(session, early);
        },
        (err: unknown) => {
          const e = err instanceof RpcError ? err : new RpcError(grpc.status.INTERNAL, "internal error");
          if (!(err instanceof RpcError)) log.error({ err }, "authenticating an agent failed");
          else log.info({ reason: e.message }, "agent connection refused");
          reject(e.code, e.message);
        },
      );
    });
    const onGone = () => {
      gone = true;
      clearTimeout(helloTimer);
      session?.markClosed();
    };
    call.on("end", () => {
      onGone();
      call.end();
    });
    call.on("cancelled", onGone);
    call.on("error", onGone);
    call.on("close", onGone);
  };

  private handle(session: AgentSession, request: ConnectRequest): void {
    session.receive(request);
  }

  private async open(agentId: string, hello: Hello, call: Call): Promise<AgentSession> {
    const { store, replicaId, log, metrics, outcomes } = this.options;
    const connectionId = newConnectionId();
    const session = new AgentSession(
      agentId,
      connectionId,
      hello,
      call,
      { store, replicaId, log, metrics, outcomes },
      (s) => this.onSessionClosed(s),
    );
    // Spread the periodic re-reads of the fleet over the interval.
    session.lastPumpedAt = Date.now() - Math.floor(Math.random() * REPUMP_INTERVAL_MS);
    const previous = this.sessions.get(agentId);
    this.sessions.set(agentId, session);
    previous?.drain(DrainReason.DRAIN_REASON_SUPERSEDED, false);
    metrics.agentsConnected.set(this.sessions.size);
    try {
      const now = new Date();
      await store.agents.updateAgent(agentId, {
        hello: {
          version: hello.agentVersion,
          arch: hello.arch,
          kubernetesVersion: hello.kubernetesVersion,
          autoUpdateEnabled: hello.autoUpdateEnabled,
          capabilities: hello.capabilities,
          instance: hello.instance,
          namespace: hello.namespace,
          agentDeployment: hello.agentDeployment,
        },
        connectedSince: now,
        lastSeenAt: now,
        replicaId,
        connectionId,
      });
      await store.bus.publish({ type: "agent-connected", agentId, connectionId });
    } catch (err) {
      session.markClosed();
      throw err;
    }
    log.info(
      { agentId, connectionId, version: hello.agentVersion, arch: hello.arch, instance: hello.instance },
      "agent connected",
    );
    session.welcome();
    await session.pump(true);
    return session;
  }

  private onSessionClosed(session: AgentSession): void {
    const { store, log, metrics } = this.options;
    const current = this.sessions.get(session.agentId);
    if (current === session) this.sessions.delete(session.agentId);
    this.tokens.forget(session.agentId, session);
    metrics.agentsConnected.set(this.sessions.size);
    log.info({ agentId: session.agentId, connectionId: session.connectionId }, "agent disconnected");
    // A newer local session owns the record now; while shutting down, shutdown() records them all.
    if ((current !== undefined && current !== session) || this.shuttingDown) return;
    store.agents
      .releaseAgent(session.agentId, session.connectionId, new Date())
      .catch((err: unknown) => log.warn({ err, agentId: session.agentId }, "recording an agent disconnect failed"));
  }

  private onBus(message: BusMessage): void {
    switch (message.type) {
      case "queued":
        void this.sessions.get(message.agentId)?.pump(false);
        return;
      case "resync":
        // Wake-ups may have been lost while the bus was away: re-read every queue, paced.
        for (const id of this.sessions.keys()) this.toPump.add(id);
        this.schedulePumps();
        return;
      case "agent-connected": {
        const session = this.sessions.get(message.agentId);
        if (session && session.connectionId !== message.connectionId) {
          this.options.log.info({ agentId: message.agentId }, "agent reconnected elsewhere; closing the older stream");
          session.drain(DrainReason.DRAIN_REASON_SUPERSEDED, false);
        }
        return;
      }
      case "agent-token-rotated":
        void this.tokens.recheck(message.agentId);
        return;
      case "agent-revoked":
        this.sessions.get(message.agentId)?.fail(grpc.status.UNAUTHENTICATED, `agent ${message.agentId} was revoked`);
        return;
      default:
        return;
    }
  }

  private sweep(): void {
    const now = Date.now();
    this.tokens.sweep(now);
    for (const session of this.sessions.values()) {
      if (now - session.lastHeardAt > SILENT_LIMIT_MS) {
        this.options.log.warn({ agentId: session.agentId }, "agent silent for too long; closing its stream");
        session.fail(grpc.status.UNAVAILABLE, "no heartbeat from the agent; reconnect");
        continue;
      }
      if (now - session.lastPumpedAt > REPUMP_INTERVAL_MS) this.toPump.add(session.agentId);
    }
    this.schedulePumps();
  }

  /** Re-reads the queued agents' queues, PUMP_BATCH every PUMP_TICK_MS. */
  private schedulePumps(): void {
    if (this.pumpTimer || this.toPump.size === 0 || this.shuttingDown) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      let n = 0;
      for (const id of this.toPump) {
        this.toPump.delete(id);
        void this.sessions.get(id)?.pump(false);
        if (++n >= PUMP_BATCH) break;
      }
      this.schedulePumps();
    }, PUMP_TICK_MS);
    this.pumpTimer.unref();
  }

  /** Tells every agent to reconnect (elsewhere) and closes the streams. */
  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    clearInterval(this.timer);
    clearTimeout(this.pumpTimer);
    this.subscription?.close();
    const sessions = [...this.sessions.values()];
    for (const session of sessions) {
      // Spread reconnects so the surviving replicas are not hit all at once.
      session.drain(DrainReason.DRAIN_REASON_SHUTDOWN, true, Math.floor(Math.random() * 2000));
    }
    // Recorded here, before the store closes (the sessions' own bookkeeping is skipped while shutting
    // down): each record is cleared only if it still names this replica's connection, since a
    // drained agent may have reconnected elsewhere already.
    const now = new Date();
    const results = await Promise.allSettled(
      sessions.map((s) => this.options.store.agents.releaseAgent(s.agentId, s.connectionId, now)),
    );
    const failed = results.filter((r) => r.status === "rejected").length;
    if (failed > 0) {
      const first = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      this.options.log.warn(
        { failed, agents: sessions.length, err: first?.reason },
        "could not record the disconnect of some agents (they show as offline within a minute anyway)",
      );
    }
    // Let messages the agents sent before the drain finish storing (bounded by their own retries).
    await Promise.race([Promise.allSettled(sessions.map((s) => s.settled())), sleep(2000, undefined, { ref: false })]);
  }
}
