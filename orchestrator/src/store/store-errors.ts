// Which failures mean "the store is unreachable right now" (retry later), as opposed to a bug.
// The RPC adapters answer them with UNAVAILABLE, which callers (the action, the CLI, the agent's
// reconnect loop) retry; anything else stays INTERNAL.

import * as redis from "redis";

/** Thrown by a store that knows it cannot serve now. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
}

// node-redis 6 error classes raised while Redis (or a cluster node) is down or restarting: the
// socket is gone, a command is refused while the connection is down (ClientOfflineError: the store
// disables the offline queue, redis-client.ts), or a timeout fired.
const UNAVAILABLE_CLASSES: readonly (abstract new (...args: never[]) => Error)[] = [
  StoreUnavailableError,
  redis.TimeoutError,
  redis.ConnectionTimeoutError,
  redis.SocketTimeoutError,
  redis.SocketClosedUnexpectedlyError,
  redis.ClientClosedError,
  redis.ClientOfflineError,
  redis.DisconnectsClientError,
  redis.ReconnectStrategyError,
  redis.RootNodesUnavailableError,
];

/** Redis replies that mean "not now": loading the dataset after a restart, a failover in progress. */
const UNAVAILABLE_REPLIES = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS)\b/;

export function isStoreUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (UNAVAILABLE_CLASSES.some((c) => err instanceof c)) return true;
  if (UNAVAILABLE_REPLIES.test(err.message)) return true;
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT";
}

export const STORE_UNAVAILABLE_MESSAGE =
  "the orchestrator's store (Redis) is unreachable right now; nothing was changed — retry in a few seconds";
