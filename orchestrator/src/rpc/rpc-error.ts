// Transport-neutral RPC errors. Codes are the gRPC status codes, which Connect shares, so both
// adapters map them 1:1.
import { status } from "@grpc/grpc-js";
import { isStoreUnavailable, STORE_UNAVAILABLE_MESSAGE } from "../store/store-errors.js";

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

export const resourceExhausted = (message: string) => new RpcError(Code.RESOURCE_EXHAUSTED, message);

/**
 * The RpcError a handler's failure becomes: RpcErrors as they are, a store outage UNAVAILABLE
 * (callers retry it), anything else undefined (the adapters log it and answer INTERNAL).
 */
export function knownRpcError(err: unknown): RpcError | undefined {
  if (err instanceof RpcError) return err;
  if (isStoreUnavailable(err)) return unavailable(STORE_UNAVAILABLE_MESSAGE);
  return undefined;
}
