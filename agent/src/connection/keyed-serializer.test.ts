import test from "ava";
import { KeyedSerializer } from "./keyed-serializer.js";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("tasks with the same key run one at a time, in order; other keys run alongside", async (t) => {
  const s = new KeyedSerializer();
  const log: string[] = [];
  const task = (name: string, ms: number) => async () => {
    log.push(`start ${name}`);
    await tick(ms);
    log.push(`end ${name}`);
    return name;
  };
  const results = await Promise.all([s.run("a", task("a1", 30)), s.run("a", task("a2", 1)), s.run("b", task("b1", 5))]);
  t.deepEqual(results, ["a1", "a2", "b1"]);
  t.true(log.indexOf("end a1") < log.indexOf("start a2"));
  t.true(log.indexOf("start b1") < log.indexOf("end a1"));
  t.is(s.activeKeys, 0);
});

test("a failing task does not block the next one with the same key", async (t) => {
  const s = new KeyedSerializer();
  await t.throwsAsync(
    s.run("a", async () => {
      throw new Error("boom");
    }),
  );
  t.is(await s.run("a", async () => 42), 42);
});
