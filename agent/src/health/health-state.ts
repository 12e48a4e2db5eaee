// What the agent's liveness and readiness probes answer, from real state: the connection loop's
// progress and the stream to the orchestrator (reported by agent-runner), and whether the
// Kubernetes API server answered recently (a periodic GET /version, see main.ts).
//
// - ready:  the stream to the orchestrator is up (or was, less than `readyGraceMs` ago: a GOAWAY
//           every 30 min or a quick reconnect does not flap the pod), the API server answered in
//           the last `apiServerStaleMs`, and the agent is not shutting down.
// - live:   the connection loop makes progress: connected, or it connected / tried / backed off
//           within `livenessStaleMs`. An orchestrator that is down keeps the agent live (it is
//           retrying, a restart would not help); a wedged loop does not.

export interface HealthOptions {
  readyGraceMs?: number;
  apiServerStaleMs?: number;
  livenessStaleMs?: number;
  now?: () => number;
}

export type ConnectionState = "connecting" | "connected" | "disconnected";

export interface Check {
  ok: boolean;
  [detail: string]: unknown;
}

export interface HealthReport {
  ok: boolean;
  checks: Record<string, Check>;
}

export const HEALTH_DEFAULTS = {
  readyGraceMs: 30_000,
  apiServerStaleMs: 90_000,
  // Above the reconnect backoff cap (60 s) plus a connection attempt.
  livenessStaleMs: 300_000,
} as const;

export class AgentHealth {
  private readonly readyGraceMs: number;
  private readonly apiServerStaleMs: number;
  private readonly livenessStaleMs: number;
  private readonly now: () => number;
  private state: ConnectionState = "connecting";
  private server: string | undefined;
  private lastProgress: number;
  private lastConnected: number | undefined;
  private lastApiOk: number | undefined;
  private lastApiError: string | undefined;
  private stopping = false;

  constructor(options: HealthOptions = {}) {
    this.readyGraceMs = options.readyGraceMs ?? HEALTH_DEFAULTS.readyGraceMs;
    this.apiServerStaleMs = options.apiServerStaleMs ?? HEALTH_DEFAULTS.apiServerStaleMs;
    this.livenessStaleMs = options.livenessStaleMs ?? HEALTH_DEFAULTS.livenessStaleMs;
    this.now = options.now ?? Date.now;
    this.lastProgress = this.now();
  }

  /** The connection loop's state changed (agent-runner's onConnectionState). */
  connection(state: ConnectionState, server?: string): void {
    const now = this.now();
    if (this.state === "connected" && state !== "connected") this.lastConnected = now;
    if (state === "connected") this.lastConnected = now;
    this.state = state;
    this.server = server;
    this.lastProgress = now;
  }

  /** The loop is alive but waiting (backoff): counts as progress. */
  progress(): void {
    this.lastProgress = this.now();
  }

  apiServer(ok: boolean, error?: string): void {
    if (ok) {
      this.lastApiOk = this.now();
      this.lastApiError = undefined;
    } else {
      this.lastApiError = error ?? "unreachable";
    }
  }

  /** The agent is shutting down: not ready any more (still live). */
  shuttingDown(): void {
    this.stopping = true;
  }

  readiness(): HealthReport {
    const now = this.now();
    const connectedRecently =
      this.state === "connected" || (this.lastConnected !== undefined && now - this.lastConnected < this.readyGraceMs);
    const apiOk = this.lastApiOk !== undefined && now - this.lastApiOk < this.apiServerStaleMs;
    const checks: Record<string, Check> = {
      orchestrator: {
        ok: connectedRecently,
        state: this.state,
        server: this.server,
        lastConnectedAgoMs: this.state === "connected" ? 0 : ago(now, this.lastConnected),
      },
      apiServer: { ok: apiOk, lastOkAgoMs: ago(now, this.lastApiOk), error: apiOk ? undefined : this.lastApiError },
      shutdown: { ok: !this.stopping },
    };
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  }

  liveness(): HealthReport {
    const now = this.now();
    const sinceProgress = now - this.lastProgress;
    const ok = this.state === "connected" || sinceProgress < this.livenessStaleMs;
    return {
      ok,
      checks: { connectionLoop: { ok, state: this.state, lastProgressAgoMs: sinceProgress } },
    };
  }
}

function ago(now: number, at: number | undefined): number | undefined {
  return at === undefined ? undefined : now - at;
}
