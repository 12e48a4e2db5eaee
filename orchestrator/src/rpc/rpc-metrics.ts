// RPC metrics for both transports: k8sdeploy_rpc_handled_total and (unary only)
// k8sdeploy_rpc_duration_seconds, labelled with gRPC status names on both, so one PromQL
// expression covers the gRPC and the Connect port. gRPC: a grpc-js server interceptor (the
// library's own hook), placed first so that it also sees the statuses the guard interceptor sends.
// Connect: connect-adapter.ts reports the code it sends (connect-es interceptors do not see
// calls refused before the handler, e.g. a body over the read limit).
import * as grpc from "@grpc/grpc-js";
import type { Metrics } from "../metrics.js";

export type Transport = "grpc" | "connect";

/** `/k8sdeploy.v1.AdminService/ListAgents` → ["k8sdeploy.v1.AdminService", "ListAgents"]. */
export function splitMethodPath(path: string): [service: string, method: string] {
  const slash = path.lastIndexOf("/");
  return slash > 0 ? [path.slice(1, slash), path.slice(slash + 1)] : ["unknown", "unknown"];
}

/** grpc.status number → its name (OK, CANCELLED, …); UNKNOWN for anything else. */
export function grpcCodeName(code: number): string {
  const name = grpc.status[code];
  return typeof name === "string" ? name : "UNKNOWN";
}

/** Connect's code strings (`invalid_argument`, `canceled`) → gRPC status names. */
export function connectCodeName(code: string): string {
  if (code === "canceled") return "CANCELLED";
  const name = code.toUpperCase();
  return name in grpc.status ? name : "UNKNOWN";
}

export function observeRpc(
  metrics: Metrics,
  transport: Transport,
  service: string,
  method: string,
  code: string,
  seconds: number | undefined,
): void {
  const labels = { transport, service, method, code };
  metrics.rpcHandled.inc(labels);
  if (seconds !== undefined) metrics.rpcDuration.observe(labels, seconds);
}

/** Counts every gRPC call once, when its status is sent or it is cancelled. */
export function grpcMetricsInterceptor(metrics: Metrics): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const started = performance.now();
    const [service, method] = splitMethodPath(descriptor.path);
    const unary = !descriptor.requestStream && !descriptor.responseStream;
    let done = false;
    const finish = (code: string) => {
      if (done) return;
      done = true;
      observeRpc(metrics, "grpc", service, method, code, unary ? (performance.now() - started) / 1000 : undefined);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => next({ onCancel: () => finish("CANCELLED") }),
      sendStatus: (status, next) => {
        finish(grpcCodeName(status.code));
        next(status);
      },
    });
  };
}
