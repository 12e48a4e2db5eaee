// Wires the store and the features into the services the servers expose.
// (Placeholder until the features land: no services yet.)
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { MemoryStore } from "./store/memory-store.js";
import type { Store } from "./store/store.js";

export interface GrpcService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface App {
  readonly store: Store;
  readonly grpcServices: GrpcService[];
  /** True when the app can serve (store reachable). */
  ready(): Promise<boolean>;
  /** Drains agent streams and closes the store. */
  shutdown(): Promise<void>;
}

export async function createApp(_config: Config, _log: Logger): Promise<App> {
  const store = new MemoryStore();
  return {
    store,
    grpcServices: [],
    ready: () => store.ping(),
    shutdown: () => store.close(),
  };
}
