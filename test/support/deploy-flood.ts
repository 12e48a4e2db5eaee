// Test helper, run as a child process (node --import tsx test/support/deploy-flood.ts): sends
// Deploys at a fixed rate from its own event loop, so that the test process's own work cannot make
// these calls' deadlines fire late. Arguments: address key count perSecond deadlineMs label [channels
// [shortDeadlineMs]] (see flood()).
// Prints one JSON line: {"ok": [deployment ids], "codes": {code: count}}.
import { deployCallers, flood } from "./deploy-calls.js";

const [
  address = "",
  key = "",
  countText = "0",
  rateText = "1",
  deadlineText = "1000",
  label = "flood",
  channelsText = "4",
  shortDeadlineText = "",
] = process.argv.slice(2);
const clients = deployCallers(address, Number(channelsText));
const outcome = await flood(clients, key, Number(countText), label, {
  deadlineMs: Number(deadlineText),
  perSecond: Number(rateText),
  ...(shortDeadlineText ? { shortDeadlineMs: Number(shortDeadlineText) } : {}),
});
for (const c of clients) c.close();
// Exit once the line is written: a pipe takes a long line in several writes.
process.stdout.write(`${JSON.stringify(outcome)}\n`, () => process.exit(0));
