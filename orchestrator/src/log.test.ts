import test from "ava";
import pino from "pino";
import { createLogger, redactPaths } from "./log.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ logLevel: "info" }, { destination: { write: (s: string) => lines.push(JSON.parse(s)) } });
  return { log, lines };
}

test("every redacted path is censored, top level and one level down", (t) => {
  const { log, lines } = capture();
  const secret = "s3cr3t-value";
  const names = redactPaths.filter((p) => !p.includes(".")).concat("authorization");
  const top = Object.fromEntries(names.map((n) => [n, secret]));
  const nested = Object.fromEntries(names.map((n) => [n, secret]));
  log.info(
    {
      ...top,
      nested,
      headers: { authorization: secret },
      req: { headers: { authorization: secret } },
      metadata: { authorization: secret },
    },
    "m",
  );
  const text = JSON.stringify(lines);
  t.false(text.includes(secret), text);
  t.is((lines[0]?.nested as Record<string, unknown> | undefined)?.key, "[redacted]");
  t.is((lines[0]?.headers as Record<string, unknown> | undefined)?.authorization, "[redacted]");
});

test("redaction leaves the caller's object and unrelated fields alone", (t) => {
  const { log, lines } = capture();
  const when = new Date(0);
  const input = { deploymentId: "dep_1", via: { token: "x", keyId: "key_1" }, at: when };
  log.info(input, "deploy accepted");
  t.is(input.via.token, "x");
  t.deepEqual(lines[0]?.via, { token: "[redacted]", keyId: "key_1" });
  t.is(lines[0]?.deploymentId, "dep_1");
  t.is(lines[0]?.at, when.toISOString());
});

test("an array under the log object is censored element-wise only where the name is its own", (t) => {
  const { log, lines } = capture();
  log.info({ ids: ["a", "b"] }, "m");
  t.deepEqual(lines[0]?.ids, ["a", "b"]);
});

test("the same output as pino's own redaction of every path", (t) => {
  const { log, lines } = capture();
  const reference: Record<string, unknown>[] = [];
  const pinoRedact = pino(
    { base: null, timestamp: false, redact: { paths: [...redactPaths], censor: "[redacted]" } },
    { write: (s: string) => reference.push(JSON.parse(s)) },
  );
  const objects: Record<string, unknown>[] = [
    { a: { key: "k", other: 1 }, b: [1, 2], c: null, d: "plain" },
    { token: "t", x: { authorization: "Bearer x", redisUrl: "redis://:p@h" }, y: { adminToken: "a" } },
    { list: [{ token: "deeper, not a path" }], headers: { authorization: "h" }, metadata: { authorization: "m" } },
    { err: Object.assign(new Error("boom"), { key: "k" }), when: new Date(5) },
  ];
  for (const o of objects) {
    log.info(o, "m");
    pinoRedact.info(o, "m");
  }
  const strip = ({ level: _l, time: _t, pid: _p, ...rest }: Record<string, unknown>) => rest;
  t.deepEqual(lines.map(strip), reference.map(strip));
});
