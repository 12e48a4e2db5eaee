// Bounded in-flight work with load shedding, for the unary calls of both ports (gRPC and Connect).
// Without it every call that arrives is started at once: under overload the process spends its time
// on calls whose callers gave up already, answers them late (DEADLINE_EXCEEDED, or HTTP/2 sessions
// closed under memory pressure) and still carries them out, so a caller told "failed" gets a deploy.
// With it a call beyond the limit is refused at once with UNAVAILABLE — before anything is read or
// stored, so a refused Deploy never deploys — and callers retry (the action does, with the same
// idempotency key). The per-connection cap on streams (grpc.max_concurrent_streams, grpc-server.ts)
// stops one client from opening unbounded streams; this limit bounds the whole replica, which
// neither grpc-js nor connect-node offers.
import type { Logger } from "pino";
import type { CallContext, UnaryHandler } from "./handler.js";
import { unavailable } from "./rpc-error.js";

export class Admission {
  private inFlight = 0;
  private shed = 0;
  private lastLogged = 0;

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

  /** `handler` behind the limit. */
  wrap<Req, Res>(handler: UnaryHandler<Req, Res>): UnaryHandler<Req, Res> {
    return async (request: Req, ctx: CallContext): Promise<Res> => {
      if (this.inFlight >= this.limit) {
        this.refuse();
        throw unavailable(
          `the orchestrator is at its limit of ${this.limit} calls in progress (K8SDEPLOY_MAX_CONCURRENT_CALLS); nothing was done — retry in a moment`,
        );
      }
      this.inFlight++;
      try {
        return await handler(request, ctx);
      } finally {
        this.inFlight--;
      }
    };
  }

  private refuse(): void {
    this.shed++;
    const now = Date.now();
    if (now - this.lastLogged < 10_000) return;
    this.lastLogged = now;
    this.log?.warn({ limit: this.limit, refusedSoFar: this.shed }, "overloaded: refusing calls beyond the limit");
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
