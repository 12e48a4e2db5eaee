// Test helper: many Deploys at once or at a fixed rate, spread over several connections, with the
// outcome of each (test/load-defects.test.ts in its own process, and test/support/deploy-flood.ts
// as a child process of its own).
import * as grpc from "@grpc/grpc-js";
import { DEADLINE_HEADER, deadlineHeaderValue } from "@k8sdeploy/proto/contract/deadline.js";
import { DeployServiceClient } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { deployRequest } from "./clients.js";

export interface Outcome {
  /** Ids of the deployments whose Deploy answered OK. */
  ok: string[];
  /** Call count per status name ("OK", "UNAVAILABLE", …). */
  codes: Record<string, number>;
  /** With `shortDeadlineMs`: the outcome of the calls that had the short deadline (not counted above). */
  short?: { ok: string[]; codes: Record<string, number> };
}

/** `channels` Deploy clients, each on its own connection. */
export function deployCallers(address: string, channels: number): DeployServiceClient[] {
  return Array.from(
    { length: channels },
    () => new DeployServiceClient(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }),
  );
}

/**
 * `n` Deploys with `key` spread over the clients, all at once or (with `perSecond`) at that rate;
 * resolves when every one answered. The first INTERNAL error's details go to stderr. With
 * `shortDeadlineMs`, nine calls in ten on each connection have that deadline instead, and the
 * image `registry.example/<label>-short:<i>`; their outcome is reported apart (`short`).
 */
export async function flood(
  clients: DeployServiceClient[],
  key: string,
  n: number,
  label: string,
  options: { deadlineMs?: number; perSecond?: number; shortDeadlineMs?: number } = {},
): Promise<Outcome> {
  const deadlineMs = options.deadlineMs ?? 60_000;
  const long = { ok: [] as string[], codes: {} as Record<string, number> };
  const short = { ok: [] as string[], codes: {} as Record<string, number> };
  const calls: Promise<void>[] = [];
  const start = Date.now();
  for (let i = 0; i < n; i++) {
    if (options.perSecond !== undefined) {
      const due = start + (i * 1000) / options.perSecond;
      if (due - Date.now() >= 5) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    // Nine in ten on each connection (calls go round the clients).
    const isShort = options.shortDeadlineMs !== undefined && Math.floor(i / clients.length) % 10 !== 0;
    const { ok, codes } = isShort ? short : long;
    const image = `registry.example/${label}${isShort ? "-short" : ""}:${i}`;
    // As the action and the CLI do, the deadline goes in `k8sdeploy-deadline` too (proto/src/deadline.ts).
    const deadline = Date.now() + (isShort ? options.shortDeadlineMs! : deadlineMs);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${key}`);
    md.set(DEADLINE_HEADER, deadlineHeaderValue(deadline));
    calls.push(
      new Promise<void>((resolve) =>
        clients[i % clients.length]!.deploy(
          deployRequest({ namespace: "load", workload: `w${i % 50}`, image }),
          md,
          { deadline },
          (err, res) => {
            const name = err ? grpc.status[err.code] : "OK";
            codes[name] = (codes[name] ?? 0) + 1;
            if (err && err.code === grpc.status.INTERNAL && codes[name] === 1) process.stderr.write(`${err.details}\n`);
            if (!err && res.deployment) ok.push(res.deployment.id);
            resolve();
          },
        ),
      ),
    );
  }
  await Promise.all(calls);
  return options.shortDeadlineMs === undefined ? long : { ...long, short };
}
