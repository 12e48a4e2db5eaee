// The resolved digest an agent reports is stored only when it is a digest.
import test from "ava";
import { boundDigest } from "./bounded-reports.js";

test("boundDigest keeps sha256/384/512 digests and drops anything else", (t) => {
  const dropped: string[] = [];
  const ok = `sha256:${"a".repeat(64)}`;
  t.is(boundDigest(ok, dropped), ok);
  t.is(boundDigest(`sha512:${"b".repeat(128)}`, dropped), `sha512:${"b".repeat(128)}`);
  t.is(boundDigest("", dropped), "");
  t.deepEqual(dropped, []);
  t.is(boundDigest("<script>alert(1)</script>", dropped), "");
  t.is(boundDigest(`sha256:${"A".repeat(64)}`, dropped), "");
  t.is(dropped.length, 2);
  t.regex(dropped[0] ?? "", /^resolved_digest: .* is not a digest$/);
});
