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
// Absolute times need clocks that roughly agree. A call is never sent after its caller's deadline, so
// a header that claims the deadline passed long ago says the clocks disagree, not that the call is
// stale: such a header is ignored (CLOCK_SKEW_TOLERANCE_MS) and `grpc-timeout` alone applies.

export const DEADLINE_HEADER = "k8sdeploy-deadline";

/** A header more than this far in the past is taken for clock skew and ignored. */
export const CLOCK_SKEW_TOLERANCE_MS = 2000;

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
  if (at < now - CLOCK_SKEW_TOLERANCE_MS) return transportDeadline;
  return transportDeadline === undefined ? at : Math.min(at, transportDeadline);
}
