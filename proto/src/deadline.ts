// The `k8sdeploy-deadline` metadata: when a caller stops waiting, as an absolute time.
//
// Why not `grpc-timeout` alone: grpc-js writes it when it picks a connection, and a client with more
// calls than the server's stream cap queues the rest inside HTTP/2 — so a call sent after waiting
// 9.8 s of its 10 s still claims 10 s. The orchestrator carried such calls out and their answers
// arrived after the caller had reported a failure: a deploy that "failed" and ran anyway. With this
// header the server sees the real deadline and refuses a call it cannot answer in time before doing
// anything. Clients put in it their deadline less a margin for the answer's way back, so the server
// stops starting work a little before the caller gives up.
//
// Absolute times need clocks that agree to well within a call's timeout (the action's calls allow
// 30 s; NTP keeps hosts within milliseconds, and GitHub OIDC tokens need the same). The header is
// honoured however far in the past it is: a call can wait seconds behind a busy caller's event loop
// or HTTP/2 queue, which a server cannot tell from a clock that is behind, and honouring it can only
// refuse a call — never carry out one its caller gave up on. (An earlier version ignored a header
// over 2 s in the past as clock skew; under load that let stale calls through on `grpc-timeout`.)
// The refusal names both causes (STALE_DEADLINE_MS).

export const DEADLINE_HEADER = "k8sdeploy-deadline";

/** A deadline this far in the past when a call arrives: it waited on the caller's side, or the caller's clock is behind. */
export const STALE_DEADLINE_MS = 2000;

/** Time kept for the answer to travel back: a tenth of the call's time, at most a second. */
export function returnMarginMs(timeoutMs: number): number {
  return Math.min(1000, Math.max(0, timeoutMs) / 10);
}

/** The header's value for a call that gives up at `deadline` (ms since the epoch), sent at `now`. */
export function deadlineHeaderValue(deadline: number, now = Date.now()): string {
  return String(Math.floor(deadline - returnMarginMs(deadline - now)));
}

export class InvalidDeadlineHeaderError extends Error {}

/**
 * The deadline a server should honour: the earlier of the transport's (`grpc-timeout`,
 * `connect-timeout-ms`) and the header's. Throws InvalidDeadlineHeaderError for a value that is not
 * a whole number of milliseconds since the epoch.
 */
export function effectiveDeadline(
  transportDeadline: number | undefined,
  header: string | undefined,
  now = Date.now(),
): number | undefined {
  if (header === undefined || header === "") return transportDeadline;
  if (!/^\d{1,15}$/.test(header)) {
    throw new InvalidDeadlineHeaderError(
      `${DEADLINE_HEADER} must be the caller's deadline in whole milliseconds since the Unix epoch, e.g. ${now + 10_000}`,
    );
  }
  const at = Number(header);
  return transportDeadline === undefined ? at : Math.min(at, transportDeadline);
}
