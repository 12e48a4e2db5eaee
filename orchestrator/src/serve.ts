// `k8sdeploy serve`: the app behind a gRPC and an HTTP server, with a graceful shutdown.
import { type App, createApp } from "./app.js";
import type { Config } from "./config.js";
import { createLogger, type Logger, routeGrpcLogs, routeProcessWarnings } from "./log.js";
import { type GrpcServerHandle, startGrpcServer } from "./server/grpc-server.js";
import { type HttpHandler, type HttpServerHandle, startHttpServer } from "./server/http-server.js";

export interface ServeOptions {
  /** Logger to use (default: createLogger(config), JSON on stderr). */
  log?: Logger;
  /**
   * Install SIGTERM/SIGINT handlers that stop() and exit the process (default true). Turn off
   * when embedding serve() in a test or another program; call stop() yourself.
   */
  handleSignals?: boolean;
  /** Mounted on the HTTP server after the built-in routes. */
  httpHandlers?: HttpHandler[];
}

export interface RunningServer {
  config: Config;
  log: Logger;
  app: App;
  grpc: GrpcServerHandle;
  http: HttpServerHandle;
  /** `host:port` actually bound (real port when the config said 0). */
  grpcAddress: string;
  httpAddress: string;
  /**
   * Graceful stop: health NOT_SERVING and /readyz 503, servers stop taking new calls, app
   * shutdown, open calls get K8SDEPLOY_SHUTDOWN_GRACE_SECONDS, then connections are closed.
   * Idempotent. Rejects if app.shutdown() failed (the servers are closed regardless).
   */
  stop(): Promise<void>;
}

export async function serve(config: Config, options: ServeOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger(config);
  if (!options.log) {
    routeProcessWarnings(log);
    routeGrpcLogs(log);
  }
  logAdminToken(config, log);

  const app = await createApp(config, log);
  let grpc: GrpcServerHandle | undefined;
  let http: HttpServerHandle | undefined;
  try {
    grpc = await startGrpcServer(config, app, log);
    http = await startHttpServer(config, app, log, [...app.httpHandlers, ...(options.httpHandlers ?? [])]);
  } catch (err) {
    log.fatal({ err }, "cannot start");
    await Promise.allSettled([grpc?.close(0), http?.close(0), app.shutdown()]);
    throw err;
  }
  const grpcServer = grpc;
  const httpServer = http;

  // Tests parse this line (msg "listening") to find the ports when started with port 0.
  log.info(
    {
      grpc: grpcServer.address,
      http: httpServer.address,
      tls: config.tls !== undefined,
      httpTls: config.httpTls !== undefined,
      store: config.redisUrl ? "redis" : "memory",
    },
    "listening",
  );

  const graceMs = config.shutdownGraceSeconds * 1000;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      log.info({ graceSeconds: config.shutdownGraceSeconds }, "shutting down");
      grpcServer.drain();
      httpServer.drain();
      // Stop taking new calls first (so nothing new reaches a closing store), let the app end its
      // agent streams, then wait for the servers up to the grace period.
      const closed = Promise.all([grpcServer.close(graceMs), httpServer.close(graceMs)]);
      let failure: unknown;
      try {
        await app.shutdown();
      } catch (err) {
        failure = err;
        log.error({ err }, "app shutdown failed");
      }
      await closed;
      log.info("stopped");
      if (failure !== undefined) throw failure;
    })();
    return stopping;
  };

  if (options.handleSignals ?? true) installSignalHandlers(log, stop, graceMs);

  return {
    config,
    log,
    app,
    grpc: grpcServer,
    http: httpServer,
    grpcAddress: grpcServer.address,
    httpAddress: httpServer.address,
    stop,
  };
}

function logAdminToken(config: Config, log: Logger): void {
  const source = config.adminTokenSource;
  if (source.kind === "env") {
    log.info("admin token from K8SDEPLOY_ADMIN_TOKEN");
    return;
  }
  // The path only: never the token.
  log.info({ path: source.path }, source.created ? "generated an admin token into a file" : "admin token from file");
  if (source.mode & 0o077) {
    log.warn(
      { path: source.path, mode: `0${source.mode.toString(8)}` },
      "admin token file is readable by others: chmod 600 it",
    );
  }
}

function installSignalHandlers(log: Logger, stop: () => Promise<void>, graceMs: number): void {
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
    received = signal;
    log.info({ signal }, "signal received");
    // Backstop in case something ignores the grace period (e.g. a hung store close).
    const backstop = setTimeout(() => {
      log.error("shutdown did not finish in time: exiting");
      process.exit(1);
    }, graceMs + 5000);
    stop().then(
      () => {
        clearTimeout(backstop);
        process.exit(0);
      },
      () => {
        clearTimeout(backstop);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
