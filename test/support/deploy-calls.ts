// Test helper: many Deploys at once or at a fixed rate, spread over several connections, with the
// outcome of each (test/load-defects.test.ts in its own process, and test/support/deploy-flood.ts
// as a child process of its own).
import * as grpc from "@grpc/grpc-js";
import { DEADLINE_HEADER, deadlineHeaderValue } from "@k8sdeploy/proto/contract/deadline.js";
import {
  type DeployRequest,
  type DeployResponse,
  DeployServiceClient,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { deployRequest } from "./clients.js";

/** A call whose caller cannot tell whether it was carried out (see `refusedByServer`). */
export interface UnsureCall {
  /** The request as sent, its idempotency key included. */
  request: DeployRequest;
  /** When the caller gave up (ms since the epoch). */
  deadline: number;
  /** What the caller was told. */
  told: string;
}

export interface Calls {
  /** Ids of the deployments whose Deploy answered OK. */
  ok: string[];
  /** Call count per status name ("OK", "UNAVAILABLE", …). */
  codes: Record<string, number>;
  /** The failed calls whose failure was not the server's answer: their outcome is unknown to the caller. */
  unsure: UnsureCall[];
}

export interface Outcome extends Calls {
  /** With `shortDeadlineMs`: the outcome of the calls that had the short deadline (not counted above). */
  short?: Calls;
}

/**
 * Whether a failed call's status is the server's refusal, so that the call was not carried out: the
 * orchestrator says "nothing was done" whenever it refuses a call before any side effect (admission,
 * a deadline used up), and Node's HTTP/2 server resets a stream beyond a connection's cap before any
 * handler sees it (ENHANCE_YOUR_CALM: grpc-js says RESOURCE_EXHAUSTED, "Bandwidth exhausted…"). Anything else —
 * above all the caller's own deadline firing ("Deadline exceeded after 1.002s…"), which a caller
 * whose event loop is late runs before it reads an answer already in its socket — leaves the outcome
 * unknown, as gRPC defines DEADLINE_EXCEEDED; the caller learns it by retrying with its idempotency key.
 */
export function refusedByServer(err: grpc.ServiceError): boolean {
  if (/nothing was done/.test(err.details)) return true;
  return err.code === grpc.status.RESOURCE_EXHAUSTED && err.details === "Bandwidth exhausted or memory limit exceeded";
}

/**
 * A Deploy's metadata: the deploy key, and the deadline in `k8sdeploy-deadline` too, as the action
 * and the CLI send it (proto/src/deadline.ts).
 */
function callMetadata(key: string, deadline: number): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${key}`);
  md.set(DEADLINE_HEADER, deadlineHeaderValue(deadline));
  return md;
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
  const long: Calls = { ok: [], codes: {}, unsure: [] };
  const short: Calls = { ok: [], codes: {}, unsure: [] };
  const calls: Promise<void>[] = [];
  const start = Date.now();
  for (let i = 0; i < n; i++) {
    if (options.perSecond !== undefined) {
      const due = start + (i * 1000) / options.perSecond;
      if (due - Date.now() >= 5) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    // Nine in ten on each connection (calls go round the clients).
    const isShort = options.shortDeadlineMs !== undefined && Math.floor(i / clients.length) % 10 !== 0;
    const outcome = isShort ? short : long;
    const request = deployRequest({
      namespace: "load",
      workload: `w${i % 50}`,
      image: `registry.example/${label}${isShort ? "-short" : ""}:${i}`,
      idempotencyKey: `${label}-${i}`,
    });
    const deadline = Date.now() + (isShort ? options.shortDeadlineMs! : deadlineMs);
    calls.push(
      new Promise<void>((resolve) =>
        clients[i % clients.length]!.deploy(request, callMetadata(key, deadline), { deadline }, (err, res) => {
          const name = err ? grpc.status[err.code] : "OK";
          outcome.codes[name] = (outcome.codes[name] ?? 0) + 1;
          if (err && err.code === grpc.status.INTERNAL && outcome.codes[name] === 1) {
            process.stderr.write(`${err.details}\n`);
          }
          if (err && !refusedByServer(err)) {
            outcome.unsure.push({ request, deadline, told: `${name}: ${err.details}` });
          }
          if (!err && res.deployment) outcome.ok.push(res.deployment.id);
          resolve();
        }),
      ),
    );
  }
  await Promise.all(calls);
  return options.shortDeadlineMs === undefined ? long : { ...long, short };
}

/**
 * Each call again with its idempotency key, `concurrency` at a time and trying again after a refusal
 * (the replica's in-flight limit may still be low), as the action does: what the orchestrator
 * answers — the deployment the first call created, if it did (`created` false).
 */
export async function retryWithIdempotencyKeys(
  client: DeployServiceClient,
  key: string,
  calls: UnsureCall[],
  concurrency = 4,
): Promise<{ image: string; id: string; created: boolean }[]> {
  const deployOnce = (call: UnsureCall) =>
    new Promise<DeployResponse>((resolve, reject) => {
      const deadline = Date.now() + 30_000;
      client.deploy(call.request, callMetadata(key, deadline), { deadline }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  const answer = async (call: UnsureCall) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await deployOnce(call);
        return { image: call.request.image, id: res.deployment?.id ?? "", created: res.created };
      } catch (err) {
        if (attempt >= 20 || !refusedByServer(err as grpc.ServiceError)) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const answers: { image: string; id: string; created: boolean }[] = [];
  for (let i = 0; i < calls.length; i += concurrency) {
    answers.push(...(await Promise.all(calls.slice(i, i + concurrency).map(answer))));
  }
  return answers;
}
