// Bounded in-flight work with load shedding, for the unary calls of both ports (gRPC and Connect).
// Without it every call that arrives is started at once: under overload the process spends its time
// on calls whose callers gave up already, answers them late (DEADLINE_EXCEEDED, or HTTP/2 sessions
// closed under memory pressure) and still carries them out, so a caller told "failed" gets a deploy.
//
// A call is refused before its handler runs — so before anything is read or stored, and a refused
// Deploy never deploys — when
//  - `limit` calls are in progress already (UNAVAILABLE: callers retry; the action does, with the
//    same idempotency key);
//  - the caller's deadline is too close to answer in time: less than MIN_DEADLINE_MARGIN_MS, or twice
//    the current event-loop lag, is left (DEADLINE_EXCEEDED: the caller is about to give up anyway,
//    and an answer would reach it too late).
// Calls that finish without waiting on I/O (the memory store) never pile up in progress; what bounds
// them is the per-connection cap on streams (grpc.max_concurrent_streams, grpc-server.ts): a client
// queues calls beyond it on its side, where those whose deadline passes fail without ever being
// sent; one sent after waiting there claims a stale `grpc-timeout`, which is why `ctx.deadline` is
// the earlier of it and the caller's `k8sdeploy-deadline` (rpc/caller-deadline.ts). What remains is
// an answer lost on its way back (a broken connection) or read too late (a caller whose event loop
// is behind runs its deadline timer first): the caller cannot tell, and retries with its idempotency
// key. Every refusal here says "nothing was done", so a caller can tell those apart. Neither grpc-js
// nor connect-node bounds the work of a whole process, hence this.

import { DEADLINE_HEADER, STALE_DEADLINE_MS } from "@k8sdeploy/proto/contract/deadline.js";
import type { Logger } from "pino";
import type { CallContext, UnaryHandler } from "./handler.js";
import { Code, RpcError, unavailable } from "./rpc-error.js";

/** A call needs at least this long (or twice the current lag) before its deadline to be started. */
export const MIN_DEADLINE_MARGIN_MS = 100;
const LAG_PROBE_MS = 50;

/**
 * Event-loop lag, sampled by a timer: rises at once with a late tick, decays over a few ticks. (A
 * timer, not perf_hooks' histogram: the latest lag is what matters here, not a percentile.)
 */
class LagProbe {
  lagMs = 0;
  private expected = Date.now() + LAG_PROBE_MS;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const now = Date.now();
      const late = Math.max(0, now - this.expected);
      this.expected = now + LAG_PROBE_MS;
      this.lagMs = Math.max(late, this.lagMs * 0.7);
    }, LAG_PROBE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export class Admission {
  private inFlight = 0;
  private shed = 0;
  private lastLogged = 0;
  private readonly probe = new LagProbe();

  constructor(
    readonly limit: number,
    private readonly log?: Logger,
  ) {}

  get active(): number {
    return this.inFlight;
  }

  /** Calls refused so far. */
  get refused(): number {
    return this.shed;
  }

  stop(): void {
    this.probe.stop();
  }

  /** `handler` behind the limit. */
  wrap<Req, Res>(handler: UnaryHandler<Req, Res>): UnaryHandler<Req, Res> {
    return async (request: Req, ctx: CallContext): Promise<Res> => {
      this.admit(ctx);
      this.inFlight++;
      try {
        return await handler(request, ctx);
      } finally {
        this.inFlight--;
      }
    };
  }

  private admit(ctx: CallContext): void {
    const lag = this.probe.lagMs;
    if (this.inFlight >= this.limit) {
      this.refuse("calls in progress");
      throw unavailable(
        `the orchestrator is at its limit of ${this.limit} calls in progress (K8SDEPLOY_MAX_CONCURRENT_CALLS); nothing was done — retry in a moment`,
      );
    }
    const left = ctx.deadline === undefined ? Infinity : ctx.deadline - Date.now();
    if (left < Math.max(MIN_DEADLINE_MARGIN_MS, 2 * lag)) {
      this.refuse("deadline too close");
      // Only the caller's header can be this far in the past (grpc-timeout starts on arrival).
      throw new RpcError(
        Code.DEADLINE_EXCEEDED,
        left < -STALE_DEADLINE_MS
          ? `the caller's deadline (${DEADLINE_HEADER}) passed ${(-left / 1000).toFixed(1)} s ago by this server's clock: the call waited that long on the caller's side, or the caller's clock is behind; nothing was done`
          : "too little time was left before the call's deadline to answer it; nothing was done",
      );
    }
  }

  private refuse(reason: string): void {
    this.shed++;
    const now = Date.now();
    if (now - this.lastLogged < 10_000) return;
    this.lastLogged = now;
    this.log?.warn(
      { limit: this.limit, reason, lagMs: Math.round(this.probe.lagMs), refusedSoFar: this.shed },
      "overloaded: refusing calls beyond the limit",
    );
  }
}

/** The object's unary handlers behind `admission`; the names in `streams` are passed through. */
export function admitted<T extends object>(admission: Admission, handlers: T, streams: readonly (keyof T)[]): T {
  const out: Record<string, unknown> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    out[name] =
      typeof handler === "function" && !streams.includes(name as keyof T)
        ? admission.wrap(handler as UnaryHandler<unknown, unknown>)
        : handler;
  }
  return out as T;
}
