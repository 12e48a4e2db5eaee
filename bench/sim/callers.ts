// Child process: Deploy callers (what CI runners would be), driven over IPC.
// In:  {type: "start", address, keys, channels, concurrency, seconds, warmupSeconds, deadlineMs, rate?}
//      closed loop with `concurrency` calls in flight over `channels` connections, or, with `rate`,
//      open loop at that many calls per second (overload).
// Out: {type: "done", ok, okInWindow, windowStart, windowEnd, errors: {code: count}, errorSamples:
// {code: [details]}, okIds: [...]}
import { status } from "@grpc/grpc-js";
import { DeployCaller, deployRequest } from "../lib/clients.js";

interface StartMessage {
  type: "start";
  address: string;
  keys: string[];
  channels: number;
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  deadlineMs: number;
  rate?: number;
  /** Report the ids of deployments that were accepted (for the overload check). */
  collectIds?: boolean;
}

async function run(m: StartMessage): Promise<void> {
  const callers = Array.from({ length: m.channels }, () => new DeployCaller(m.address));
  const errors: Record<string, number> = {};
  /** The details of the first few failures of each code (what an INTERNAL says, for instance). */
  const errorSamples: Record<string, string[]> = {};
  const okIds: string[] = [];
  let ok = 0;
  let okInWindow = 0;
  let n = 0;
  const t0 = Date.now();
  const windowStart = t0 + m.warmupSeconds * 1000;
  const end = windowStart + m.seconds * 1000;
  const one = async () => {
    const i = n++;
    const caller = callers[i % callers.length]!;
    const key = m.keys[i % m.keys.length]!;
    try {
      const res = await caller.deploy(key, deployRequest(`w${i % 1000}`, `registry.example/app:${i}`), m.deadlineMs);
      ok++;
      const now = Date.now();
      if (now >= windowStart && now < end) okInWindow++;
      if (m.collectIds && res.deployment) okIds.push(res.deployment.id);
    } catch (err) {
      const code = (err as { code?: number }).code;
      const name = code === undefined ? String(err) : (status[code] ?? String(code));
      errors[name] = (errors[name] ?? 0) + 1;
      const samples = errorSamples[name] ?? [];
      errorSamples[name] = samples;
      const details = (err as { details?: string }).details ?? String(err);
      if (samples.length < 3 && !samples.includes(details)) samples.push(details);
    }
  };
  if (m.rate) {
    const gap = 1000 / m.rate;
    const calls: Promise<void>[] = [];
    for (let i = 0; Date.now() < end; i++) {
      const wait = t0 + i * gap - Date.now();
      if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
      calls.push(one());
    }
    await Promise.allSettled(calls);
  } else {
    await Promise.all(
      Array.from({ length: m.concurrency }, async () => {
        while (Date.now() < end) await one();
      }),
    );
  }
  for (const c of callers) c.close();
  process.send?.({ type: "done", ok, okInWindow, windowStart, windowEnd: end, errors, errorSamples, okIds }, () =>
    process.exit(0),
  );
}

process.on("message", (m: StartMessage) => {
  if (m.type === "start") void run(m);
});
process.on("disconnect", () => process.exit(0));
