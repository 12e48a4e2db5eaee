#!/usr/bin/env node
// k8sdeploy-agent: reads its configuration from the environment (CONFIG.md), connects to the
// orchestrator and executes its commands against the cluster it runs in.
//
// Exit codes:
//   0  stopped by SIGTERM/SIGINT after a graceful shutdown, or superseded: the orchestrator
//      drained this connection with reconnect=false because a newer connection of the same agent
//      took over (another instance with the same token). In a Deployment the kubelet restarts the
//      container anyway; two instances sharing a token therefore keep replacing each other, which
//      the logs of both say.
//   1  configuration error (message on stderr), no usable Kubernetes configuration, or a crash
//   2  the orchestrator rejected the agent token (UNAUTHENTICATED / PERMISSION_DENIED)
//   130 a second SIGTERM/SIGINT cut the graceful shutdown short
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import { VersionApi } from "@kubernetes/client-node";
import { type AgentConfig, agentVersion, CONFIG_VARIABLES, ConfigError, describeConfig, loadConfig } from "./config.js";
import { AGENT_EXIT_CODES, FatalAgentError, runAgent } from "./connection/agent-runner.js";
import { createExecutors } from "./executors.js";
import { type HealthServer, startHealthServer } from "./health/health-server.js";
import { AgentHealth } from "./health/health-state.js";
import { loadKubeConfig } from "./kube.js";
import { captureProcessWarnings, createLogger, type Logger, routeGrpcLogs, scrubSecrets } from "./log.js";
import { AgentMetrics, CONTENT_TYPE as METRICS_CONTENT_TYPE } from "./observability/metrics.js";
import type { PreflightOptions } from "./registry/preflight.js";
import { SelfUpdateState } from "./update/self-update.js";

const warnings = captureProcessWarnings();

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--version") || argv.includes("-v")) {
    process.stdout.write(`${agentVersion()}\n`);
    return AGENT_EXIT_CODES.ok;
  }
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(usage());
    return AGENT_EXIT_CODES.ok;
  }

  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    warnings.flushAsText();
    process.stderr.write(`k8sdeploy-agent: ${error.message}\nSee \`k8sdeploy-agent --help\` for the variables.\n`);
    return AGENT_EXIT_CODES.config;
  }

  const log = createLogger({ level: config.logLevel });
  installCrashHandlers(log);
  routeGrpcLogs(log);
  warnings.routeTo(log);
  // grpc-js reads only lower-case proxy variables.
  Object.assign(process.env, config.grpcProxyEnv);
  log.info(describeConfig(config), "starting k8sdeploy-agent");

  let kc: ReturnType<typeof loadKubeConfig>;
  try {
    kc = loadKubeConfig();
  } catch (error) {
    log.fatal({ err: error }, "cannot load the Kubernetes configuration");
    process.stderr.write(`k8sdeploy-agent: ${(error as Error).message}\n`);
    return AGENT_EXIT_CODES.config;
  }
  const selfUpdate = new SelfUpdateState();
  const executors = createExecutors(kc, {
    selfUpdateState: selfUpdate,
    selfUpdate: { enabled: config.autoUpdate, namespace: config.podNamespace, deploymentName: config.agentDeployment },
    deploy: { preflight: preflightOptions(config) },
  });
  const versionApi = kc.makeApiClient(VersionApi);

  // Probes: the API server is asked for its version every 30 s (GET /version is open to every
  // authenticated caller); the connection state comes from the runner.
  const health = new AgentHealth();
  const metrics = new AgentMetrics(config.agentVersion);
  metrics.setSources({
    connected: () => health.readiness().checks.orchestrator?.state === "connected",
    apiServerOk: () => health.readiness().checks.apiServer?.ok === true,
  });
  let healthServer: HealthServer | undefined;
  if (config.healthListen) {
    try {
      healthServer = await startHealthServer(health, config.healthListen, {
        contentType: METRICS_CONTENT_TYPE,
        render: () => metrics.render(),
      });
    } catch (error) {
      log.fatal({ err: error }, "cannot listen for the probes (K8SDEPLOY_HEALTH_LISTEN)");
      return AGENT_EXIT_CODES.config;
    }
    log.info({ address: healthServer.address }, "probe endpoint listening (/livez, /readyz, /metrics)");
  }
  const probeApiServer = () => {
    const timeout = AbortSignal.timeout(10_000);
    void Promise.race([
      versionApi.getCode(),
      new Promise((_, reject) => timeout.addEventListener("abort", () => reject(new Error("timed out after 10 s")))),
    ]).then(
      () => health.apiServer(true),
      (error: unknown) => health.apiServer(false, error instanceof Error ? scrubSecrets(error.message) : "unreachable"),
    );
  };
  probeApiServer();
  const apiProbe = setInterval(probeApiServer, 30_000);
  apiProbe.unref();

  const stop = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      log.warn({ signal: name }, "second signal: exiting at once");
      process.exit(AGENT_EXIT_CODES.interrupted);
    }
    log.info({ signal: name }, "received signal; shutting down");
    health.shuttingDown();
    stop.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  try {
    for (;;) {
      const exit = await runAgent(config, executors, log, stop.signal, {
        kubernetesVersion: async () => (await versionApi.getCode()).gitVersion,
        onConnectionState: (state, server) => health.connection(state, server),
        metrics,
      });
      const updating = exit.reason === "superseded" ? selfUpdate.inProgress : undefined;
      if (updating !== undefined && !stop.signal.aborted) {
        // Our own update's new pod connected and took over: the expected hand-over. Keep watching
        // the rollout (the Deployment controller retires this pod once the new one is Ready); if
        // it rolls back instead, reconnect, so the cluster keeps a connected agent.
        log.info("superseded by the new agent pod of our own update; following the rollout before leaving");
        const result = await updating;
        if (result.state !== DeploymentState.DEPLOYMENT_STATE_ROLLED_BACK) {
          log.info({ message: result.message }, "agent update finished; exiting");
          return AGENT_EXIT_CODES.ok;
        }
        log.warn({ message: result.message }, "agent update rolled back; reconnecting");
        continue;
      }
      if (exit.reason === "superseded") {
        log.warn(
          { abandoned: exit.abandonedCommandIds },
          "exiting: superseded by a newer connection of this agent (is a second instance using the same token?)",
        );
      } else {
        log.info({ abandoned: exit.abandonedCommandIds }, "stopped");
      }
      break;
    }
    return AGENT_EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof FatalAgentError) {
      log.fatal({ code: error.code, server: error.server }, error.message);
      return AGENT_EXIT_CODES.authRejected;
    }
    log.fatal({ err: error }, "the agent failed");
    return AGENT_EXIT_CODES.crash;
  }
}

function preflightOptions(config: AgentConfig): PreflightOptions {
  return {
    mode: config.preflight,
    timeoutMs: config.preflightTimeoutSeconds * 1000,
    agentSecret: config.registrySecret ? { namespace: config.podNamespace, name: config.registrySecret } : undefined,
    registry: { caPem: config.registryCa, insecureRegistries: config.insecureRegistries },
  };
}

function installCrashHandlers(log: Logger): void {
  process.on("uncaughtException", (error) => {
    log.fatal({ err: error }, "uncaught exception");
    process.exit(AGENT_EXIT_CODES.crash);
  });
  process.on("unhandledRejection", (reason) => {
    log.fatal({ err: reason }, "unhandled promise rejection");
    process.exit(AGENT_EXIT_CODES.crash);
  });
}

function usage(): string {
  const rows = CONFIG_VARIABLES.map((v) => {
    const flags = [
      v.required === "yes" ? "required" : v.required === "one of" ? "one of the token variables" : "optional",
    ];
    if (v.default !== undefined) flags.push(`default ${v.default}`);
    return `  ${v.name}\n      ${v.description} (${flags.join(", ")})`;
  });
  return `k8sdeploy-agent ${agentVersion()}: dials out to the K8sDeploy orchestrator and executes its deploys.

Configuration comes from the environment:
${rows.join("\n")}

Exit codes: 0 stopped (SIGTERM/SIGINT) or superseded by a newer connection, 1 configuration error
or failure, 2 the orchestrator rejected the agent token.
`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `k8sdeploy-agent: ${scrubSecrets(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`,
    );
    process.exit(AGENT_EXIT_CODES.crash);
  },
);
