// Audit events: one JSON log line per admin action and per failed authentication, marked
// `audit: true` with an `event` name, who (`actor`: "admin", a deploy key id, or for failures
// the kind and claimed id of the credential), from where (`peer`), what (`event` and the ids it
// touched) and how it ended (`outcome`: ok or the gRPC status name). Secrets are never passed in:
// the fields are picked one by one below, never copied from a request or response.
import type { Logger } from "pino";
import { knownRpcError } from "../rpc/rpc-error.js";
import { grpcCodeName } from "../rpc/rpc-metrics.js";

export interface AuditEvent {
  /** e.g. `agent.create`, `deployment.cancel`, `auth.failed`. */
  event: string;
  actor: string;
  peer: string | undefined;
  /** "ok", or the gRPC status name of the refusal. */
  outcome: string;
  [field: string]: unknown;
}

export function audit(log: Logger, entry: AuditEvent, message = `audit: ${entry.event} ${entry.outcome}`): void {
  log.info({ audit: true, ...entry }, message);
}

/** The gRPC status name an error is answered with (INTERNAL for unexpected errors). */
export function outcomeOf(err: unknown): string {
  const known = knownRpcError(err);
  return known ? grpcCodeName(known.code) : "INTERNAL";
}

/** The message a refused call was answered with (RpcErrors never carry secrets); else undefined. */
export function reasonOf(err: unknown): string | undefined {
  return knownRpcError(err)?.message;
}
