// Serves the same handler objects as the gRPC port over the Connect protocol (JSON and binary,
// HTTP/1.1 for browsers). Messages cross between the two generated type systems through their
// shared wire format: the request is re-read with the grpc-js definition's deserializer and the
// response re-read with protobuf-es's schema, so no field is mapped by hand.
//
// Limits, because this port is reachable without credentials (connect-node's defaults are a 4 GiB
// read limit and ignoring unknown JSON fields):
//  - readMaxBytes MAX_REQUEST_BYTES bounds both the body read and its gzip inflation (connect-node
//    passes it to zlib as maxOutputLength): resource_exhausted past it; brotli is not accepted;
//  - a request without `Authorization: Bearer <token>`, or from an address the AuthGuard refuses,
//    is answered before a byte of its body is read;
//  - JSON with unknown fields or enum names is invalid_argument naming the field;
//  - binary bodies that are not protobuf are invalid_argument (connect-es says internal/500).
// Only the Connect protocol is served here (what the dashboard and Connect clients speak);
// gRPC clients use the gRPC port.
import type * as http from "node:http";
import type { DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  Code as ConnectCode,
  ConnectError,
  type ConnectRouter,
  createConnectRouter,
  createContextKey,
  createContextValues,
  type HandlerContext,
} from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import { AdminService } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { DeployService } from "@k8sdeploy/proto/es/k8sdeploy/v1/deploy_pb.js";
import type { Logger } from "pino";
import { type AuthGuard, normalizeAddress } from "../auth/auth-guard.js";
import { bearerToken } from "../auth/authenticate.js";
import type { Metrics } from "../metrics.js";
import { callerDeadline, DEADLINE_HEADER } from "./caller-deadline.js";
import type { GrpcService } from "./grpc-services.js";
import type { CallContext } from "./handler.js";
import { knownRpcError, RpcError } from "./rpc-error.js";
import { connectCodeName, observeRpc } from "./rpc-metrics.js";

type AnyHandler = (req: unknown, ctx: CallContext) => Promise<unknown> | AsyncIterable<unknown>;

interface GrpcMethodDefinition {
  requestDeserialize(value: Buffer): unknown;
  responseSerialize(value: unknown): Buffer;
}

/** Largest request message (after decompression) accepted on the HTTP port. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

interface Peer {
  address: string | undefined;
  guard: AuthGuard | undefined;
}
const peerKey = createContextKey<Peer>({ address: undefined, guard: undefined });

function contextOf(ctx: HandlerContext): CallContext {
  const timeoutMs = ctx.timeoutMs();
  return {
    authorization: ctx.requestHeader.get("authorization") ?? undefined,
    signal: ctx.signal,
    deadline: callerDeadline(
      timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
      ctx.requestHeader.get(DEADLINE_HEADER) ?? undefined,
    ),
    peer: normalizeAddress(ctx.values.get(peerKey).address),
  };
}

function toConnectError(err: unknown, log: Logger, method: string, ctx: HandlerContext): ConnectError {
  let error: ConnectError;
  const known = knownRpcError(err);
  if (known) {
    if (!(err instanceof RpcError)) log.warn({ err: String(err), method }, "store unavailable");
    error = new ConnectError(known.message, known.code as number as ConnectCode);
  } else if (err instanceof ConnectError) error = err;
  else {
    log.error({ err, method }, "unexpected error in RPC handler");
    error = new ConnectError("internal error; the orchestrator log has the details", ConnectCode.Internal);
  }
  if (error.code === ConnectCode.Unauthenticated) {
    const peer = ctx.values.get(peerKey);
    void peer.guard?.failed({
      address: peer.address,
      authorization: ctx.requestHeader.get("authorization") ?? undefined,
      method: `/${ctx.service.typeName}/${ctx.method.name}`,
      reason: error.rawMessage,
      transport: "http",
    });
  }
  return error;
}

function bridge(
  log: Logger,
  schema: DescService,
  grpcService: GrpcService,
  handlers: Record<string, AnyHandler>,
): Record<string, unknown> {
  const implementation: Record<string, unknown> = {};
  for (const method of schema.methods as DescMethod[]) {
    const name = method.localName;
    const handler = handlers[name];
    const definition = (grpcService.definition as unknown as Record<string, GrpcMethodDefinition>)[name];
    if (!handler || !definition) throw new Error(`no handler for ${schema.typeName}.${method.name}`);
    const input = (req: Parameters<typeof toBinary>[1]) =>
      definition.requestDeserialize(Buffer.from(toBinary(method.input as DescMessage, req)));
    const output = (res: unknown) => fromBinary(method.output as DescMessage, definition.responseSerialize(res));
    const label = `${schema.name}/${method.name}`;
    if (method.methodKind === "server_streaming") {
      implementation[name] = async function* (req: Parameters<typeof toBinary>[1], ctx: HandlerContext) {
        try {
          for await (const res of handler(input(req), contextOf(ctx)) as AsyncIterable<unknown>) yield output(res);
        } catch (err) {
          throw toConnectError(err, log, label, ctx);
        }
      };
    } else {
      implementation[name] = async (req: Parameters<typeof toBinary>[1], ctx: HandlerContext) => {
        try {
          return output(await (handler(input(req), contextOf(ctx)) as Promise<unknown>));
        } catch (err) {
          throw toConnectError(err, log, label, ctx);
        }
      };
    }
  }
  return implementation;
}

export interface ConnectServices {
  deploy: { service: GrpcService; handlers: Record<string, AnyHandler> };
  admin: { service: GrpcService; handlers: Record<string, AnyHandler> };
}

const MISSING_CREDENTIALS =
  "missing credentials: send `Authorization: Bearer <token>` with the admin token, or a deploy key (kdk_…) for DeployService";

/** A request body that fails when read, so connect-node answers `error` in the request's protocol. */
function refusingBody(error: ConnectError): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.reject(error),
    }),
  };
}

/**
 * connect-es reports a binary body that is not protobuf as `internal` ("parse binary: …"), the
 * code for a server fault; this rewrites that one error to invalid_argument, and names the field and
 * the valid values in protobuf-es's "cannot decode enum … from JSON" errors. Everything else passes through.
 */
function betterError(json: { code?: string; message?: string }, handler: UniversalHandler): boolean {
  const message = json.message ?? "";
  if (json.code === "internal" && message.startsWith("parse binary:")) {
    json.code = "invalid_argument";
    json.message = `the request is not a valid ${handler.method.input.typeName} protobuf message (${message.slice(14)})`;
    return true;
  }
  // protobuf-es names the enum type, not the field: find the field(s) of that type.
  const enumError = /^cannot decode enum ([\w.]+) from JSON: (.*)$/.exec(message);
  if (json.code === "invalid_argument" && enumError) {
    const fields = handler.method.input.fields.filter((f) => f.enum?.typeName === enumError[1]);
    const desc = fields[0]?.enum;
    if (desc) {
      const names = fields.map((f) => f.jsonName).join(" / ");
      json.message = `${names}: ${enumError[2]} is not a ${desc.name} value; use one of ${desc.values.map((v) => v.name).join(", ")}`;
      return true;
    }
  }
  return false;
}

/** The Connect code (`ok`, `invalid_argument`, …) a response carried, for the RPC metrics. */
interface Outcome {
  code: string;
}

async function* rewriteEndStream(
  body: AsyncIterable<Uint8Array>,
  handler: UniversalHandler,
  outcome: Outcome,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    // connect-node yields one whole envelope per chunk; the end-stream one (flag 0x02, not
    // compressed: it is small) carries the error as JSON.
    if (chunk.length >= 5 && (chunk[0] ?? 0) === 0x02) {
      try {
        const end = JSON.parse(Buffer.from(chunk.subarray(5)).toString("utf8")) as {
          error?: { code?: string; message?: string };
        };
        const bettered = end.error !== undefined && betterError(end.error, handler);
        if (end.error) outcome.code = end.error.code ?? "unknown";
        if (end.error && bettered) {
          const data = Buffer.from(JSON.stringify(end));
          const head = Buffer.alloc(5);
          head.writeUInt8(0x02, 0);
          head.writeUInt32BE(data.length, 1);
          yield Buffer.concat([head, data]);
          continue;
        }
      } catch {
        // not JSON: pass it on unchanged
      }
    }
    yield chunk;
  }
}

async function improveErrors(
  res: UniversalServerResponse,
  handler: UniversalHandler,
  outcome: Outcome,
): Promise<UniversalServerResponse> {
  outcome.code = res.status === 200 ? "ok" : "unknown";
  if (!res.body || !(Symbol.asyncIterator in res.body)) return res;
  const body = res.body as AsyncIterable<Uint8Array>;
  if (res.status === 200) return { ...res, body: rewriteEndStream(body, handler, outcome) };
  if (res.status < 400) return res;
  // A unary error: one small JSON body.
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const raw = Buffer.concat(chunks);
  let json: { code?: string; message?: string } | undefined;
  try {
    json = JSON.parse(raw.toString("utf8")) as { code?: string; message?: string };
  } catch {
    json = undefined;
  }
  if (json?.code) outcome.code = json.code;
  if (!json || !betterError(json, handler))
    return {
      ...res,
      body: (async function* () {
        yield raw;
      })(),
    };
  const out = Buffer.from(JSON.stringify(json));
  const header = new Headers(res.header);
  header.set("content-length", String(out.length));
  return {
    ...res,
    status: json.code === "invalid_argument" ? 400 : res.status,
    header,
    body: (async function* () {
      yield out;
    })(),
  };
}

/** How long a connection whose request body was left unread stays open after the response. */
const LINGER_MS = 2000;

/**
 * An HTTP handler answering `/k8sdeploy.v1.DeployService/*` and `/k8sdeploy.v1.AdminService/*`.
 * It replaces connectNodeAdapter (a few lines around connect-node's own request/response
 * helpers) because that adapter has no hook before the body is read nor on the response.
 */
export function connectHandler(
  log: Logger,
  services: ConnectServices,
  guard?: AuthGuard,
  metrics?: Metrics,
): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const router = createConnectRouter({
    connect: true,
    grpc: false,
    grpcWeb: false,
    readMaxBytes: MAX_REQUEST_BYTES,
    // gzip only: its inflater needs 32 KiB, while each brotli decoder allocates its stream's window
    // (up to 16 MiB, measured) before readMaxBytes can stop it, a cost callers could multiply.
    acceptCompression: [compressionGzip],
    jsonOptions: { ignoreUnknownFields: false },
  });
  const routes = (r: ConnectRouter) => {
    // biome-ignore lint/suspicious/noExplicitAny: the bridge builds the implementation from the schema itself
    r.service(DeployService, bridge(log, DeployService, services.deploy.service, services.deploy.handlers) as any);
    // biome-ignore lint/suspicious/noExplicitAny: as above
    r.service(AdminService, bridge(log, AdminService, services.admin.service, services.admin.handlers) as any);
  };
  routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, h]));

  const serve = async (handler: UniversalHandler, req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = performance.now();
    const address = req.socket.remoteAddress;
    const values = createContextValues().set(peerKey, { address, guard });
    let uReq: UniversalServerRequest = universalRequestFromNodeRequest(req, res, undefined, values);
    let refusal: ConnectError | undefined;
    // Not a byte of a request without credentials will be read: stop reading at once.
    let paused = false;
    if (!bearerToken(req.headers.authorization) && req.socket) {
      req.socket.pause();
      paused = true;
    }
    const retryAfter = guard ? await guard.retryAfterSeconds(address) : 0;
    if (guard && retryAfter > 0) {
      refusal = new ConnectError(guard.refusal(address, retryAfter).message, ConnectCode.ResourceExhausted);
    } else if (!bearerToken(req.headers.authorization)) {
      refusal = new ConnectError(MISSING_CREDENTIALS, ConnectCode.Unauthenticated);
      void guard?.failed({
        address,
        authorization: req.headers.authorization,
        method: handler.requestPath,
        reason: MISSING_CREDENTIALS,
        transport: "http",
      });
    }
    if (refusal) {
      // Without the length hint connect-node would answer resource_exhausted for a large body
      // instead of the refusal.
      const header = new Headers(uReq.header);
      header.delete("content-length");
      uReq = { ...uReq, header, body: refusingBody(refusal) };
      // Not a byte of the body will be used: stop reading it now (see the lingering close below).
      if (req.socket && !paused) {
        req.socket.pause();
        paused = true;
      }
    }
    const outcome: Outcome = { code: "unknown" };
    // Counted when the response is done: universalResponseToNodeResponse waits for an "end" event
    // that node:http responses never emit, so it does not resolve; "close" always comes.
    if (metrics) {
      res.once("close", () => {
        const code = res.writableFinished ? outcome.code : "canceled";
        const seconds = handler.method.methodKind === "unary" ? (performance.now() - started) / 1000 : undefined;
        observeRpc(metrics, "connect", handler.service.typeName, handler.method.name, connectCodeName(code), seconds);
      });
    }
    const out = await improveErrors(await handler(uReq), handler, outcome);
    // A refused or oversize request leaves its body unread. Kept alive, Node would read (and
    // discard) all of it, megabytes for a 64 MiB body: answer "connection: close" instead. Node then
    // ends the socket with destroySoon(), which resets a connection that still has unread data, and
    // the client can lose the answer it has not read yet; so this socket gets a lingering close:
    // stop reading, send our FIN after the response, drop the socket a little later.
    let answer = out;
    const socket = req.socket as typeof req.socket | null; // null once the client has gone
    if (!req.complete && socket) {
      socket.pause();
      const header = new Headers(out.header);
      header.set("connection", "close");
      answer = { ...out, header };
      // destroySoon is what Node's HTTP server calls after the last response of a connection.
      socket.destroySoon = () => {
        socket.pause();
        socket.end();
        setTimeout(() => socket.destroy(), LINGER_MS).unref();
      };
    } else if (paused && socket) {
      // The whole (small) request had arrived after all: the connection stays usable.
      socket.resume();
    }
    await universalResponseToNodeResponse(answer, res);
  };

  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (!path.startsWith(`/${DeployService.typeName}/`) && !path.startsWith(`/${AdminService.typeName}/`)) return false;
    const handler = paths.get(path);
    if (!handler) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end(`no such method: ${path}\n`);
      return true;
    }
    serve(handler, req, res).catch((err: unknown) => {
      if (ConnectError.from(err).code === ConnectCode.Aborted) return;
      log.warn({ err, method: handler.requestPath }, "serving a Connect request failed");
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
    return true;
  };
}
