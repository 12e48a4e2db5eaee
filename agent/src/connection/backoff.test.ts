import test from "ava";
import { Backoff, sleep } from "./backoff.js";

/** A fixed sequence of "random" numbers, repeated. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

test("ceilings double from the base up to the cap", (t) => {
  const b = new Backoff({ baseMs: 500, capMs: 60_000, random: () => 0.999_999 });
  const delays = Array.from({ length: 10 }, () => b.next());
  t.deepEqual(delays, [499, 999, 1999, 3999, 7999, 15_999, 31_999, 59_999, 59_999, 59_999]);
  t.is(b.attempts, 10);
});

test("full jitter: the delay is random × ceiling", (t) => {
  const b = new Backoff({ baseMs: 100, capMs: 1000, random: sequence(0, 0.5, 0.25) });
  t.is(b.next(), 0); // 0 × 100
  t.is(b.next(), 100); // 0.5 × 200
  t.is(b.next(), 100); // 0.25 × 400
  t.is(b.next(), 0); // 0 × 800
  t.is(b.next(), 500); // 0.5 × 1000 (capped)
});

test("reset starts over at the base", (t) => {
  const b = new Backoff({ baseMs: 10, capMs: 1000, random: () => 0.5 });
  b.next();
  b.next();
  b.next();
  t.is(b.ceilingMs(), 80);
  b.reset();
  t.is(b.attempts, 0);
  t.is(b.next(), 5);
});

test("defaults are 500 ms base and 60 s cap", (t) => {
  const b = new Backoff();
  t.is(b.baseMs, 500);
  t.is(b.capMs, 60_000);
  for (let i = 0; i < 50; i++) {
    const d = b.next();
    t.true(d >= 0 && d < 60_000);
  }
  t.is(b.ceilingMs(), 60_000);
});

test("invalid options are rejected", (t) => {
  t.throws(() => new Backoff({ baseMs: 0 }), { instanceOf: RangeError });
  t.throws(() => new Backoff({ baseMs: 100, capMs: 50 }), { instanceOf: RangeError });
});

test("sleep resolves early when aborted", async (t) => {
  const ac = new AbortController();
  const started = Date.now();
  const p = sleep(10_000, ac.signal);
  setTimeout(() => ac.abort(), 10);
  t.false(await p);
  t.true(Date.now() - started < 1000);
  t.true(await sleep(1));
  t.false(await sleep(1000, AbortSignal.abort()));
});
