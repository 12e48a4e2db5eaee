// Promisified grpc-js clients (the ts-proto generated ones) for end-to-end assertions.
import * as grpc from "@grpc/grpc-js";
import {
  AdminServiceClient,
  type ListDeploymentsRequest,
  type ListDeploymentsResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import {
  type DeployRequest,
  type DeployResponse,
  DeployServiceClient,
  type GetDeploymentResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { type Deployment, type Origin, WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

export function deployRequest(init: Partial<DeployRequest>): DeployRequest {
  const origin: Origin = { repository: "", sha: "", ref: "", actor: "", runUrl: "", workflow: "" };
  return {
    namespace: "default",
    kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    workload: "web",
    containers: [],
    image: "nginx:1.27",
    timeoutSeconds: 60,
    rollbackOnFailure: false,
    idempotencyKey: "",
    queueTimeoutSeconds: 0,
    pinDigest: false,
    origin,
    ...init,
  };
}

export function deployClient(address: string, token: string) {
  const client = new DeployServiceClient(address, grpc.credentials.createInsecure());
  return {
    deploy: (req: DeployRequest) =>
      new Promise<DeployResponse>((resolve, reject) =>
        client.deploy(req, bearer(token), (err, res) => (err ? reject(err) : resolve(res))),
      ),
    get: (id: string) =>
      new Promise<GetDeploymentResponse>((resolve, reject) =>
        client.getDeployment({ id }, bearer(token), (err, res) => (err ? reject(err) : resolve(res))),
      ),
    close: () => client.close(),
  };
}

export function adminClient(address: string, token: string) {
  const client = new AdminServiceClient(address, grpc.credentials.createInsecure());
  return {
    createAgent: (name: string) =>
      new Promise<{ id: string; token: string }>((resolve, reject) =>
        client.createAgent({ name }, bearer(token), (err, res) =>
          err ? reject(err) : resolve({ id: res.agent!.id, token: res.token }),
        ),
      ),
    createDeployKey: (agentId: string) =>
      new Promise<string>((resolve, reject) =>
        client.createDeployKey({ agentId, name: "test", namespaces: [], workloads: [] }, bearer(token), (err, res) =>
          err ? reject(err) : resolve(res.key),
        ),
      ),
    listDeployments: (req: Partial<ListDeploymentsRequest> = {}) =>
      new Promise<ListDeploymentsResponse>((resolve, reject) =>
        client.listDeployments(
          { agentId: "", namespace: "", states: [], pageSize: 0, pageToken: "", ...req },
          bearer(token),
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      ),
    close: () => client.close(),
  };
}

export function isGrpcError(err: unknown): err is grpc.ServiceError {
  return typeof err === "object" && err !== null && "code" in err && "details" in err;
}

/** Every stored deployment (all pages of ListDeployments). */
export async function allDeployments(address: string, adminToken: string): Promise<Deployment[]> {
  const admin = adminClient(address, adminToken);
  const all: Deployment[] = [];
  let pageToken = "";
  try {
    do {
      const page = await admin.listDeployments({ pageSize: 500, pageToken });
      all.push(...page.deployments);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  } finally {
    admin.close();
  }
  return all;
}
