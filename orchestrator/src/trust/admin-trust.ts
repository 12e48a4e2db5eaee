import type {
  CreateTrustPolicyRequest,
  CreateTrustPolicyResponse,
  DeleteTrustPolicyRequest,
  DeleteTrustPolicyResponse,
  ListTrustPoliciesRequest,
  ListTrustPoliciesResponse,
  TrustPolicy,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import type { AdminAgents } from "../agents/admin-agents.js";
import { scopeProblems } from "../auth/scope.js";
import { newTrustPolicyId } from "../ids.js";
import { invalidArgument, notFound } from "../rpc/rpc-error.js";
import type { Store, TrustPolicyRecord } from "../store/store.js";

/** The audience the action asks for by default (its `audience` input). */
export const DEFAULT_AUDIENCE = "k8sdeploy";

const REPOSITORY = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;
const PRINTABLE = /^[\x21-\x7e]*$/;

export function trustPolicyView(policy: TrustPolicyRecord): TrustPolicy {
  return {
    id: policy.id,
    name: policy.name,
    agentId: policy.agentId,
    issuer: policy.issuer,
    audience: policy.audience,
    repository: policy.repository,
    repositoryId: policy.repositoryId,
    ref: policy.ref,
    environment: policy.environment,
    workflowRef: policy.workflowRef,
    namespaces: policy.namespaces,
    workloads: policy.workloads,
    createdAt: policy.createdAt,
    lastUsedAt: policy.lastUsedAt,
    deletedAt: policy.deletedAt,
  };
}

/** A `*` may only end a pattern (a prefix match); nothing else is special. */
function patternProblem(field: string, value: string, max: number): string | undefined {
  if (value.length > max) return `${field}: at most ${max} characters`;
  if (!PRINTABLE.test(value)) return `${field}: no spaces or control characters`;
  if (value.slice(0, -1).includes("*")) return `${field}: \`*\` may only be the last character (a prefix match)`;
  if (value === "*") return `${field}: \`*\` alone matches everything; leave it empty instead`;
  return undefined;
}

export function trustPolicyProblems(request: CreateTrustPolicyRequest): string[] {
  const problems: string[] = [];
  if (request.name.length > 63) problems.push("name: at most 63 characters");
  if (!REPOSITORY.test(request.repository)) {
    problems.push(`repository: required, as owner/name (got ${JSON.stringify(request.repository.slice(0, 150))})`);
  }
  if (request.repositoryId !== "" && !/^\d{1,20}$/.test(request.repositoryId)) {
    problems.push("repository_id: digits only (GitHub's numeric repository id)");
  }
  if (request.ref !== "") {
    const p = patternProblem("ref", request.ref, 255);
    if (p) problems.push(p);
    else if (!request.ref.startsWith("refs/")) {
      problems.push(`ref: a full ref such as refs/heads/main or refs/tags/v* (got ${JSON.stringify(request.ref)})`);
    }
  }
  if (request.environment.length > 255 || /[\p{Cc}]/u.test(request.environment)) {
    problems.push("environment: at most 255 characters, no control characters");
  }
  if (request.workflowRef !== "") {
    const p = patternProblem("workflow_ref", request.workflowRef, 512);
    if (p) problems.push(p);
    else if (
      REPOSITORY.test(request.repository) &&
      !request.workflowRef.toLowerCase().startsWith(`${request.repository.toLowerCase()}/`)
    ) {
      problems.push(
        `workflow_ref: starts with the repository, e.g. ${request.repository}/.github/workflows/deploy.yml@refs/heads/main`,
      );
    }
  }
  if (request.audience !== "") {
    if (request.audience.length > 255 || !PRINTABLE.test(request.audience)) {
      problems.push("audience: at most 255 printable characters without spaces");
    }
  }
  problems.push(...scopeProblems(request));
  return problems;
}

export class AdminTrust {
  constructor(
    private readonly store: Store,
    private readonly agents: AdminAgents,
    /** The issuer new policies trust (K8SDEPLOY_OIDC_ISSUER). */
    private readonly issuer: string,
  ) {}

  createTrustPolicy = async (request: CreateTrustPolicyRequest): Promise<CreateTrustPolicyResponse> => {
    const problems = trustPolicyProblems(request);
    if (problems.length > 0) throw invalidArgument(`invalid trust policy: ${problems.join("; ")}`);
    const agent = await this.agents.active(request.agentId);
    const record: TrustPolicyRecord = {
      id: newTrustPolicyId(),
      name: request.name || `${request.repository} → ${agent.name}`,
      agentId: agent.id,
      issuer: this.issuer,
      audience: request.audience || DEFAULT_AUDIENCE,
      repository: request.repository,
      repositoryId: request.repositoryId,
      ref: request.ref,
      environment: request.environment,
      workflowRef: request.workflowRef,
      namespaces: [...new Set(request.namespaces)],
      workloads: [...new Set(request.workloads)],
      createdAt: new Date(),
    };
    await this.store.trust.createPolicy(record);
    return { trustPolicy: trustPolicyView(record) };
  };

  listTrustPolicies = async (request: ListTrustPoliciesRequest): Promise<ListTrustPoliciesResponse> => {
    const policies = await this.store.trust.listPolicies(request.agentId || undefined);
    return {
      trustPolicies: policies.filter((p) => request.includeDeleted || !p.deletedAt).map(trustPolicyView),
    };
  };

  deleteTrustPolicy = async (request: DeleteTrustPolicyRequest): Promise<DeleteTrustPolicyResponse> => {
    if (request.id === "") throw invalidArgument("id: required (a trust policy id, tp_…)");
    const policy = await this.store.trust.getPolicy(request.id);
    if (!policy) throw notFound(`trust policy ${request.id} not found`);
    const updated = policy.deletedAt
      ? policy
      : await this.store.trust.updatePolicy(policy.id, { deletedAt: new Date() });
    return { trustPolicy: trustPolicyView(updated ?? policy) };
  };
}
