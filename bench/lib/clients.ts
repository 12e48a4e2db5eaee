// gRPC clients of the benchmarks: the admin calls that prepare a run (agents and keys in bulk) and
// a promisified Deploy with a per-call deadline.
import * as grpc from "@grpc/grpc-js";
import { DEADLINE_HEADER, deadlineHeaderValue } from "@k8sdeploy/proto/contract/deadline.js";
import {
  AdminServiceClient,
  type CreateAgentResponse,
  type CreateDeployKeyResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import {
  type DeployRequest,
  type DeployResponse,
  DeployServiceClient,
  type GetDeploymentResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import type { AgentCredentials } from "./fleet.js";

export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

export interface AgentWithKey extends AgentCredentials {
  key: string;
}

/** Creates `count` agents, each with one deploy key, `concurrency` calls at a time. */
export async function createAgents(
  address: string,
  adminToken: string,
  count: number,
  concurrency = 32,
): Promise<AgentWithKey[]> {
  const client = new AdminServiceClient(address, grpc.credentials.createInsecure());
  const md = bearer(adminToken);
  const createAgent = (name: string) =>
    new Promise<CreateAgentResponse>((resolve, reject) =>
      client.createAgent({ name }, md, (e, r) => (e ? reject(e) : resolve(r))),
    );
  const createKey = (agentId: string) =>
    new Promise<CreateDeployKeyResponse>((resolve, reject) =>
      client.createDeployKey({ agentId, name: "bench", namespaces: [], workloads: [] }, md, (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
  const out: AgentWithKey[] = new Array(count);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const created = await createAgent(`bench-${i}`);
      const id = created.agent!.id;
      const key = await createKey(id);
      out[i] = { id, token: created.token, key: key.key };
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  client.close();
  return out;
}

export function deployRequest(workload: string, image: string): DeployRequest {
  return {
    namespace: "bench",
    kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
    workload,
    containers: [],
    image,
    timeoutSeconds: 60,
    pinDigest: false,
    rollbackOnFailure: false,
    idempotencyKey: "",
    queueTimeoutSeconds: 0,
    origin: undefined,
  };
}

export class DeployCaller {
  readonly client: DeployServiceClient;

  constructor(address: string, options: grpc.ChannelOptions = {}) {
    this.client = new DeployServiceClient(address, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
      ...options,
    });
  }

  deploy(key: string, request: DeployRequest, deadlineMs = 10_000): Promise<DeployResponse> {
    // Like the action: the deadline goes in `k8sdeploy-deadline` as well (proto/src/deadline.ts).
    const deadline = Date.now() + deadlineMs;
    const md = bearer(key);
    md.set(DEADLINE_HEADER, deadlineHeaderValue(deadline));
    return new Promise((resolve, reject) =>
      this.client.deploy(request, md, { deadline }, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  get(key: string, id: string): Promise<GetDeploymentResponse> {
    return new Promise((resolve, reject) =>
      this.client.getDeployment({ id }, bearer(key), (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  close(): void {
    this.client.close();
  }
}
