// A promise-based AdminService client that sends the admin token with every call.
import * as grpc from "@grpc/grpc-js";
import { DEADLINE_HEADER, deadlineHeaderValue } from "@k8sdeploy/proto/contract/deadline.js";
import { AdminServiceClient, AdminServiceService } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import {
  type CancelDeploymentRequest,
  type CancelDeploymentResponse,
  DeployServiceClient,
  type GetDeploymentResponse,
  type WatchDeploymentResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import type { ClientConfig } from "./client-config.js";

type Definitions = typeof AdminServiceService;

/** Names of the unary AdminService methods (createAgent, listAgents, …). */
export type AdminUnaryMethod = {
  [K in keyof Definitions]: Definitions[K]["requestStream"] extends false
    ? Definitions[K]["responseStream"] extends false
      ? K
      : never
    : never;
}[keyof Definitions];

type RequestOf<K extends AdminUnaryMethod> = Parameters<Definitions[K]["requestSerialize"]>[0];
type ResponseOf<K extends AdminUnaryMethod> = ReturnType<Definitions[K]["responseDeserialize"]>;

export interface CallOptions {
  /** Per-call timeout (default: the client's, 30 s). */
  timeoutMs?: number;
}

/** One promise-returning function per unary method, plus the raw client for streams. */
export type AdminApi = {
  [K in AdminUnaryMethod]: (request: RequestOf<K>, options?: CallOptions) => Promise<ResponseOf<K>>;
} & {
  /** DeployService.CancelDeployment with the admin token (cancel lives beside Deploy). */
  cancelDeployment(request: CancelDeploymentRequest, options?: CallOptions): Promise<CancelDeploymentResponse>;
  /** DeployService.GetDeployment with the admin token. */
  getDeployment(id: string, options?: CallOptions): Promise<GetDeploymentResponse>;
  /** DeployService.WatchDeployment with the admin token: events after `afterSeq`, ends after the final one. */
  watchDeployment(id: string, afterSeq?: number): AsyncIterable<WatchDeploymentResponse>;
  /** The underlying generated client (e.g. for watchDeployments); calls need authMetadata(). */
  readonly raw: AdminServiceClient;
  /** Metadata carrying `authorization: Bearer <token>`. */
  authMetadata(): grpc.Metadata;
  close(): void;
};

export interface AdminClientOptions {
  /** Default per-call timeout (default 30000 ms). */
  timeoutMs?: number;
}

export function channelCredentials(config: Pick<ClientConfig, "tls" | "ca">): grpc.ChannelCredentials {
  return config.tls ? grpc.credentials.createSsl(config.ca ?? null) : grpc.credentials.createInsecure();
}

export function createAdminClient(config: ClientConfig, options: AdminClientOptions = {}): AdminApi {
  const raw = new AdminServiceClient(config.target, channelCredentials(config));
  const defaultTimeout = options.timeoutMs ?? 30_000;
  const authMetadata = () => {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${config.adminToken}`);
    return md;
  };
  /** Metadata and options for a unary call; the metadata carries the deadline too (proto/src/deadline.ts). */
  const unary = (callOptions: CallOptions): [grpc.Metadata, grpc.CallOptions] => {
    const md = authMetadata();
    const deadline = Date.now() + (callOptions.timeoutMs ?? defaultTimeout);
    md.set(DEADLINE_HEADER, deadlineHeaderValue(deadline));
    return [md, { deadline }];
  };

  // Same channel as the admin client (one connection), for the DeployService methods admins use.
  const deploy = new DeployServiceClient(config.target, channelCredentials(config), {
    channelOverride: raw.getChannel(),
  });
  const api: Record<string, unknown> = {
    raw,
    authMetadata,
    getDeployment: (id: string, callOptions: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        deploy.getDeployment({ id }, ...unary(callOptions), (err, response) => (err ? reject(err) : resolve(response)));
      }),
    watchDeployment: async function* (id: string, afterSeq = 0) {
      const call = deploy.watchDeployment({ id, afterSeq }, authMetadata());
      try {
        for await (const message of call) yield message as WatchDeploymentResponse;
      } finally {
        call.cancel();
      }
    },
    close: () => {
      deploy.close();
      raw.close();
    },
    cancelDeployment: (request: CancelDeploymentRequest, callOptions: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        deploy.cancelDeployment(request, ...unary(callOptions), (err, response) =>
          err ? reject(err) : resolve(response),
        );
      }),
  };
  for (const [name, def] of Object.entries(AdminServiceService)) {
    if (def.requestStream || def.responseStream) continue;
    const d = def as unknown as grpc.MethodDefinition<unknown, unknown>;
    api[name] = (request: unknown, callOptions: CallOptions = {}) =>
      new Promise((resolve, reject) => {
        raw.makeUnaryRequest(
          d.path,
          d.requestSerialize,
          d.responseDeserialize,
          request,
          ...unary(callOptions),
          (err, response) => (err ? reject(err) : resolve(response)),
        );
      });
  }
  return api as AdminApi;
}

/** True for errors that came back from a gRPC call. */
export function isServiceError(err: unknown): err is grpc.ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<grpc.ServiceError>).code === "number" &&
    "details" in err &&
    "metadata" in err
  );
}
