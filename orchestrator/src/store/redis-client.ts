// Connections of the Redis store: creation with logged (never thrown) connection errors and a
// bounded reconnect backoff, plus small helpers shared by the Redis modules.
import { createClient, type RedisClientType } from "redis";

export type RedisClient = RedisClientType;

/** The subset of a pino-style logger the store uses. */
export interface StoreLog {
  warn(obj: object, msg: string): void;
  /** Told about every connection error (k8sdeploy_redis_errors_total), before log throttling. */
  redisError?(connection: string): void;
}

export const silentLog: StoreLog = { warn: () => {} };

/** Reconnect delay: 50 ms doubling up to 2 s, with jitter; never gives up. */
export function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** Math.min(retries, 6), 2000) + Math.floor(Math.random() * 50);
}

/**
 * Attaches an error listener (an unhandled 'error' event would crash the process) that logs at
 * warn level, at most once per distinct message every 10 s so that a Redis outage does not
 * flood the log. The URL is never logged (it may carry a password).
 */
export function logErrors(client: RedisClient, log: StoreLog, connection: string): void {
  const lastLogged = new Map<string, number>();
  client.on("error", (err: unknown) => {
    log.redisError?.(connection);
    const message = errorMessage(err);
    const now = Date.now();
    if ((lastLogged.get(message) ?? 0) > now - 10_000) return;
    lastLogged.set(message, now);
    log.warn({ connection, err: message }, "redis connection error");
  });
}

export function newClient(url: string, name: string, log: StoreLog): RedisClient {
  const client = createClient({
    url,
    name,
    socket: { reconnectStrategy: reconnectDelay, connectTimeout: 5000 },
  });
  logErrors(client, log, "main");
  return client;
}

/** A second connection with the same options (for blocking reads or Pub/Sub), not yet connected. */
export function duplicateClient(client: RedisClient, log: StoreLog, connection: string): RedisClient {
  const dup = client.duplicate();
  logErrors(dup, log, connection);
  return dup;
}

/** Closes gracefully when possible (pending replies are awaited, at most `ms`), else destroys. */
export async function shutdownClient(client: RedisClient, ms = 2000): Promise<void> {
  if (!client.isOpen) return;
  if (client.isReady) {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), ms);
    });
    try {
      await Promise.race([client.close(), timedOut]);
    } catch {
      // fall through to destroy
    } finally {
      clearTimeout(timer);
    }
  }
  if (client.isOpen) client.destroy();
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves `fallback` if `promise` has not settled after `ms` (or rejects). When the timer fires
 * it still lets pending I/O run once (setImmediate comes after the poll phase), so a reply that
 * arrived during an event-loop stall wins over the timeout.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<T>((resolve) => {
    timer = setTimeout(() => setImmediate(() => resolve(fallback)), ms);
  });
  try {
    return await Promise.race([promise.catch(() => fallback), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
