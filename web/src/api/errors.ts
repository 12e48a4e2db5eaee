// Turns whatever a call threw into a sentence for the page.
import { Code, ConnectError } from "@connectrpc/connect";

export function isCode(err: unknown, code: Code): boolean {
  return err instanceof ConnectError && err.code === code;
}

export function isAbort(err: unknown): boolean {
  return (
    (err instanceof ConnectError && err.code === Code.Canceled) ||
    (err instanceof DOMException && err.name === "AbortError")
  );
}

/** A human-readable message; the raw server message when there is one. */
export function errorMessage(err: unknown): string {
  const e = ConnectError.from(err);
  const raw = e.rawMessage.trim();
  switch (e.code) {
    case Code.Unavailable:
    case Code.Unknown:
      if (/failed to fetch|networkerror|load failed|fetch failed/i.test(raw) || raw === "") {
        return "Cannot reach the orchestrator. Check that it is running and that this page's address is right.";
      }
      return raw;
    case Code.Unauthenticated:
      return "The admin token was not accepted.";
    case Code.PermissionDenied:
      return raw || "Not allowed.";
    case Code.DeadlineExceeded:
      return raw || "The orchestrator did not answer in time.";
    case Code.Unimplemented:
      return raw || "This orchestrator does not support this call yet.";
    default:
      return raw || `Request failed (${Code[e.code] ?? e.code}).`;
  }
}
