// Rotating an agent token closes the streams opened with the old token when its grace period
// ends, on whichever replica holds them: a real agent (the bundle, on the test bed's cluster)
// holds its stream on replica 0 while the token is rotated through replica 1 (Redis bus).
import test from "ava";
import { agentInfo, waitConnected } from "./support/e2e.js";
import { agentBundleCheck } from "./support/preflight.js";
import type { Proc } from "./support/processes.js";
import { type Stack, startStack } from "./support/stack.js";

let stack: Stack;

test.before(async () => {
  agentBundleCheck();
  stack = await startStack({ replicas: 2 });
});

test.after.always(async () => {
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function exitWithin(proc: Proc, ms: number): Promise<number | null | "running"> {
  return Promise.race([proc.exited(), sleep(ms).then(() => "running" as const)]);
}

test.serial("the old token's stream stays during the grace period and is closed when it ends", async (t) => {
  const agent = await stack.createAgent("rotate-me");
  const replica0 = stack.replicas[0]!;
  const old = stack.startAgent({ token: agent.token, servers: [replica0.grpcAddress] });
  await waitConnected(stack, agent.id, "replica-0");

  // Long enough that the two CLI calls below fit in it on a loaded machine (each may take a second or two).
  const graceSeconds = 8;
  const rotatedAt = Date.now();
  const rotation = JSON.parse(
    await stack.cli(["agent", "rotate", agent.id, "--grace", String(graceSeconds), "--json"], 1),
  ) as { token: string };

  // Within the grace period the old token's stream keeps working.
  t.is(await exitWithin(old, 2000), "running");
  t.is((await agentInfo(stack, agent.id))?.connectionState, "CONNECTION_STATE_CONNECTED");

  // Then the stream is closed (UNAUTHENTICATED), and the agent, whose token is now invalid, stops.
  const code = await exitWithin(old, 15_000);
  const seconds = (Date.now() - rotatedAt) / 1000;
  t.log(`old-token stream closed ${seconds.toFixed(1)} s after the rotation (grace ${graceSeconds} s)`);
  t.is(code, 2, old.output().slice(-2000));
  t.true(seconds >= graceSeconds && seconds < graceSeconds + 6, `${seconds} s`);
  t.true(
    replica0.logEntries().some((e) => e.msg === "the token of an agent stream was rotated out: closing the stream"),
  );

  // The new token connects, and a rotation without grace closes its stream at once.
  const fresh = stack.startAgent({ token: rotation.token, servers: [replica0.grpcAddress] });
  await waitConnected(stack, agent.id, "replica-0");
  const again = Date.now();
  await stack.cli(["agent", "rotate", agent.id, "--grace", "0", "--json"], 1);
  t.is(await exitWithin(fresh, 10_000), 2, fresh.output().slice(-2000));
  t.true(Date.now() - again < 5000, `${Date.now() - again} ms`);
});
