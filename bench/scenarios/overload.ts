// Row "overload: a call that reports failure never deploys" (memory and Redis store): the issue's
// experiment, Deploys offered open loop at a rate about three times what one process handles, from
// a callers process on Node 24 (as the action runs), while a simulated agent finishes every command.
// Counted: accepted, refused (UNAVAILABLE, DEADLINE_EXCEEDED), other failures, and the commands that
// reached the agent although their call reported a failure — the lie, goal 0.
import { createAgents } from "../lib/clients.js";
import { startFleet } from "../lib/fleet.js";
import { sleep, sutNode } from "../lib/processes.js";
import { type Row, row } from "../lib/report.js";
import { ADMIN_TOKEN, type StoreKind, startSut } from "../lib/sut.js";
import { runCallers } from "./throughput.js";

export interface OverloadOptions {
  perSecond: number;
  seconds: number;
  deadlineMs: number;
}

export async function runOverload(store: StoreKind, options: OverloadOptions): Promise<Row> {
  const sut = await startSut({ store });
  try {
    const [agent] = await createAgents(sut.address, ADMIN_TOKEN, 1);
    const received = new Set<string>();
    const fleet = startFleet(sut.address, [agent!], { processes: 1, onReceived: (id) => received.add(id) });
    await fleet.waitConnected(1, 30_000);
    const done = await runCallers(sut.address, [agent!.key], {
      agents: 1,
      channels: 4,
      concurrency: 0,
      seconds: options.seconds,
      warmupSeconds: 0,
      deadlineMs: options.deadlineMs,
      rate: options.perSecond,
      collectIds: true,
      node: sutNode(),
    });
    // Let commands still on their way arrive.
    let last = -1;
    while (received.size !== last) {
      last = received.size;
      await sleep(2000);
    }
    await fleet.stop();
    const ok = new Set(done.okIds);
    const lies = [...received].filter((id) => !ok.has(id)).length;
    const offered = done.ok + Object.values(done.errors).reduce((a, b) => a + b, 0);
    const lost = [...ok].filter((id) => !received.has(id)).length;
    return row({
      id: `overload-${store}`,
      metric: `overload: ${options.perSecond}/s offered for ${options.seconds} s (deadline ${options.deadlineMs / 1000} s), ${store} store`,
      figure: `${done.ok} accepted, ${offered - done.ok} failed (${Object.entries(done.errors)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}); ${lies} failed calls deployed`,
      floor: "—",
      ratio: lies,
      ratioText: `${lies} lies`,
      goal: "a failed call never deploys (0); none accepted lost",
      pass: lies === 0 && lost === 0,
      details: {
        offered,
        accepted: done.ok,
        errors: done.errors,
        errorSamples: done.errorSamples,
        delivered: received.size,
        lies,
        lost,
      },
    });
  } finally {
    await sut.stop("SIGKILL");
  }
}
