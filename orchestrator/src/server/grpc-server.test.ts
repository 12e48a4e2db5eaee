import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import test from "ava";
import { protoPath as healthProtoPath } from "grpc-health-check";
import pino from "pino";
import type { App } from "../app.js";
import { type Config, loadConfig } from "../config.js";
import { createMetrics } from "../metrics.js";
import {
  grpcServerOptions,
  mapEntryName,
  reflectionFileDescriptors,
  repairMapEntryNames,
  serviceName,
  startGrpcServer,
} from "./grpc-server.js";
import { startHttpServer } from "./http-server.js";
import {
  MAX_REJECTED_STREAMS,
  STREAM_RESET_BURST,
  STREAM_RESET_RATE,
  sessionOptionsOf,
} from "./http2-session-limits.js";
import { http2ServersOf } from "./ping-policy.js";

const log = pino({ level: "silent" });

function config(env: Record<string, string> = {}): Config {
  return loadConfig({
    K8SDEPLOY_ADMIN_TOKEN: "t".repeat(24),
    K8SDEPLOY_GRPC_LISTEN: "127.0.0.1:0",
    K8SDEPLOY_HTTP_LISTEN: "127.0.0.1:0",
    ...env,
  });
}

function stubApp(state: { ready: boolean }): App {
  return {
    grpcServices: [],
    ready: async () => state.ready,
    shutdown: async () => {},
  } as unknown as App;
}

test("server options follow the config", (t) => {
  t.deepEqual(grpcServerOptions(config()), {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 20_000,
    "grpc.http2.min_time_between_pings_ms": 20_000,
    "grpc.max_concurrent_streams": 100,
    "grpc.enable_channelz": 0,
    "grpc.max_connection_age_ms": 1_800_000,
    "grpc.max_connection_age_grace_ms": 30_000,
  });
  const unlimited = grpcServerOptions(config({ K8SDEPLOY_MAX_CONNECTION_AGE_SECONDS: "0" }));
  t.false("grpc.max_connection_age_ms" in unlimited);
  t.false("grpc.max_connection_age_grace_ms" in unlimited);
});

test("mapEntryName matches protoc", (t) => {
  t.is(mapEntryName("statuses"), "StatusesEntry");
  t.is(mapEntryName("foo_bar"), "FooBarEntry");
  t.is(mapEntryName("a_b_c1"), "ABC1Entry");
});

test("repairMapEntryNames fixes protobufjs' health descriptor", (t) => {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: true });
  const raw = Object.values(def)
    .map((e) => (e as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos)
    .find(Array.isArray)?.[0];
  if (!raw) return t.fail("no descriptor");
  const before = fromBinary(FileDescriptorProtoSchema, raw).messageType.find((m) => m.name === "HealthListResponse");
  t.is(before?.nestedType[0]?.name, "Statuses");
  const after = fromBinary(FileDescriptorProtoSchema, repairMapEntryNames(raw)).messageType.find(
    (m) => m.name === "HealthListResponse",
  );
  t.is(after?.nestedType[0]?.name, "StatusesEntry");
  t.is(after?.field[0]?.typeName, ".grpc.health.v1.HealthListResponse.StatusesEntry");
});

test("reflection gets every contract file raw, plus health and reflection, dependencies first", (t) => {
  const files = reflectionFileDescriptors().map((b) => fromBinary(FileDescriptorProtoSchema, b));
  const names = files.map((f) => f.name);
  for (const name of [
    "google/protobuf/timestamp.proto",
    "k8sdeploy/v1/types.proto",
    "k8sdeploy/v1/agent.proto",
    "k8sdeploy/v1/deploy.proto",
    "k8sdeploy/v1/admin.proto",
  ]) {
    t.true(names.includes(name), name);
  }
  const services = files.flatMap((f) => f.service.map((s) => `${f.package}.${s.name}`));
  t.true(services.includes("grpc.health.v1.Health"));
  t.true(services.includes("grpc.reflection.v1.ServerReflection"));
  t.true(services.includes("grpc.reflection.v1alpha.ServerReflection"));
  t.is(new Set(names).size, names.length);
  for (const [i, file] of files.entries()) {
    for (const dep of file.dependency) t.true(names.indexOf(dep) < i, `${file.name} before ${dep}`);
  }
  // Raw: buf keeps the import list (proto-loader's merged files have none).
  t.deepEqual(files.find((f) => f.name === "k8sdeploy/v1/admin.proto")?.dependency, [
    "google/protobuf/timestamp.proto",
    "k8sdeploy/v1/types.proto",
  ]);
});

test("serviceName", (t) => {
  const def = { a: { path: "/k8sdeploy.v1.AdminService/CreateAgent" } } as unknown as grpc.ServiceDefinition;
  t.is(serviceName(def), "k8sdeploy.v1.AdminService");
});

function healthClient(address: string) {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  return new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
}

function check(client: grpc.Client, service = ""): Promise<string> {
  return new Promise((resolve, reject) =>
    (client as unknown as { check: grpc.requestCallback<unknown> & ((...a: unknown[]) => void) }).check(
      { service },
      (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status)),
    ),
  );
}

test("the HTTP/2 guards honest overload trips are raised on every listening server, before any session", async (t) => {
  const server = await startGrpcServer(config(), stubApp({ ready: true }), log);
  t.teardown(() => server.close(0));
  const servers = http2ServersOf(server.server);
  t.true(servers.length > 0);
  for (const s of servers) {
    const options = sessionOptionsOf(s);
    t.is(options.maxSessionRejectedStreams, MAX_REJECTED_STREAMS);
    t.is(options.streamResetBurst, STREAM_RESET_BURST);
    t.is(options.streamResetRate, STREAM_RESET_RATE);
    // What grpc-js set stays: the per-connection stream cap and its disabled session memory limit.
    t.is((options.settings as { maxConcurrentStreams?: number }).maxConcurrentStreams, 100);
  }
  // The options object is the one Node hands every new session: a session still serves.
  const client = healthClient(server.address);
  t.teardown(() => client.close());
  t.is(await check(client), "SERVING");
});

test("health follows app.ready() and drain; port 0 reports the real port", async (t) => {
  const state = { ready: false };
  const server = await startGrpcServer(config(), stubApp(state), log, { healthPollMs: 50 });
  t.teardown(() => server.close(0));
  t.true(server.port > 0);
  t.is(server.address, `127.0.0.1:${server.port}`);
  const client = healthClient(server.address);
  t.teardown(() => client.close());

  t.is(await check(client), "NOT_SERVING");
  state.ready = true;
  await server.refreshHealth();
  t.is(await check(client), "SERVING");
  server.drain();
  await server.refreshHealth();
  t.is(await check(client), "NOT_SERVING");
  await server.close(1000);
  await t.throwsAsync(check(client));
});

test("http: probes, metrics, mounted handlers, drain", async (t) => {
  const state = { ready: true };
  const metrics = createMetrics({ defaultMetrics: false });
  metrics.deploymentsFinished.inc({ state: 6 });
  metrics.deploymentsFinished.inc({ state: "succeeded" });
  const http = await startHttpServer(
    config(),
    stubApp(state),
    log,
    (req, res) => {
      if (req.url !== "/hello") return false;
      res.end("hi");
      return true;
    },
    { registry: metrics.registry },
  );
  t.teardown(() => http.close(0));
  http.use(async (req, res) => {
    if (req.url !== "/boom") return false;
    void res;
    throw new Error("boom");
  });
  const base = `http://${http.address}`;
  t.true(http.port > 0);

  const get = async (path: string) => {
    const res = await fetch(base + path);
    return [res.status, await res.text()] as const;
  };
  t.deepEqual(await get("/healthz"), [200, "ok\n"]);
  t.deepEqual(await get("/readyz"), [200, "ok\n"]);
  t.deepEqual(await get("/hello"), [200, "hi"]);
  t.deepEqual(await get("/boom"), [500, "internal error\n"]);
  t.deepEqual(await get("/nope"), [404, "not found\n"]);
  const [status, text] = await get("/metrics");
  t.is(status, 200);
  t.regex(text, /^k8sdeploy_deployments_finished_total\{state="rolled_back"\} 1$/m);
  t.regex(text, /^k8sdeploy_deployments_finished_total\{state="succeeded"\} 1$/m);

  state.ready = false;
  t.deepEqual(await get("/healthz"), [503, "not ready\n"]);
  state.ready = true;
  http.drain();
  t.deepEqual(await get("/readyz"), [503, "shutting down\n"]);
  t.deepEqual(await get("/healthz"), [200, "ok\n"]);
  await http.close(1000);
  await t.throwsAsync(fetch(`${base}/healthz`));
});
