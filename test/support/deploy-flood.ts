// Test helper, run as a child process (node --import tsx test/support/deploy-flood.ts): sends
// Deploys at a fixed rate from its own event loop, so that the test process's own work cannot make
// these calls' deadlines fire late. Arguments: address key count perSecond deadlineMs label.
// Prints one JSON line: {"ok": [deployment ids], "codes": {code: count}}.
import * as grpc from "@grpc/grpc-js";
import { DeployServiceClient } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { deployRequest } from "./clients.js";

const [address = "", key = "", countText = "0", rateText = "1", deadlineText = "1000", label = "flood"] =
  process.argv.slice(2);
const count = Number(countText);
const perSecond = Number(rateText);
const deadlineMs = Number(deadlineText);
// Four connections: a single one would queue thousands of calls in its own HTTP/2 session, whose
// memory limit then fails calls on the client side (RESOURCE_EXHAUSTED, then the session).
const clients = Array.from(
  { length: 4 },
  () => new DeployServiceClient(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }),
);
const md = new grpc.Metadata();
md.set("authorization", `Bearer ${key}`);
const ok: string[] = [];
const codes: Record<string, number> = {};
const calls: Promise<void>[] = [];
const start = Date.now();
for (let i = 0; i < count; i++) {
  const due = start + (i * 1000) / perSecond;
  if (due - Date.now() >= 5) await new Promise((r) => setTimeout(r, due - Date.now()));
  calls.push(
    new Promise<void>((resolve) =>
      clients[i % clients.length]!.deploy(
        deployRequest({ namespace: "load", workload: `w${i % 50}`, image: `registry.example/${label}:${i}` }),
        md,
        { deadline: Date.now() + deadlineMs },
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
for (const c of clients) c.close();
process.stdout.write(`${JSON.stringify({ ok, codes })}\n`);
process.exit(0);
