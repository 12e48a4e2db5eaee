// Reconnect delays: exponential backoff with full jitter ("Exponential Backoff And Jitter",
// AWS Architecture Blog): delay = random(0, min(cap, base · 2^attempt)).

export interface BackoffOptions {
  /** First ceiling, in ms (default 500). */
  baseMs?: number;
  /** Largest ceiling, in ms (default 60 000). */
  capMs?: number;
  /** Uniform random number in [0, 1); injectable for deterministic tests. */
  random?: () => number;
}

export const DEFAULT_BACKOFF_BASE_MS = 500;
export const DEFAULT_BACKOFF_CAP_MS = 60_000;

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.capMs = options.capMs ?? DEFAULT_BACKOFF_CAP_MS;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0) || !(this.capMs >= this.baseMs)) {
      throw new RangeError(`invalid backoff: base ${this.baseMs} ms, cap ${this.capMs} ms`);
    }
  }

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The ceiling of the next delay (without jitter). */
  ceilingMs(): number {
    // 2^attempt overflows to Infinity long after it passes any sane cap; min() handles that.
    return Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
  }

  /** The next delay in ms, in [0, ceiling), and advances the attempt counter. */
  next(): number {
    const ceiling = this.ceilingMs();
    this.attempt++;
    return Math.floor(this.random() * ceiling);
  }

  /** Starts over at the base (after a healthy connection). */
  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or early (without rejecting) when `signal` aborts. Returns true if it slept fully. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
