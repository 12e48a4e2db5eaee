// Follows AdminService.WatchDeployments and keeps going: every entry's cursor is remembered, and
// after a drop the stream is reopened from the last cursor (the server replays what was missed)
// with exponential backoff and jitter. Without a cursor (nothing received yet, or the server no
// longer knows it) a snapshot from ListDeployments is taken instead, once the stream is open
// and once more shortly after, closing the window in which a change could slip between the two.
// No Solid here: the store (live-deployments.ts) feeds signals from the callbacks.
import { Code } from "@connectrpc/connect";
import type {
  ListDeploymentsRequest,
  ListDeploymentsResponse,
  WatchDeploymentsRequest,
  WatchDeploymentsResponse,
} from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import type { DeploymentState } from "@k8sdeploy/proto/es/k8sdeploy/v1/types_pb.js";
import { errorMessage, isCode } from "../api/errors.js";

type Init<T> = Partial<Omit<T, "$typeName" | "$unknown">>;

export interface FollowApi {
  watch(request: Init<WatchDeploymentsRequest>, signal: AbortSignal): AsyncIterable<WatchDeploymentsResponse>;
  list(request: Init<ListDeploymentsRequest>, signal: AbortSignal): Promise<ListDeploymentsResponse>;
}

export interface FollowFilter {
  agentId: string;
  namespace: string;
  states: DeploymentState[];
}

export type FollowStatus =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "reconnecting"; error: string; retryAt: number }
  | { kind: "stopped"; error: string };

export interface FollowCallbacks {
  /** A page of ListDeployments (the first page, replacing nothing: merge it). */
  snapshot(response: ListDeploymentsResponse): void;
  snapshotError(message: string): void;
  change(entry: WatchDeploymentsResponse): void;
  status(status: FollowStatus): void;
  /** The cursor after each entry (for tests and diagnostics). */
  cursor?(cursor: string): void;
}

export interface FollowOptions {
  pageSize?: number;
  /** Delay before reconnect attempt `n` (1-based), ms. */
  backoff?: (attempt: number) => number;
  /** How long an open stream with no error counts as live, ms. */
  liveAfterMs?: number;
  /** Second snapshot after the stream opened, ms (0: none). */
  recheckAfterMs?: number;
  /** Resolves early to cut a backoff wait short (e.g. the browser came back online). */
  wake?: (signal: AbortSignal) => Promise<void>;
  /** Resume from this cursor instead of starting fresh. */
  cursor?: string;
}

export const defaultBackoff = (attempt: number): number => {
  const base = Math.min(15_000, 500 * 2 ** Math.min(attempt - 1, 10));
  return Math.round(base * (0.6 + Math.random() * 0.4));
};

function sleep(ms: number, signal: AbortSignal, wake?: (signal: AbortSignal) => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const inner = new AbortController();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      inner.abort();
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    wake?.(inner.signal).then(done, () => {});
  });
}

/** Runs until `signal` aborts or the server rejects the credentials. */
export async function followDeployments(
  api: FollowApi,
  filter: FollowFilter,
  signal: AbortSignal,
  callbacks: FollowCallbacks,
  options: FollowOptions = {},
): Promise<void> {
  const backoff = options.backoff ?? defaultBackoff;
  const liveAfterMs = options.liveAfterMs ?? 600;
  const recheckAfterMs = options.recheckAfterMs ?? 2000;
  let cursor = options.cursor ?? "";
  let failures = 0;

  const takeSnapshot = async (attemptSignal: AbortSignal) => {
    try {
      const response = await api.list(
        {
          agentId: filter.agentId,
          namespace: filter.namespace,
          states: filter.states,
          pageSize: options.pageSize ?? 50,
        },
        attemptSignal,
      );
      if (!attemptSignal.aborted) callbacks.snapshot(response);
    } catch (err) {
      if (!attemptSignal.aborted && !isCode(err, Code.Unauthenticated)) callbacks.snapshotError(errorMessage(err));
    }
  };

  while (!signal.aborted) {
    const attempt = new AbortController();
    const abortAttempt = () => attempt.abort();
    signal.addEventListener("abort", abortAttempt, { once: true });
    const timers: ReturnType<typeof setTimeout>[] = [];
    let lastError = "";
    const openedAt = Date.now();
    callbacks.status({ kind: "connecting" });
    try {
      const stream = api.watch({ agentId: filter.agentId, namespace: filter.namespace, cursor }, attempt.signal);
      // The server sends nothing until the first change; a call still open after a moment (no
      // refused connection, no error) is as live as it gets.
      timers.push(setTimeout(() => callbacks.status({ kind: "live" }), liveAfterMs));
      if (cursor === "") {
        void takeSnapshot(attempt.signal);
        if (recheckAfterMs > 0) timers.push(setTimeout(() => void takeSnapshot(attempt.signal), recheckAfterMs));
      }
      for await (const entry of stream) {
        failures = 0;
        if (entry.cursor !== "") {
          cursor = entry.cursor;
          callbacks.cursor?.(cursor);
        }
        callbacks.change(entry);
        callbacks.status({ kind: "live" });
      }
      lastError = "The live feed ended; reconnecting.";
    } catch (err) {
      if (signal.aborted) break;
      if (isCode(err, Code.Unauthenticated)) {
        callbacks.status({ kind: "stopped", error: errorMessage(err) });
        break;
      }
      if (cursor !== "" && (isCode(err, Code.InvalidArgument) || isCode(err, Code.OutOfRange))) {
        // The feed no longer knows our position: start over from a fresh snapshot.
        cursor = "";
      }
      lastError = errorMessage(err);
    } finally {
      for (const t of timers) clearTimeout(t);
      signal.removeEventListener("abort", abortAttempt);
      attempt.abort();
    }
    if (signal.aborted) break;
    // A stream that stayed up a while was healthy: start the backoff over.
    if (Date.now() - openedAt > 10_000) failures = 0;
    failures += 1;
    const delay = backoff(failures);
    callbacks.status({ kind: "reconnecting", error: lastError, retryAt: Date.now() + delay });
    await sleep(delay, signal, options.wake);
  }
}
