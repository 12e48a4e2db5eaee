// The gRPC server: the app's services, grpc.health.v1.Health and server reflection (v1, v1alpha).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { type DescriptorProto, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { Logger } from "pino";
import type { App } from "../app.js";
import { type Config, formatAddress } from "../config.js";
import { grpcMetricsInterceptor } from "../rpc/rpc-metrics.js";
import { guardInterceptor, tolerantDefinition, tolerantRegistrar } from "./grpc-guard.js";
import { appReady } from "./http-server.js";
import { raiseSessionLimits } from "./http2-session-limits.js";
import { watchSessions } from "./http2-watchdog.js";
import { enforcePingPolicy, http2ServersOf } from "./ping-policy.js";

/*
 * Keepalive: what @grpc/grpc-js 1.14.7 (build/src/server.js) actually does on the server side.
 *
 * Read and enforced:
 *  - grpc.keepalive_time_ms / grpc.keepalive_timeout_ms: on every connection, with or without
 *    active calls, the server sends a PING every keepalive_time_ms (the timer restarts after each
 *    ack) and destroys the connection if the ack does not arrive within keepalive_timeout_ms.
 *    This is what keeps idle agent streams alive through load balancers that cut at ~60 s.
 *  - grpc.max_connection_age_ms (±10 % jitter): GOAWAY(NO_ERROR), no new streams; then after
 *    grpc.max_connection_age_grace_ms the session is destroyed, ending calls still open.
 *  - grpc.max_concurrent_streams: SETTINGS_MAX_CONCURRENT_STREAMS of every connection. A client
 *    (grpc-js at least) queues calls beyond it on its side until a stream ends, so one connection
 *    cannot start unbounded work here; calls still queued when their deadline passes fail on the
 *    client and never reach the server. The whole replica is bounded by rpc/admission.ts.
 *  - (also read: grpc.max_connection_idle_ms.)
 *
 * NOT read by the server (silently ignored):
 *  - grpc.keepalive_permit_without_calls: a client-side option (transport.js) only.
 *  - grpc.http2.min_ping_interval_without_data_ms, grpc.http2.min_time_between_pings_ms:
 *    grpc-js has no ping policy. We pass them to declare the intent, and enforce
 *    K8SDEPLOY_KEEPALIVE_MIN_SECONDS ourselves on the http2 sessions (ping-policy.ts): GOAWAY
 *    ENHANCE_YOUR_CALM "too_many_pings", as a gRPC C-core/Go server would.
 */
const KEEPALIVE_TIMEOUT_MS = 20_000;
/** Streams one connection may have open at once (an agent needs 1, the action 2). */
export const MAX_CONCURRENT_STREAMS = 100;

export interface GrpcServerHandle {
  server: grpc.Server;
  /** The bound port (the real one when the config asked for port 0). */
  port: number;
  /** `host:port` with the bound port. */
  address: string;
  health: HealthImplementation;
  /** Re-reads app.ready() and updates health now (also done every healthPollMs). */
  refreshHealth(): Promise<void>;
  /** Marks every health entry NOT_SERVING for good (the start of a shutdown). */
  drain(): void;
  /** drain(), then tryShutdown; after graceMs, forceShutdown. Idempotent. */
  close(graceMs: number): Promise<void>;
}

export interface GrpcServerOptions {
  /** How often health follows app.ready() (default 5000 ms). */
  healthPollMs?: number;
}

/** grpc-js server options derived from the config (exported for tests and docs). */
export function grpcServerOptions(config: Config): grpc.ServerOptions {
  const options: grpc.ServerOptions = {
    "grpc.keepalive_time_ms": config.keepaliveSeconds * 1000,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": config.keepaliveMinSeconds * 1000,
    "grpc.http2.min_time_between_pings_ms": config.keepaliveMinSeconds * 1000,
    "grpc.max_concurrent_streams": MAX_CONCURRENT_STREAMS,
    // No channelz service is served, yet grpc-js keeps channelz bookkeeping for every connection
    // unless told not to: a registered socket with getpeername/getsockname and counters per
    // session, about 5 % of the CPU of a reconnect storm (bench/results/profiles/restart-findings-*).
    "grpc.enable_channelz": 0,
  };
  if (config.maxConnectionAgeSeconds > 0) {
    options["grpc.max_connection_age_ms"] = config.maxConnectionAgeSeconds * 1000;
    options["grpc.max_connection_age_grace_ms"] = config.maxConnectionAgeGraceSeconds * 1000;
  }
  return options;
}

function serverCredentials(config: Config): grpc.ServerCredentials {
  if (!config.tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    null,
    [{ cert_chain: readFileSync(config.tls.certFile), private_key: readFileSync(config.tls.keyFile) }],
    false,
  );
}

/** Full service name (`k8sdeploy.v1.AdminService`) from a grpc-js service definition. */
export function serviceName(definition: grpc.ServiceDefinition): string {
  const first = Object.values(definition)[0];
  const m = first && /^\/([^/]+)\//.exec(first.path);
  if (!m?.[1]) throw new Error("service definition without methods");
  return m[1];
}

export async function startGrpcServer(
  config: Config,
  app: App,
  log: Logger,
  options: GrpcServerOptions = {},
): Promise<GrpcServerHandle> {
  // The metrics interceptor comes first (outermost): it sees the guard's refusals too.
  const server = new grpc.Server({
    ...grpcServerOptions(config),
    interceptors: [...(app.metrics ? [grpcMetricsInterceptor(app.metrics)] : []), guardInterceptor(app.authGuard)],
  });

  const names: string[] = [];
  for (const service of app.grpcServices) {
    server.addService(tolerantDefinition(service.definition), service.implementation);
    names.push(serviceName(service.definition));
  }

  // Health: "" (the whole server) and each served service. NOT_SERVING until app.ready().
  const healthNames = ["", ...names];
  const health = new HealthImplementation(Object.fromEntries(healthNames.map((n) => [n, "NOT_SERVING"])));
  health.addToServer(tolerantRegistrar(server));

  // Reflection over every file of the contract, whether or not its services are served yet.
  const files = reflectionFileDescriptors();
  const pkg = { "k8sdeploy.reflection": { fileDescriptorProtos: files } };
  new ReflectionService(pkg as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(
    tolerantRegistrar(server),
  );

  const address = formatAddress(config.grpcListen.host, config.grpcListen.port);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, serverCredentials(config), (err, bound) => {
      if (!err) return resolve(bound);
      server.forceShutdown();
      reject(new Error(`K8SDEPLOY_GRPC_LISTEN: cannot listen on ${address}: ${err.message}`, { cause: err }));
    }),
  );
  enforcePingPolicy(server, config.keepaliveMinSeconds * 1000, log);
  raiseSessionLimits(http2ServersOf(server));
  watchSessions(http2ServersOf(server), log);

  let draining = false;
  let serving: boolean | undefined;
  const setServing = (value: boolean) => {
    if (serving === value) return;
    serving = value;
    for (const n of healthNames) health.setStatus(n, value ? "SERVING" : "NOT_SERVING");
    log.info({ serving: value }, "grpc health changed");
  };
  let inFlight: Promise<void> | undefined;
  const refreshHealth = () => {
    inFlight ??= appReady(app, log)
      .then((ready) => {
        if (!draining) setServing(ready);
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  await refreshHealth();
  const timer = setInterval(() => void refreshHealth(), options.healthPollMs ?? 5000);
  timer.unref();

  const drain = () => {
    draining = true;
    clearInterval(timer);
    setServing(false);
  };

  let closing: Promise<void> | undefined;
  const close = (graceMs: number) => {
    closing ??= new Promise<void>((resolve) => {
      drain();
      const force = setTimeout(() => {
        log.warn({ graceMs }, "grpc calls still open after the grace period: closing connections");
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    return closing;
  };

  log.debug({ services: names, reflectionFiles: files.length }, "grpc services registered");
  return {
    server,
    port,
    address: formatAddress(config.grpcListen.host, port),
    health,
    refreshHealth,
    drain,
    close,
  };
}

// ---------------------------------------------------------------------------------------------
// Reflection descriptors.
//
// @grpc/reflection indexes whatever `fileDescriptorProtos` (serialized FileDescriptorProtos) the
// entries of the "package definition" it is given carry, keyed by file name. proto-loader
// merges all files of one package into one synthetic file without dependencies, which breaks
// grpcurl's method resolution for our multi-file contract. So the contract's files come RAW from
// the buf-built FileDescriptorSet (proto/gen/descriptor.binpb, which includes imports such as
// google/protobuf/timestamp.proto, and comments). Health and reflection themselves are single-
// file, single-package protos without imports, where proto-loader's merge is harmless, so theirs
// come from proto-loader, with one repair: protobufjs names map entry types after the field
// ("Statuses") where protoc says "StatusesEntry", and grpcurl (protobuf-go) then rejects the whole
// file ("invalid map: incorrect implicit map entry name"), i.e. grpc.health.v1.Health. The result
// is deduplicated by file name and ordered dependencies first.

interface FileInfo {
  name: string;
  dependencies: string[];
  bytes: Buffer;
}

/** Raw FileDescriptorProto bytes of each file in a serialized FileDescriptorSet, in set order. */
export function splitFileDescriptorSet(set: Uint8Array): Buffer[] {
  const reader = new BinaryReader(set);
  const files: Buffer[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(Buffer.from(reader.bytes()));
    else reader.skip(wireType, field);
  }
  return files;
}

function describe(bytes: Buffer): FileInfo {
  const file = fromBinary(FileDescriptorProtoSchema, bytes);
  return { name: file.name, dependencies: file.dependency, bytes };
}

const require = createRequire(import.meta.url);

/** Path of the buf-built descriptor set of the contract. */
export function contractDescriptorSetPath(): string {
  return fileURLToPath(import.meta.resolve("@k8sdeploy/proto/descriptor.binpb"));
}

function protoLoaderFiles(protoFile: string): Buffer[] {
  // keepCase: otherwise protobufjs renames fields to camelCase in the descriptor too.
  const def = protoLoader.loadSync(protoFile, { keepCase: true });
  // Every entry carries the same list; take the first.
  for (const entry of Object.values(def)) {
    const fdps = (entry as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    if (Array.isArray(fdps)) return fdps.map(repairMapEntryNames);
  }
  return [];
}

/** protoc's (and protobuf-go's) name for the entry type of map field `name`: foo_bar → FooBarEntry. */
export function mapEntryName(field: string): string {
  return `${field.replace(/(?:^|_)(.)/g, (_, c: string) => c.toUpperCase()).replaceAll("_", "")}Entry`;
}

/** Renames protobufjs-style map entry types to protoc's names and points the fields at them. */
export function repairMapEntryNames(bytes: Buffer): Buffer {
  const file = fromBinary(FileDescriptorProtoSchema, bytes);
  let changed = false;
  const visit = (message: DescriptorProto, scope: string) => {
    const fullName = `${scope}.${message.name}`;
    for (const field of message.field) {
      const last = field.typeName.split(".").pop() ?? "";
      const entry = message.nestedType.find((n) => n.options?.mapEntry && n.name === last);
      if (!entry) continue;
      const want = mapEntryName(field.name);
      if (entry.name !== want) {
        entry.name = want;
        changed = true;
      }
      const typeName = `${fullName}.${want}`;
      if (field.typeName !== typeName) {
        field.typeName = typeName;
        changed = true;
      }
    }
    for (const nested of message.nestedType) visit(nested, fullName);
  };
  for (const message of file.messageType) visit(message, file.package ? `.${file.package}` : "");
  return changed ? Buffer.from(toBinary(FileDescriptorProtoSchema, file)) : bytes;
}

/** Every file reflection serves: the contract (raw), health, reflection v1 and v1alpha. */
export function reflectionFileDescriptors(): Buffer[] {
  const sources = [
    ...splitFileDescriptorSet(readFileSync(contractDescriptorSetPath())),
    ...protoLoaderFiles(healthProtoPath),
    ...protoLoaderFiles(require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto")),
    ...protoLoaderFiles(require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto")),
  ];
  const byName = new Map<string, FileInfo>();
  for (const bytes of sources) {
    const info = describe(bytes);
    if (!byName.has(info.name)) byName.set(info.name, info);
  }
  // Dependencies first (depth-first post-order); unknown dependencies are left to the client.
  const ordered: Buffer[] = [];
  const done = new Set<string>();
  const visit = (info: FileInfo, path: Set<string>) => {
    if (done.has(info.name) || path.has(info.name)) return;
    path.add(info.name);
    for (const dep of info.dependencies) {
      const d = byName.get(dep);
      if (d) visit(d, path);
    }
    path.delete(info.name);
    done.add(info.name);
    ordered.push(info.bytes);
  };
  for (const info of byName.values()) visit(info, new Set());
  return ordered;
}
