import test from "ava";
import { validateDns1123Label, validateDns1123Subdomain } from "./names.js";

test("labels: valid", (t) => {
  for (const v of ["a", "default", "kube-system", "a1", "1a", "x".repeat(63)]) {
    t.is(validateDns1123Label(v, "namespace"), undefined, v);
  }
});

test("labels: invalid, with the documented message", (t) => {
  t.is(
    validateDns1123Label("Foo", "namespace"),
    `namespace "Foo": must be a lowercase RFC 1123 label (a-z, 0-9, '-', at most 63 characters, starting and ending with a letter or digit)`,
  );
  for (const v of ["-a", "a-", "a.b", "a_b", "x".repeat(64), "ä"]) {
    t.regex(validateDns1123Label(v, "container") ?? "", /^container ".*": must be a lowercase RFC 1123 label/, v);
  }
  t.is(validateDns1123Label("", "namespace"), "namespace is required");
});

test("subdomains: valid", (t) => {
  for (const v of ["web", "web.v2", "a-b.c-d", "0", `${"a".repeat(63)}.${"b".repeat(63)}`]) {
    t.is(validateDns1123Subdomain(v, "workload"), undefined, v);
  }
});

test("subdomains: invalid", (t) => {
  for (const v of ["Web", "web.", ".web", "web..x", "web_x", "a".repeat(254)]) {
    t.regex(validateDns1123Subdomain(v, "workload") ?? "", /^workload ".*": must be a lowercase RFC 1123 subdomain/, v);
  }
  t.is(validateDns1123Subdomain("", "workload"), "workload is required");
});

test("long values are shortened in messages", (t) => {
  const msg = validateDns1123Label("X".repeat(500), "namespace") ?? "";
  t.true(msg.length < 300);
  t.regex(msg, /\.\.\."/);
});
