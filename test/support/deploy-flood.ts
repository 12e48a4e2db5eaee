// Test helper, run as a child process (node --import tsx test/support/deploy-flood.ts): sends
// Deploys at a fixed rate from its own event loop, so that the test process's own work cannot make
// these calls' deadlines fire late. Arguments: address key count perSecond deadlineMs label.
// Prints one JSON line: {"ok": [deployment ids], "codes": {code: count}}.
import { deployCallers, flood } from "./deploy-calls.js";

const [address = "", key = "", countText = "0", rateText = "1", deadlineText = "1000", label = "flood"] =
  process.argv.slice(2);
// Four connections: a single one would queue thousands of calls in its own HTTP/2 session, whose
// memory limit then fails calls on the client side (RESOURCE_EXHAUSTED, then the session).
const clients = deployCallers(address, 4);
const outcome = await flood(clients, key, Number(countText), label, {
  deadlineMs: Number(deadlineText),
  perSecond: Number(rateText),
});
for (const c of clients) c.close();
process.stdout.write(`${JSON.stringify(outcome)}\n`);
process.exit(0);
