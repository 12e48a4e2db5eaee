// A DeployService client for one orchestrator: TLS or plaintext from the server URL, the deploy key (or a
// fresh GitHub OIDC token per call: the orchestrator accepts each ID token once) as `authorization: Bearer …`
// metadata on every call, promise-returning unary calls and Watch as an async iterator.
import { type ChannelCredentials, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { DEADLINE_HEADER, deadlineHeaderValue } from "@k8sdeploy/proto/contract/deadline.js";
import {
  type CancelDeploymentResponse,
  type DeployRequest,
  type DeployResponse,
  DeployServiceClient,
  type GetDeploymentResponse,
  type WatchDeploymentResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import type { ServerAddress } from "./inputs.js";

const USER_AGENT = "k8sdeploy-action/0.1.0";
const UNARY_DEADLINE_MS = 30_000;

export interface DeployApi {
  deploy(request: DeployRequest): Promise<DeployResponse>;
  getDeployment(id: string): Promise<GetDeploymentResponse>;
  cancelDeployment(id: string, reason: string): Promise<CancelDeploymentResponse>;
  /** Events of a deployment after `afterSeq`; ends after the final state. Aborting cancels the call. */
  watch(id: string, afterSeq: number, signal?: AbortSignal): AsyncIterable<WatchDeploymentResponse>;
  close(): void;
}

export interface ConnectOptions {
  /** PEM of a private CA (TLS only). */
  ca?: Buffer;
}

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}

/** `PERMISSION_DENIED: namespace "prod" is not allowed for this deploy key` */
export function describeGrpcError(error: unknown): string {
  if (isServiceError(error)) {
    const name = status[error.code] ?? `code ${error.code}`;
    return `${name}: ${error.details || error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The bearer of every call: a deploy key, or a function that returns a new ID token each time. */
export type Bearer = string | (() => Promise<string>);

export function connect(server: ServerAddress, bearer: Bearer, options: ConnectOptions = {}): DeployApi {
  const channelCredentials: ChannelCredentials = server.tls
    ? credentials.createSsl(options.ca ?? null)
    : credentials.createInsecure();
  const client = new DeployServiceClient(server.target, channelCredentials, {
    "grpc.primary_user_agent": USER_AGENT,
    // A watch can sit idle for minutes while a rollout waits for pods; keep proxies from dropping it.
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
  });

  const metadata = async (): Promise<Metadata> => {
    const md = new Metadata();
    md.set("authorization", `Bearer ${typeof bearer === "string" ? bearer : await bearer()}`);
    return md;
  };
  /** Metadata for a unary call and its deadline, which the metadata carries too (proto/src/deadline.ts). */
  const unary = async (): Promise<{ md: Metadata; at: number }> => {
    const md = await metadata();
    const at = Date.now() + UNARY_DEADLINE_MS;
    md.set(DEADLINE_HEADER, deadlineHeaderValue(at));
    return { md, at };
  };

  return {
    deploy: async (request) => {
      const { md, at } = await unary();
      return new Promise((resolve, reject) => {
        client.deploy(request, md, { deadline: at }, (error, response) => (error ? reject(error) : resolve(response)));
      });
    },

    getDeployment: async (id) => {
      const { md, at } = await unary();
      return new Promise((resolve, reject) => {
        client.getDeployment({ id }, md, { deadline: at }, (error, response) =>
          error ? reject(error) : resolve(response),
        );
      });
    },

    cancelDeployment: async (id, reason) => {
      const { md, at } = await unary();
      return new Promise((resolve, reject) => {
        client.cancelDeployment({ id, reason }, md, { deadline: at }, (error, response) =>
          error ? reject(error) : resolve(response),
        );
      });
    },

    async *watch(id, afterSeq, signal) {
      signal?.throwIfAborted();
      const call = client.watchDeployment({ id, afterSeq }, await metadata());
      const cancel = () => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
      try {
        for await (const message of call) yield message as WatchDeploymentResponse;
      } finally {
        signal?.removeEventListener("abort", cancel);
        call.cancel();
      }
    },

    close: () => client.close(),
  };
}
