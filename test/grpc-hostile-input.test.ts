// The gRPC port under hostile input, against a real `k8sdeploy serve`: HTTP/2 protocol errors get
// their connection closed within seconds (not ~90 s), bytes that are not protobuf are
// INVALID_ARGUMENT (not INTERNAL) on every service, and credential guessing is rate-limited per
// client address on both ports while a correct credential from another address still works.
import * as http from "node:http";
import * as net from "node:net";
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { adminClient } from "./support/clients.js";
import { type Orchestrator, startOrchestrator } from "./support/orchestrator.js";
import { grpcFrame, rawGrpcCall } from "./support/raw-grpc.js";

const ADMIN_TOKEN = `admin-${"9a55".repeat(10)}`;
const LIMIT = 10;
let orch: Orchestrator;

test.before(async () => {
  orch = await startOrchestrator({
    env: { K8SDEPLOY_ADMIN_TOKEN: ADMIN_TOKEN, K8SDEPLOY_AUTH_FAILURES_PER_MINUTE: String(LIMIT) },
  });
});

test.after.always(async () => {
  await orch?.stop();
});

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}
const SETTINGS = frame(4, 0, 0, Buffer.alloc(0));
const SETTINGS_ACK = frame(4, 1, 0, Buffer.alloc(0));

/** Connects, sends the preface + `garbage`, acks pings like a live client; ms until the server closes. */
function secondsUntilClosed(garbage: Buffer, waitMs: number): Promise<number | undefined> {
  const [host, port] = orch.grpcAddress.split(":");
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(Number(port), host, () => {
      socket.write(Buffer.concat([PREFACE, SETTINGS, SETTINGS_ACK, garbage]));
    });
    socket.on("data", () => {});
    socket.on("error", () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(undefined);
    }, waitMs);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve((Date.now() - started) / 1000);
    });
  });
}

const garbageFrames: Record<string, Buffer> = {
  "DATA on an idle stream": frame(0, 0, 1, Buffer.from("hello")),
  "a bad HPACK block": frame(1, 0x04 | 0x01, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
  "an oversize frame (20000 > 16384)": frame(0, 0, 1, Buffer.alloc(20_000)),
};

test("HTTP/2 protocol errors: the server closes the connection within 8 s", async (t) => {
  const results = await Promise.all(
    Object.entries(garbageFrames).map(
      async ([name, bytes]) => [name, await secondsUntilClosed(bytes, 15_000)] as const,
    ),
  );
  for (const [name, seconds] of results) {
    t.log(`${name}: closed after ${seconds === undefined ? "> 15" : seconds.toFixed(1)} s`);
    t.true(seconds !== undefined && seconds < 8, name);
  }
});

test("a healthy idle connection is not closed by the protocol-error watchdog", async (t) => {
  const admin = adminClient(orch.grpcAddress, ADMIN_TOKEN);
  try {
    await admin.listDeployments();
    // The channel stays connected while idle; the watchdog pings it every 2 s and it answers.
    await new Promise((r) => setTimeout(r, 9000));
    await admin.listDeployments();
    t.pass();
  } finally {
    admin.close();
  }
});

test("bytes that are not protobuf are INVALID_ARGUMENT on every service, and the server keeps serving", async (t) => {
  const bad = grpcFrame(Buffer.from([0xff, 0xff, 0xff]));
  const authorization = `Bearer ${ADMIN_TOKEN}`;
  for (const path of [
    "/k8sdeploy.v1.DeployService/Deploy",
    "/k8sdeploy.v1.DeployService/WatchDeployment",
    "/k8sdeploy.v1.AdminService/ListAgents",
    "/k8sdeploy.v1.AgentService/Connect",
    "/grpc.health.v1.Health/Check",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  ]) {
    const r = await rawGrpcCall(orch.grpcAddress, path, bad, { authorization });
    t.is(r.code, grpc.status.INVALID_ARGUMENT, `${path}: ${r.code} ${r.message}`);
    t.regex(r.message, new RegExp(`the request to ${path.replaceAll(".", "\\.")} is not a valid protobuf message`));
  }
  const ok = await rawGrpcCall(orch.grpcAddress, "/grpc.health.v1.Health/Check", grpcFrame(Buffer.alloc(0)));
  t.is(ok.code, grpc.status.OK);
});

test.serial("credential guessing is rate-limited per address on both ports; others still get in", async (t) => {
  const wrong = `Bearer wrong-${"x".repeat(30)}`;
  const list = (authorization: string, localAddress: string) =>
    rawGrpcCall(orch.grpcAddress, "/k8sdeploy.v1.AdminService/ListAgents", grpcFrame(Buffer.alloc(0)), {
      authorization,
      localAddress,
    });
  const codes: (number | undefined)[] = [];
  for (let i = 0; i < LIMIT + 5; i++) codes.push((await list(wrong, "127.0.0.3")).code);
  t.deepEqual(codes.slice(0, LIMIT), Array(LIMIT).fill(grpc.status.UNAUTHENTICATED));
  t.deepEqual(codes.slice(LIMIT + 1), Array(4).fill(grpc.status.RESOURCE_EXHAUSTED));
  const refused = await list(`Bearer ${ADMIN_TOKEN}`, "127.0.0.3");
  t.is(refused.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(refused.message, /too many failed authentications from 127\.0\.0\.3: retry in \d+ s/);
  t.false(refused.message.includes(ADMIN_TOKEN));

  // The same address over HTTP (Connect) is refused too, before its body is read.
  const [, httpPort] = orch.httpAddress.split(":");
  const viaHttp = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: Number(httpPort),
        localAddress: "127.0.0.3",
        method: "POST",
        path: "/k8sdeploy.v1.AdminService/ListAgents",
        headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end("{}");
  });
  t.is(viaHttp.status, 429);
  t.regex(viaHttp.body, /resource_exhausted/);

  // Another address with the right token is not locked out by 127.0.0.3's failures.
  t.is((await list(`Bearer ${ADMIN_TOKEN}`, "127.0.0.4")).code, grpc.status.OK);

  // Failures are counted by kind and logged without the presented secret.
  const metrics = await (await fetch(`${orch.httpUrl}/metrics`)).text();
  const admin = /k8sdeploy_auth_failures_total\{kind="admin"\} (\d+)/.exec(metrics);
  t.true(
    Number(admin?.[1]) >= LIMIT,
    metrics
      .split("\n")
      .filter((l) => l.includes("auth"))
      .join("\n"),
  );
  t.regex(metrics, /k8sdeploy_auth_rate_limited_total \d+/);
  const logged = orch.logEntries().filter((e) => e.msg === "authentication failed");
  t.true(logged.length >= LIMIT);
  t.true(logged.some((e) => e.peer === "127.0.0.3" && e.credential === "admin"));
  t.false(orch.logs().includes("wrong-xxxx"));
  t.true(
    orch
      .logEntries()
      .some((e) => e.msg === "too many failed authentications from one address: refusing it for a while"),
  );
});
