// The deadline a call is held to: the transport's timeout, or the caller's `k8sdeploy-deadline`
// when that is earlier (proto/src/deadline.ts says why both exist).
import { effectiveDeadline, InvalidDeadlineHeaderError } from "@k8sdeploy/proto/contract/deadline.js";
import { Code, RpcError } from "./rpc-error.js";

export { DEADLINE_HEADER } from "@k8sdeploy/proto/contract/deadline.js";

/** Throws INVALID_ARGUMENT for a malformed header. */
export function callerDeadline(transportDeadline: number | undefined, header: string | undefined): number | undefined {
  try {
    return effectiveDeadline(transportDeadline, header);
  } catch (err) {
    if (err instanceof InvalidDeadlineHeaderError) throw new RpcError(Code.INVALID_ARGUMENT, err.message);
    throw err;
  }
}
