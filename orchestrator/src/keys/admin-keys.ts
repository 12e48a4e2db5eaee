import type {
  CreateDeployKeyRequest,
  CreateDeployKeyResponse,
  DeployKey,
  ListDeployKeysRequest,
  ListDeployKeysResponse,
  RevokeDeployKeyRequest,
  RevokeDeployKeyResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import type { AdminAgents } from "../agents/admin-agents.js";
import { scopeProblems } from "../auth/scope.js";
import { DEPLOY_KEY_PREFIX, issueSecret } from "../auth/secrets.js";
import { newKeyId } from "../ids.js";
import { invalidArgument, notFound } from "../rpc/rpc-error.js";
import type { KeyRecord, Store } from "../store/store.js";

export function keyView(key: KeyRecord): DeployKey {
  return {
    id: key.id,
    name: key.name,
    agentId: key.agentId,
    namespaces: key.namespaces,
    workloads: key.workloads,
    createdAt: key.createdAt,
    lastUsedAt: key.lastUsedAt,
    revokedAt: key.revokedAt,
    keyPrefix: key.secret.prefix,
  };
}

export class AdminKeys {
  constructor(
    private readonly store: Store,
    private readonly agents: AdminAgents,
  ) {}

  createDeployKey = async (request: CreateDeployKeyRequest): Promise<CreateDeployKeyResponse> => {
    const problems: string[] = [];
    if (request.name.length > 63) problems.push("name: at most 63 characters");
    problems.push(...scopeProblems(request));
    if (problems.length > 0) throw invalidArgument(`invalid deploy key: ${problems.join("; ")}`);
    const agent = await this.agents.active(request.agentId);
    const id = newKeyId();
    const { token, stored } = issueSecret(DEPLOY_KEY_PREFIX, id);
    const record: KeyRecord = {
      id,
      name: request.name || `key for ${agent.name}`,
      agentId: agent.id,
      namespaces: [...new Set(request.namespaces)],
      workloads: [...new Set(request.workloads)],
      secret: stored,
      createdAt: new Date(),
    };
    await this.store.keys.createKey(record);
    return { deployKey: keyView(record), key: token };
  };

  listDeployKeys = async (request: ListDeployKeysRequest): Promise<ListDeployKeysResponse> => {
    const keys = await this.store.keys.listKeys(request.agentId || undefined);
    return { deployKeys: keys.filter((k) => request.includeRevoked || !k.revokedAt).map(keyView) };
  };

  revokeDeployKey = async (request: RevokeDeployKeyRequest): Promise<RevokeDeployKeyResponse> => {
    if (request.id === "") throw invalidArgument("id: required (a deploy key id, key_…)");
    const key = await this.store.keys.getKey(request.id);
    if (!key) throw notFound(`deploy key ${request.id} not found`);
    const updated = key.revokedAt ? key : await this.store.keys.updateKey(key.id, { revokedAt: new Date() });
    return { deployKey: keyView(updated ?? key) };
  };
}
