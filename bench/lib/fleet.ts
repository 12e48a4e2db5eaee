// The parent side of the simulated agent fleet: spreads agents over several child processes
// (sim/fleet.ts) and adds up what they report.
import type { ChildProcess } from "node:child_process";
import type { FleetStats } from "../sim/fleet.js";
import type { CommandMode } from "../sim/sim-agent.js";
import { forkTs, stopChild, until } from "./processes.js";

export interface AgentCredentials {
  id: string;
  token: string;
}

export interface FleetOptions {
  processes: number;
  /** Connection attempts per second per process while starting. */
  rampPerSecond?: number;
  mode?: CommandMode;
  holdIds?: string[];
  /** Called with every command received: deployment id and receive time (ms). */
  onReceived?: (id: string, at: number) => void;
}

export interface Fleet {
  readonly size: number;
  connected(): number;
  commands(): number;
  duplicates(): number;
  /** Heartbeat round trips collected so far (ms); `take` empties the list. */
  heartbeatRtts(take?: boolean): number[];
  sinceMark(): { reconnected: number; lastReconnectAt: number; redelivered: number; lastRedeliveryAt: number };
  mark(): void;
  waitConnected(n: number, timeoutMs: number): Promise<void>;
  pids(): number[];
  stop(): Promise<void>;
}

export function startFleet(address: string, agents: AgentCredentials[], options: FleetOptions): Fleet {
  const n = Math.max(1, Math.min(options.processes, agents.length));
  const last = new Map<ChildProcess, FleetStats>();
  let rtts: number[] = [];
  const children: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const child = forkTs("sim/fleet.ts");
    children.push(child);
    child.on("message", (m: FleetStats | { type: "stopped" }) => {
      if (m.type !== "stats") return;
      last.set(child, m);
      rtts.push(...m.heartbeatRtts);
      if (options.onReceived) for (const [id, at] of m.received) options.onReceived(id, at);
    });
    child.send({
      type: "start",
      address,
      agents: agents.filter((_, j) => j % n === i),
      mode: options.mode ?? "complete",
      holdIds: options.holdIds ?? [],
      rampPerSecond: options.rampPerSecond ?? 500,
    });
  }
  const sum = (f: (s: FleetStats) => number) => [...last.values()].reduce((a, s) => a + f(s), 0);
  const max = (f: (s: FleetStats) => number) => Math.max(0, ...[...last.values()].map(f));
  const fleet: Fleet = {
    size: agents.length,
    connected: () => sum((s) => s.connected),
    commands: () => sum((s) => s.commands),
    duplicates: () => sum((s) => s.duplicates),
    heartbeatRtts(take = false) {
      const out = rtts;
      if (take) rtts = [];
      return out;
    },
    sinceMark: () => ({
      reconnected: sum((s) => s.sinceMark.reconnected),
      lastReconnectAt: max((s) => s.sinceMark.lastReconnectAt),
      redelivered: sum((s) => s.sinceMark.redelivered),
      lastRedeliveryAt: max((s) => s.sinceMark.lastRedeliveryAt),
    }),
    mark() {
      for (const c of children) c.send({ type: "mark" });
      // Forget the previous reports' "since mark" part until fresh ones arrive.
      for (const [c, s] of last) last.set(c, { ...s, sinceMark: { ...s.sinceMark, reconnected: 0, redelivered: 0 } });
    },
    waitConnected: (count, timeoutMs) =>
      until(
        () => fleet.connected() >= count,
        `${count} agents to connect (${fleet.connected()} so far)`,
        timeoutMs,
        250,
      ),
    pids: () => children.map((c) => c.pid ?? -1),
    async stop() {
      await Promise.all(
        children.map(async (c) => {
          if (c.connected) c.send({ type: "stop" });
          await new Promise((r) => setTimeout(r, 200));
          await stopChild(c, "SIGKILL");
        }),
      );
    },
  };
  return fleet;
}
