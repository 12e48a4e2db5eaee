// Adapts transport-neutral handlers to grpc-js. Errors that are not RpcErrors become INTERNAL
// with a generic message (the details go to the log, never to the client).
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { normalizeAddress } from "../auth/auth-guard.js";
import { callerDeadline, DEADLINE_HEADER } from "./caller-deadline.js";
import type { CallContext, ServerStreamHandler, UnaryHandler } from "./handler.js";
import { knownRpcError, RpcError } from "./rpc-error.js";

/** Throws an RpcError for a malformed `k8sdeploy-deadline`. */
function contextOf(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): {
  ctx: CallContext;
  done: () => void;
} {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  const header = call.metadata.get(DEADLINE_HEADER)[0];
  const effective = callerDeadline(
    Number.isFinite(at) ? at : undefined,
    typeof header === "string" ? header : undefined,
  );
  const controller = new AbortController();
  const onCancel = () => controller.abort();
  call.on("cancelled", onCancel);
  const value = call.metadata.get("authorization")[0];
  return {
    ctx: {
      authorization: typeof value === "string" ? value : undefined,
      signal: controller.signal,
      deadline: effective,
      peer: normalizeAddress(
        call
          .getPeer()
          .replace(/:\d+$/, "")
          .replace(/^\[(.*)\]$/, "$1"),
      ),
    },
    done: () => call.off("cancelled", onCancel),
  };
}

export function toServiceError(err: unknown, log: Logger, method: string): Partial<grpc.StatusObject> {
  const known = knownRpcError(err);
  if (known) {
    if (!(err instanceof RpcError)) log.warn({ err: String(err), method }, "store unavailable");
    return { code: known.code, details: known.message };
  }
  log.error({ err, method }, "unexpected error in RPC handler");
  return { code: grpc.status.INTERNAL, details: "internal error; the orchestrator log has the details" };
}

export function grpcUnary<Req, Res>(log: Logger, method: string, handler: UnaryHandler<Req, Res>) {
  return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
    let context: ReturnType<typeof contextOf>;
    try {
      context = contextOf(call as grpc.ServerUnaryCall<unknown, unknown>);
    } catch (err) {
      callback(toServiceError(err, log, method));
      return;
    }
    const { ctx, done } = context;
    handler(call.request, ctx).then(
      (res) => {
        done();
        callback(null, res);
      },
      (err: unknown) => {
        done();
        callback(toServiceError(err, log, method));
      },
    );
  };
}

export function grpcServerStream<Req, Res>(log: Logger, method: string, handler: ServerStreamHandler<Req, Res>) {
  return (call: grpc.ServerWritableStream<Req, Res>) => {
    let context: ReturnType<typeof contextOf>;
    try {
      context = contextOf(call as grpc.ServerWritableStream<unknown, unknown>);
    } catch (err) {
      call.emit("error", toServiceError(err, log, method));
      return;
    }
    const { ctx, done } = context;
    (async () => {
      for await (const message of handler(call.request, ctx)) {
        if (ctx.signal.aborted) return;
        if (!call.write(message)) await new Promise((resolve) => call.once("drain", resolve));
      }
    })().then(
      () => {
        done();
        call.end();
      },
      (err: unknown) => {
        done();
        // grpc-js turns an 'error' event into the call's status and ends it.
        if (!ctx.signal.aborted) call.emit("error", toServiceError(err, log, method));
      },
    );
  };
}
