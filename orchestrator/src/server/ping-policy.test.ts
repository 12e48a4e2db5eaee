// The keepalive minimum, enforced on the real grpc-js server: raw HTTP/2 clients ping it.
import * as http2 from "node:http2";
import test from "ava";
import pino from "pino";
import type { App } from "../app.js";
import { loadConfig } from "../config.js";
import { startGrpcServer } from "./grpc-server.js";
import { MAX_STRIKES } from "./ping-policy.js";

const log = pino({ level: "silent" });
const app = { grpcServices: [], ready: async () => true, shutdown: async () => {} } as unknown as App;

async function serverWithMinimum(seconds: number) {
  const config = loadConfig({
    K8SDEPLOY_ADMIN_TOKEN: "t".repeat(24),
    K8SDEPLOY_GRPC_LISTEN: "127.0.0.1:0",
    K8SDEPLOY_HTTP_LISTEN: "127.0.0.1:0",
    K8SDEPLOY_KEEPALIVE_MIN_SECONDS: String(seconds),
  });
  return startGrpcServer(config, app, log, { healthPollMs: 50 });
}

function connect(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.once("connect", () => resolve(session));
    session.once("error", reject);
  });
}

const ping = (session: http2.ClientHttp2Session) =>
  new Promise<void>((resolve, reject) => session.ping(Buffer.alloc(8), (err) => (err ? reject(err) : resolve())));

test("a client pinging faster than the minimum gets GOAWAY ENHANCE_YOUR_CALM too_many_pings", async (t) => {
  const server = await serverWithMinimum(1);
  const session = await connect(server.port);
  const goaway = new Promise<{ code: number; data: string }>((resolve) =>
    session.once("goaway", (code, _last, data) => resolve({ code, data: data?.toString() ?? "" })),
  );
  session.on("error", () => {});
  for (let i = 0; i <= MAX_STRIKES + 1; i++) await ping(session).catch(() => {});
  const { code, data } = await goaway;
  t.is(code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  t.is(data, "too_many_pings");
  session.destroy();
  await server.close(0);
});

test("a client pinging at the minimum keeps its connection", async (t) => {
  const server = await serverWithMinimum(1);
  const session = await connect(server.port);
  let goaway = false;
  session.on("goaway", () => {
    goaway = true;
  });
  for (let i = 0; i < MAX_STRIKES + 2; i++) {
    await ping(session);
    await new Promise((r) => setTimeout(r, 1050));
  }
  t.false(goaway);
  t.false(session.destroyed);
  session.destroy();
  await server.close(0);
});
