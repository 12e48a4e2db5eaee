// The agent's reconnect loop: keeps one AgentService.Connect stream open to one of the configured
// orchestrator servers, fails over round robin, backs off between full rounds, and shuts down
// gracefully on `signal`.
import * as grpc from "@grpc/grpc-js";
import { Capability, type Drain, type Hello } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import type { AgentConfig } from "../config.js";
import type { Executors } from "../executor.js";
import { type Logger, scrubSecrets } from "../log.js";
import { observeJob } from "../observability/command-log.js";
import type { AgentMetrics } from "../observability/metrics.js";
import { Backoff, type BackoffOptions, sleep } from "./backoff.js";
import { CommandTracker, DEFAULT_MAX_FINISHED } from "./command-tracker.js";
import { jobFor } from "./dispatch.js";
import { KeyedSerializer } from "./keyed-serializer.js";
import { createAgentClient, isLoopback, ServerRotation } from "./servers.js";
import { type SessionEnd, StreamSession } from "./stream-session.js";

/** Process exit codes of k8sdeploy-agent (main.ts). */
export const AGENT_EXIT_CODES = {
  /** Stopped by SIGTERM/SIGINT, or superseded (drain with reconnect=false). */
  ok: 0,
  /** Invalid configuration (message on stderr) or no usable Kubernetes configuration. */
  config: 1,
  /** Unexpected failure. */
  crash: 1,
  /** The orchestrator rejected the agent token (UNAUTHENTICATED or PERMISSION_DENIED). */
  authRejected: 2,
  /** A second SIGTERM/SIGINT during the graceful shutdown. */
  interrupted: 130,
} as const;

/** The orchestrator refused the agent (UNAUTHENTICATED or PERMISSION_DENIED): retrying cannot help. */
export class FatalAgentError extends Error {
  readonly exitCode = AGENT_EXIT_CODES.authRejected;
  constructor(
    message: string,
    readonly code: grpc.status,
    readonly server: string,
  ) {
    super(message);
    this.name = "FatalAgentError";
  }
}

export type AgentExit =
  /** `signal` aborted and the shutdown finished. */
  | { reason: "stopped"; abandonedCommandIds: string[] }
  /** A newer connection of this agent took over (`drain` with reconnect=false); do not reconnect. */
  | { reason: "superseded"; drain: Drain; abandonedCommandIds: string[] };

export interface RunAgentOptions {
  /** Kubernetes server version for `hello` (best effort; failures and slowness give ""). */
  kubernetesVersion?: () => Promise<string>;
  /** Reconnect backoff (defaults: base 500 ms, cap 60 s, Math.random). */
  backoff?: BackoffOptions;
  /** A stream welcomed at least this long resets the backoff (default 60 s). */
  healthyResetMs?: number;
  /** After `signal`: how long running commands may take to finish and report (default 20 s). */
  shutdownGraceMs?: number;
  /** Length of a heartbeat "second" in ms (default 1000; tests shrink it). */
  heartbeatSecondMs?: number;
  /** Finished commands remembered for deduplication (default 1000). */
  maxFinishedCommands?: number;
  /** How long closing a stream waits for the server before cancelling it (default 2 s). */
  closeTimeoutMs?: number;
  /** How long `hello` waits for the Kubernetes version (default 3 s). */
  kubernetesVersionTimeoutMs?: number;
  /** Told when the loop connects, is welcomed, or loses the stream (the probes use it). */
  onConnectionState?: (state: "connecting" | "connected" | "disconnected", server: string) => void;
  /** Counts commands and connections, and reads the running commands (GET /metrics). */
  metrics?: AgentMetrics;
}

const FATAL_CODES = new Set<grpc.status>([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED]);

/**
 * Runs the agent until `signal` aborts (resolves `stopped` after the graceful shutdown) or the
 * orchestrator says this connection was superseded (resolves `superseded`). Rejects with
 * FatalAgentError when the orchestrator rejects the token.
 */
export async function runAgent(
  config: AgentConfig,
  executors: Executors,
  log: Logger,
  signal: AbortSignal,
  options: RunAgentOptions = {},
): Promise<AgentExit> {
  const tracker = new CommandTracker(
    { maxFinished: options.maxFinishedCommands ?? DEFAULT_MAX_FINISHED },
    {
      onEvictUndelivered: (id) =>
        log.warn({ commandId: id }, "forgot an undelivered command result (too many); a redelivery will run it again"),
      onJobError: (id, error) => log.error({ commandId: id, err: error }, "command failed with an unexpected error"),
    },
  );
  options.metrics?.setSources({ running: () => tracker.runningIds().length });
  const backoff = new Backoff(options.backoff);
  const random = options.backoff?.random ?? Math.random;
  const rotation = new ServerRotation(config.servers);
  const healthyResetMs = options.healthyResetMs ?? 60_000;
  const shutdownGraceMs = options.shutdownGraceMs ?? 20_000;
  const userAgent = `k8sdeploy-agent/${config.agentVersion}`;
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${config.token}`);

  for (const s of config.servers) {
    if (!s.tls && !isLoopback(s)) {
      log.warn({ server: s.url }, "plaintext http:// server: the agent token travels unencrypted; use https://");
    }
  }

  // `done` fires when the runner must stop: after the shutdown grace, or once everything settled.
  const done = new AbortController();
  let stopping = false;
  let current: StreamSession | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  const onStop = () => {
    if (stopping) return;
    stopping = true;
    const running = tracker.runningIds();
    const undelivered = tracker.undeliveredIds();
    log.info(
      { running, undelivered, graceMs: shutdownGraceMs },
      running.length + undelivered.length > 0
        ? "stopping: accepting no new commands; waiting for running commands to finish and report"
        : "stopping",
    );
    graceTimer = setTimeout(() => {
      log.warn(
        { running: tracker.runningIds(), undelivered: tracker.undeliveredIds() },
        "shutdown grace period over; leaving the rest to redelivery",
      );
      done.abort();
    }, shutdownGraceMs);
    void tracker.whenSettled().then(() => done.abort());
  };
  done.signal.addEventListener("abort", () => {
    if (graceTimer !== undefined) clearTimeout(graceTimer);
    current?.close();
  });
  if (signal.aborted) onStop();
  else signal.addEventListener("abort", onStop, { once: true });

  // Best effort: refreshed before every hello, but a reconnect waits for it (at most the timeout)
  // only while no version is known; afterwards the refresh runs in the background.
  let k8sVersion = "";
  let refreshing: Promise<void> | undefined;
  const kubernetesVersion = async (): Promise<string> => {
    const fetchVersion = options.kubernetesVersion;
    if (fetchVersion === undefined) return k8sVersion;
    refreshing ??= fetchVersion()
      .then((v) => {
        if (v) k8sVersion = v;
      })
      .catch((err: unknown) => {
        log.warn({ err }, "cannot read the Kubernetes version (GET /version); hello carries the last known one");
      })
      .finally(() => {
        refreshing = undefined;
      });
    if (k8sVersion === "") {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.kubernetesVersionTimeoutMs ?? 3000);
      });
      await Promise.race([refreshing, timeout]);
      clearTimeout(timer);
    }
    return k8sVersion;
  };

  const capabilities = [Capability.CAPABILITY_DEPLOY, Capability.CAPABILITY_DESCRIBE, Capability.CAPABILITY_ROLLBACK];
  if (config.autoUpdate) capabilities.push(Capability.CAPABILITY_SELF_UPDATE);
  const dispatchOptions = {
    autoUpdate: config.autoUpdate,
    agentVersion: config.agentVersion,
    workloads: new KeyedSerializer(),
  };

  try {
    while (!done.signal.aborted) {
      const endpoint = rotation.current();
      // Dial while the Kubernetes version is being read: TCP, TLS and HTTP/2 are then ready when
      // the hello is (start → connected is one API round trip shorter).
      const client = createAgentClient(endpoint, config.ca, userAgent);
      client.getChannel().getConnectivityState(true);
      const hello: Hello = {
        agentVersion: config.agentVersion,
        arch: process.arch,
        kubernetesVersion: await kubernetesVersion(),
        capabilities,
        autoUpdateEnabled: config.autoUpdate,
        instance: config.instance,
        namespace: config.podNamespace,
        runningCommandIds: tracker.runningIds(),
        agentDeployment: config.agentDeployment,
      };
      if (done.signal.aborted) {
        client.close();
        break;
      }
      const slog = log.child({ server: endpoint.url });
      slog.debug({ running: hello.runningCommandIds }, "connecting");
      options.onConnectionState?.("connecting", endpoint.url);
      const session = new StreamSession({
        client,
        metadata,
        hello,
        log: slog,
        heartbeatSecondMs: options.heartbeatSecondMs,
        closeTimeoutMs: options.closeTimeoutMs,
        onWelcome: (welcome, s) => {
          rotation.connected();
          options.onConnectionState?.("connected", endpoint.url);
          options.metrics?.connects.inc();
          slog.info(
            {
              agentId: welcome.agentId,
              replicaId: welcome.replicaId,
              heartbeatSeconds: welcome.heartbeatIntervalSeconds,
              resending: tracker.undeliveredIds(),
            },
            "connected to the orchestrator",
          );
          tracker.attach(s);
        },
        onResultAck: (commandId) => tracker.acknowledge(commandId),
        onCommand: (command) => {
          const known = tracker.state(command.id);
          if (stopping && known === undefined) {
            slog.info({ commandId: command.id }, "stopping: not accepting the command (it will be redelivered)");
            return undefined;
          }
          return () => {
            const job = observeJob(command, jobFor(command, executors, dispatchOptions), slog, options.metrics);
            const outcome = tracker.submit(command.id, job);
            slog.info(
              { commandId: command.id, type: command.payload?.$case ?? "unknown", outcome },
              outcome === "started" ? "command received" : "duplicate command (not executed again)",
            );
          };
        },
      });
      current = session;
      if (done.signal.aborted) session.close();
      let end: SessionEnd;
      try {
        end = await session.done;
      } finally {
        current = undefined;
        tracker.detach(session);
        client.close();
        options.onConnectionState?.("disconnected", endpoint.url);
      }
      options.metrics?.disconnects.inc({ reason: end.reason });

      if (end.reason === "stopped") break;
      if (end.reason === "failed" && FATAL_CODES.has(end.code)) {
        const details = scrubSecrets(end.details || grpc.status[end.code]);
        const rotate = `\`k8sdeploy agent rotate ${config.agentIdHint ?? "<id>"}\``;
        const message =
          end.code === grpc.status.UNAUTHENTICATED
            ? `the orchestrator rejected the agent token: ${details}. Create a new token with ${rotate} and store it in the Secret (k8sdeploy-agent, key token) or in ${config.tokenSource}, then restart the agent.`
            : `the orchestrator refused this agent (permission denied): ${details}. Check that the agent is enabled and its token not revoked; ${rotate} issues a new token.`;
        throw new FatalAgentError(message, end.code, endpoint.url);
      }
      if (end.reason === "drain") {
        const drain = end.drain;
        if (!drain.reconnect) {
          const abandoned = tracker.runningIds();
          slog.warn(
            { reason: drain.reason, abandoned },
            "superseded: a newer connection of this agent (same token, another instance?) took over; exiting without reconnecting",
          );
          return { reason: "superseded", drain, abandonedCommandIds: abandoned };
        }
        const next = rotation.skip();
        // At least reconnect_after_ms, plus a little jitter so drained agents do not all return at once.
        const delay = drain.reconnectAfterMs + Math.floor(random() * backoff.baseMs);
        slog.info(
          { reason: drain.reason, delayMs: delay, next: next.url },
          "drained by the orchestrator; reconnecting",
        );
        await sleep(delay, done.signal);
        continue;
      }

      if (end.welcome !== undefined && end.connectedMs >= healthyResetMs) backoff.reset();
      const { next, roundComplete } = rotation.fail();
      const delay = roundComplete ? backoff.next() : 0;
      const fields = { next: next.url, delayMs: delay, ...describeEnd(end) };
      if (end.reason === "failed" && end.code === grpc.status.UNIMPLEMENTED) {
        slog.error(
          fields,
          "the server does not implement AgentService: is K8SDEPLOY_SERVER the orchestrator's gRPC port?",
        );
      } else if (end.welcome !== undefined) {
        slog.warn(fields, "lost the connection to the orchestrator; reconnecting");
      } else {
        slog.warn(fields, "cannot connect to the orchestrator; retrying");
      }
      if (delay > 0) await sleep(delay, done.signal);
    }
    return { reason: "stopped", abandonedCommandIds: tracker.runningIds() };
  } finally {
    if (graceTimer !== undefined) clearTimeout(graceTimer);
    signal.removeEventListener("abort", onStop);
    if (!done.signal.aborted) done.abort();
  }
}

function describeEnd(end: SessionEnd): Record<string, unknown> {
  switch (end.reason) {
    case "failed":
      return { code: grpc.status[end.code] ?? end.code, details: scrubSecrets(end.details) };
    case "dead":
      return { reason: "no message from the server", silentMs: end.silentMs };
    case "closed":
      return { reason: "the server ended the stream" };
    default:
      return { reason: end.reason };
  }
}
