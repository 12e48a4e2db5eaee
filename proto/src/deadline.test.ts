import test from "ava";
import { deadlineHeaderValue, effectiveDeadline, InvalidDeadlineHeaderError, returnMarginMs } from "./deadline.js";

const NOW = 1_800_000_000_000;

test("the header carries the deadline less a tenth of the call's time, at most a second", (t) => {
  t.is(deadlineHeaderValue(NOW + 10_000, NOW), String(NOW + 9000));
  t.is(deadlineHeaderValue(NOW + 30_000, NOW), String(NOW + 29_000));
  t.is(deadlineHeaderValue(NOW + 500, NOW), String(NOW + 450));
  t.is(returnMarginMs(-5), 0);
});

test("the earlier of the transport's deadline and the header's is honoured", (t) => {
  // A call that waited 9.8 s in the client's queue: grpc-timeout still says 10 s from now.
  t.is(effectiveDeadline(NOW + 10_000, String(NOW + 200), NOW), NOW + 200);
  t.is(effectiveDeadline(NOW + 10_000, String(NOW + 20_000), NOW), NOW + 10_000);
  t.is(effectiveDeadline(undefined, String(NOW + 5000), NOW), NOW + 5000);
  t.is(effectiveDeadline(NOW + 10_000, undefined, NOW), NOW + 10_000);
  t.is(effectiveDeadline(undefined, undefined, NOW), undefined);
  // Just passed (the call is stale): honoured, so the server refuses it.
  t.is(effectiveDeadline(NOW + 10_000, String(NOW - 500), NOW), NOW - 500);
});

test("a header far in the past is honoured too: a stale call cannot be told from a clock that is behind", (t) => {
  t.is(effectiveDeadline(NOW + 10_000, String(NOW - 3000), NOW), NOW - 3000);
  t.is(effectiveDeadline(NOW + 10_000, String(NOW - 3_600_000), NOW), NOW - 3_600_000);
  t.is(effectiveDeadline(NOW + 10_000, "0", NOW), 0);
});

test("a malformed header is refused with a message that says what to send", (t) => {
  for (const v of ["soon", "-5", "1.5", "1e12", `${"9".repeat(16)}`, " 123"]) {
    const err = t.throws(() => effectiveDeadline(NOW + 10_000, v, NOW), { instanceOf: InvalidDeadlineHeaderError }, v);
    t.regex(err.message, /k8sdeploy-deadline must be the caller's deadline in whole milliseconds since the Unix epoch/);
  }
});
