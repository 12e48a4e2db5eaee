// Two checks grpc-js has no option for, done with its own idioms (a server interceptor and the
// service definition's requestDeserialize):
//  - Bytes that are not valid protobuf: grpc-js answers INTERNAL when a deserializer throws
//    (server-interceptors.js hard-codes it). tolerantDefinition() makes the deserializer return
//    an UndecodableRequest instead, and the interceptor answers INVALID_ARGUMENT naming the method.
//  - Credential guessing: an address the AuthGuard refuses gets RESOURCE_EXHAUSTED before the
//    handler (and so the credential check) runs; every UNAUTHENTICATED status is reported to it.
import * as grpc from "@grpc/grpc-js";
import type { AuthGuard } from "../auth/auth-guard.js";

export class UndecodableRequest {
  constructor(readonly details: string) {}
}

/** A copy of `definition` whose request deserializers never throw. */
export function tolerantDefinition(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return new UndecodableRequest(
            `the request to ${method.path} is not a valid protobuf message (${(err as Error).message}); send the message type the method declares`,
          );
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/** `server.addService` with tolerantDefinition(), for libraries that register themselves (health, reflection). */
export function tolerantRegistrar(server: grpc.Server): grpc.Server {
  return {
    addService: (definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) =>
      server.addService(tolerantDefinition(definition), implementation),
  } as unknown as grpc.Server;
}

export function guardInterceptor(guard: AuthGuard | undefined): grpc.ServerInterceptor {
  return (method, call) => {
    const address = call.getConnectionInfo().remoteAddress;
    let authorization: string | undefined;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const value = metadata.get("authorization")[0];
            authorization = typeof value === "string" ? value : undefined;
            if (!guard) return nextMetadata(metadata);
            guard.retryAfterSeconds(address).then(
              (seconds) => {
                if (seconds === 0) return nextMetadata(metadata);
                const refusal = guard.refusal(address, seconds);
                call.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: refusal.message });
              },
              () => nextMetadata(metadata),
            );
          },
          onReceiveMessage: (message, nextMessage) => {
            if (message instanceof UndecodableRequest) {
              call.sendStatus({ code: grpc.status.INVALID_ARGUMENT, details: message.details });
              return;
            }
            nextMessage(message);
          },
        }),
      sendStatus: (status, nextStatus) => {
        if (guard && status.code === grpc.status.UNAUTHENTICATED) {
          void guard.failed({
            address,
            authorization,
            method: method.path,
            reason: status.details ?? "",
            transport: "grpc",
          });
        }
        nextStatus(status);
      },
    });
  };
}
