// The orchestrator's logger: pino, JSON lines on stderr (stdout stays free for CLI output).
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import pino, { type DestinationStream, type Logger } from "pino";
import type { Config } from "./config.js";

export type { Logger } from "pino";

/**
 * Paths pino replaces with "[redacted]" wherever they appear in a log object. Secrets must never
 * reach the logs; this is a safety net, not a licence to log request metadata or configs.
 */
export const redactPaths: readonly string[] = [
  "authorization",
  "token",
  "key",
  "adminToken",
  "redisUrl",
  "*.authorization",
  "*.token",
  "*.key",
  "*.adminToken",
  "*.redisUrl",
  "headers.authorization",
  "req.headers.authorization",
  "metadata.authorization",
];

export interface CreateLoggerOptions {
  /** Where to write; default stderr (see stderrDestination). */
  destination?: DestinationStream;
}

export function createLogger(
  config: Pick<Config, "logLevel"> & Partial<Pick<Config, "replicaId">>,
  options: CreateLoggerOptions = {},
): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { pid: process.pid, ...(config.replicaId ? { replica: config.replicaId } : {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...redactPaths], censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? stderrDestination(),
  );
}

/**
 * stderr, written asynchronously: a synchronous write blocks the whole process whenever whoever
 * reads the logs (a container runtime, a pipe) falls behind — under load that was a sixth of a busy
 * replica's time, with one line per deploy. What is still queued is written synchronously when
 * the process exits, process.exit() included, so nothing is lost on a normal stop.
 */
function stderrDestination(): DestinationStream {
  const destination = pino.destination({ dest: 2, sync: false });
  process.once("exit", () => {
    try {
      destination.flushSync();
    } catch {
      // stderr is gone (EPIPE): nothing can be written anyway
    }
  });
  return destination;
}

// ---------------------------------------------------------------------------------------------
// Nothing but JSON on stderr while serving: Node's own warnings (deprecations, experimental
// features) and grpc-js's diagnostics would otherwise be plain-text lines.

type NodeWarning = Error & { code?: string };

/** Where cli.ts sends Node's warnings: plain text as Node prints them, until serve routes them. */
export const processWarnings = {
  handle(warning: NodeWarning): void {
    process.stderr.write(
      `(node:${process.pid}) ${warning.code ? `[${warning.code}] ` : ""}${warning.name}: ${warning.message}\n`,
    );
  },
};

/** From now on Node's warnings are JSON lines of `log` (warn level). */
export function routeProcessWarnings(log: Logger): void {
  processWarnings.handle = (warning) =>
    log.warn(
      { source: "node", warning: { name: warning.name, code: warning.code, message: warning.message } },
      "node warning",
    );
}

/** grpc-js's own diagnostics (errors by default; more with GRPC_VERBOSITY/GRPC_TRACE) as JSON lines. */
export function routeGrpcLogs(log: Logger): void {
  const child = log.child({ source: "grpc-js" });
  const write =
    (level: "debug" | "info" | "warn") =>
    (...args: unknown[]) =>
      child[level](format(...args));
  grpc.setLogger({ debug: write("debug"), info: write("info"), error: write("warn") });
}
