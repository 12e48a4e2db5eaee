// Transport-neutral RPC errors. Codes are the gRPC status codes, which Connect shares, so both
// adapters map them 1:1.
import { status } from "@grpc/grpc-js";

export const Code = status;
export type Code = status;

export class RpcError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

export const invalidArgument = (message: string) => new RpcError(Code.INVALID_ARGUMENT, message);
export const unauthenticated = (message: string) => new RpcError(Code.UNAUTHENTICATED, message);
export const permissionDenied = (message: string) => new RpcError(Code.PERMISSION_DENIED, message);
export const notFound = (message: string) => new RpcError(Code.NOT_FOUND, message);
export const unavailable = (message: string) => new RpcError(Code.UNAVAILABLE, message);
export const failedPrecondition = (message: string) => new RpcError(Code.FAILED_PRECONDITION, message);
