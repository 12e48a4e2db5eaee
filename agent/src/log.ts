// Structured logs: pino JSON lines on stderr (stdout stays free), with secrets removed twice:
// pino redaction of known fields, and a last scrub of anything shaped like an agent token in the
// serialized line (error messages, metadata dumps, …) before it is written.
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { type DestinationStream, type Logger, pino } from "pino";
import type { LogLevel } from "./config.js";

export type { Logger } from "pino";

/** Field paths whose values are never logged. */
export const REDACTED_PATHS = [
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "metadata.authorization",
  "*.metadata.authorization",
  "config.token",
];

const TOKEN_SHAPE = /kda_[^\s"\\,;]+/g;

/** Replaces every `kda_…` token in `text` with `kda_[REDACTED]`. */
export function scrubSecrets(text: string): string {
  return text.replace(TOKEN_SHAPE, "kda_[REDACTED]");
}

export interface LogOptions {
  level?: LogLevel;
  /** Where JSON lines go (default: stderr). Tests pass a collector. */
  destination?: { write(line: string): unknown };
  /** Extra bindings on every line. */
  base?: Record<string, unknown>;
}

export function createLogger(options: LogOptions = {}): Logger {
  const target = options.destination ?? process.stderr;
  const destination: DestinationStream = {
    write(line: string) {
      target.write(scrubSecrets(line));
    },
  };
  return pino(
    {
      level: options.level ?? "info",
      base: { component: "k8sdeploy-agent", ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: "[REDACTED]" },
    },
    destination,
  );
}

/**
 * Sends grpc-js's own diagnostics (errors by default; more with GRPC_VERBOSITY/GRPC_TRACE) through
 * `log`, so they are JSON lines and pass the same secret scrubbing.
 */
export function routeGrpcLogs(log: Logger): void {
  const child = log.child({ source: "grpc-js" });
  const write =
    (level: "debug" | "info" | "warn") =>
    (...args: unknown[]) =>
      child[level](format(...args));
  grpc.setLogger({ debug: write("debug"), info: write("info"), error: write("warn") });
}
