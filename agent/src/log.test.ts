import test from "ava";
import { createLogger, scrubSecrets } from "./log.js";

const TOKEN = "kda_c2VjcmV0LXRva2VuLXZhbHVl";

function capture() {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", destination: { write: (l) => lines.push(l) } });
  return { log, lines, json: () => lines.map((l) => JSON.parse(l)) };
}

test("JSON lines with level labels and ISO time", (t) => {
  const { log, json } = capture();
  log.info({ commandId: "c1" }, "hello");
  const [line] = json();
  t.like(line, { level: "info", msg: "hello", commandId: "c1", component: "k8sdeploy-agent" });
  t.regex(line.time, /^\d{4}-\d\d-\d\dT/);
});

test("token and authorization fields are redacted", (t) => {
  const { log, lines } = capture();
  log.info({ token: TOKEN, metadata: { authorization: `Bearer ${TOKEN}` }, config: { token: TOKEN } }, "x");
  log.info({ headers: { authorization: "Bearer abc" } }, "y");
  const text = lines.join("");
  t.false(text.includes(TOKEN));
  t.false(text.includes("Bearer abc"));
  t.true(text.includes("[REDACTED]"));
});

test("token-shaped strings are scrubbed anywhere, including error messages", (t) => {
  const { log, lines } = capture();
  log.error({ err: new Error(`server said: bad token ${TOKEN}`) }, `while sending ${TOKEN}`);
  log.warn({ nested: { deep: [`x ${TOKEN},y`] } }, "z");
  const text = lines.join("");
  t.false(text.includes(TOKEN));
  t.false(text.includes("c2VjcmV0"));
  t.true(text.includes("kda_[REDACTED]"));
  t.notThrows(() => lines.map((l) => JSON.parse(l)));
});

test("scrubSecrets leaves other text alone and is idempotent", (t) => {
  t.is(scrubSecrets("no secrets here: kd_abc"), "no secrets here: kd_abc");
  t.is(scrubSecrets(`"${TOKEN}"`), '"kda_[REDACTED]"');
  t.is(scrubSecrets(scrubSecrets(TOKEN)), "kda_[REDACTED]");
});

test("grpc-js diagnostics go through the logger, scrubbed", async (t) => {
  const grpc = await import("@grpc/grpc-js");
  const { routeGrpcLogs } = await import("./log.js");
  const { log, lines } = capture();
  routeGrpcLogs(log);
  try {
    grpc.experimental.log(grpc.logVerbosity.ERROR, `connection failed with authorization: Bearer ${TOKEN}`);
  } finally {
    grpc.setLogger(console);
  }
  t.is(lines.length, 1);
  const line = JSON.parse(lines[0]!);
  t.like(line, { level: "warn", source: "grpc-js" });
  t.false(lines[0]!.includes(TOKEN));
});
