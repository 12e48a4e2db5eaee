// Child process: a fleet of simulated agents (sim-agent.ts), driven over IPC by the bench.
// Messages in:  {type: "start", address, agents: [{id, token}], mode, holdIds?, rampPerSecond}
//               {type: "mark"}  (reset the "since mark" counters: reconnects, redeliveries)
//               {type: "stop"}
// Messages out: {type: "stats", ...} every 250 ms, {type: "stopped"}.
import type { Command } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { type CommandMode, SimAgent } from "./sim-agent.js";

interface StartMessage {
  type: "start";
  address: string;
  agents: { id: string; token: string }[];
  /** Mode of the agents in holdIds; the others complete every command at once. */
  mode: CommandMode;
  holdIds?: string[];
  rampPerSecond: number;
}

export interface FleetStats {
  type: "stats";
  connected: number;
  welcomes: number;
  commands: number;
  duplicates: number;
  /** Heartbeat round trips measured since the last report (ms). */
  heartbeatRtts: number[];
  /** Commands received since the last report: [deploymentId, receivedAtMs]. */
  received: [string, number][];
  sinceMark: { reconnected: number; lastReconnectAt: number; redelivered: number; lastRedeliveryAt: number };
}

const agents: SimAgent[] = [];
let welcomes = 0;
let commands = 0;
let duplicates = 0;
let heartbeatRtts: number[] = [];
let received: [string, number][] = [];
let markAt = 0;
const reconnectedSinceMark = new Set<string>();
let lastReconnectAt = 0;
let redeliveredSinceMark = 0;
let lastRedeliveryAt = 0;

const events = {
  welcome: (agent: SimAgent, at: number) => {
    welcomes++;
    if (markAt > 0 && !reconnectedSinceMark.has(agent.id)) {
      reconnectedSinceMark.add(agent.id);
      lastReconnectAt = at;
    }
  },
  command: (_agent: SimAgent, command: Command, at: number, duplicate: boolean) => {
    commands++;
    if (duplicate) {
      duplicates++;
      if (markAt > 0) {
        redeliveredSinceMark++;
        lastRedeliveryAt = at;
      }
    }
    received.push([command.id, at]);
  },
  heartbeatRtt: (ms: number) => {
    heartbeatRtts.push(ms);
  },
};

function report(): void {
  const stats: FleetStats = {
    type: "stats",
    connected: agents.reduce((n, a) => n + (a.connected ? 1 : 0), 0),
    welcomes,
    commands,
    duplicates,
    heartbeatRtts,
    received,
    sinceMark: {
      reconnected: reconnectedSinceMark.size,
      lastReconnectAt,
      redelivered: redeliveredSinceMark,
      lastRedeliveryAt,
    },
  };
  heartbeatRtts = [];
  received = [];
  process.send?.(stats);
}

async function start(m: StartMessage): Promise<void> {
  const hold = new Set(m.holdIds ?? []);
  const gapMs = 1000 / Math.max(1, m.rampPerSecond);
  let next = Date.now();
  for (const a of m.agents) {
    const agent = new SimAgent(a.id, a.token, m.address, hold.has(a.id) ? m.mode : "complete", events);
    agents.push(agent);
    agent.start();
    next += gapMs;
    const wait = next - Date.now();
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
  }
}

const timer = setInterval(report, 250);
process.on("message", (m: { type: string }) => {
  if (m.type === "start") void start(m as StartMessage);
  else if (m.type === "mark") {
    markAt = Date.now();
    reconnectedSinceMark.clear();
    redeliveredSinceMark = 0;
    lastReconnectAt = 0;
    lastRedeliveryAt = 0;
  } else if (m.type === "stop") {
    for (const a of agents) a.stop();
    clearInterval(timer);
    report();
    process.send?.({ type: "stopped" }, () => process.exit(0));
  }
});
process.on("disconnect", () => process.exit(0));
