// Serves the same handler objects as the gRPC port over the Connect protocol (JSON and binary,
// HTTP/1.1 for browsers). Messages cross between the two generated type systems through their
// shared wire format: the request is re-read with the grpc-js definition's deserializer and the
// response re-read with protobuf-es's schema, so no field is mapped by hand.
import type * as http from "node:http";
import type { DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code as ConnectCode, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AdminService } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { DeployService } from "@k8sdeploy/proto/es/k8sdeploy/v1/deploy_pb.js";
import type { Logger } from "pino";
import type { GrpcService } from "./grpc-services.js";
import type { CallContext } from "./handler.js";
import { knownRpcError, RpcError } from "./rpc-error.js";

type AnyHandler = (req: unknown, ctx: CallContext) => Promise<unknown> | AsyncIterable<unknown>;

interface GrpcMethodDefinition {
  requestDeserialize(value: Buffer): unknown;
  responseSerialize(value: unknown): Buffer;
}

function contextOf(ctx: HandlerContext): CallContext {
  return { authorization: ctx.requestHeader.get("authorization") ?? undefined, signal: ctx.signal };
}

function toConnectError(err: unknown, log: Logger, method: string): ConnectError {
  const known = knownRpcError(err);
  if (known) {
    if (!(err instanceof RpcError)) log.warn({ err: String(err), method }, "store unavailable");
    return new ConnectError(known.message, known.code as number as ConnectCode);
  }
  if (err instanceof ConnectError) return err;
  log.error({ err, method }, "unexpected error in RPC handler");
  return new ConnectError("internal error; the orchestrator log has the details", ConnectCode.Internal);
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
          throw toConnectError(err, log, label);
        }
      };
    } else {
      implementation[name] = async (req: Parameters<typeof toBinary>[1], ctx: HandlerContext) => {
        try {
          return output(await (handler(input(req), contextOf(ctx)) as Promise<unknown>));
        } catch (err) {
          throw toConnectError(err, log, label);
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

/** An HTTP handler answering `/k8sdeploy.v1.DeployService/*` and `/k8sdeploy.v1.AdminService/*`. */
export function connectHandler(
  log: Logger,
  services: ConnectServices,
): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const routes = (router: ConnectRouter) => {
    // biome-ignore lint/suspicious/noExplicitAny: the bridge builds the implementation from the schema itself
    router.service(DeployService, bridge(log, DeployService, services.deploy.service, services.deploy.handlers) as any);
    // biome-ignore lint/suspicious/noExplicitAny: as above
    router.service(AdminService, bridge(log, AdminService, services.admin.service, services.admin.handlers) as any);
  };
  const adapter = connectNodeAdapter({ routes });
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (!path.startsWith(`/${DeployService.typeName}/`) && !path.startsWith(`/${AdminService.typeName}/`)) return false;
    adapter(req, res);
    return true;
  };
}
