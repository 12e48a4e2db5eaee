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

type NodeWarning = Error & { code?: string };

/**
 * Takes over Node's warning output (deprecations such as DEP0040 punycode, which a dependency
 * triggers while the bundle loads under Node 24): warnings are held until `routeTo` gives them a
 * logger, then written as JSON lines. Call it synchronously while the main module is evaluated:
 * Node emits warnings on the next tick, so the ones caused by loading the modules are caught too.
 */
export function captureProcessWarnings(): { routeTo(log: Logger): void; flushAsText(): void } {
  const held: NodeWarning[] = [];
  let sink: ((w: NodeWarning) => void) | undefined;
  process.removeAllListeners("warning");
  process.on("warning", (warning: NodeWarning) => {
    // grpc-js sets an IP address as TLS servername for https://<ip> servers (DEP0123): harmless.
    if (warning.code === "DEP0123") return;
    if (sink) sink(warning);
    else held.push(warning);
  });
  const drain = (to: (w: NodeWarning) => void) => {
    sink = to;
    for (const w of held.splice(0)) to(w);
  };
  return {
    routeTo: (log) =>
      drain((w) =>
        log.warn(
          { source: "node", warning: { name: w.name, code: w.code, message: scrubSecrets(w.message) } },
          "node warning",
        ),
      ),
    // Before a logger exists (a configuration error): as Node would have printed them.
    flushAsText: () =>
      drain((w) =>
        process.stderr.write(`(node:${process.pid}) ${w.code ? `[${w.code}] ` : ""}${w.name}: ${w.message}\n`),
      ),
  };
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
