// Admin RPCs for agents: register, list (with the release they are behind), rotate the token,
// revoke, update (agent-updates.ts).
import type {
  CreateAgentRequest,
  CreateAgentResponse,
  ListAgentsRequest,
  ListAgentsResponse,
  RevokeAgentRequest,
  RevokeAgentResponse,
  RotateAgentTokenRequest,
  RotateAgentTokenResponse,
  UpdateAgentRequest,
  UpdateAgentResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { AGENT_TOKEN_PREFIX, issueSecret } from "../auth/secrets.js";
import { newAgentId } from "../ids.js";
import { failedPrecondition, invalidArgument, notFound } from "../rpc/rpc-error.js";
import type { AgentRecord, Store } from "../store/store.js";
import type { AgentUpdates } from "./agent-updates.js";
import { agentView } from "./agent-view.js";

const MAX_GRACE_SECONDS = 86_400;

export class AdminAgents {
  constructor(
    private readonly store: Store,
    readonly updates: AgentUpdates,
  ) {}

  async existing(id: string): Promise<AgentRecord> {
    if (id === "") throw invalidArgument("id: required (an agent id, agt_…)");
    const agent = await this.store.agents.getAgent(id);
    if (!agent) throw notFound(`agent ${id} not found`);
    return agent;
  }

  async active(id: string): Promise<AgentRecord> {
    const agent = await this.existing(id);
    if (agent.revokedAt) throw failedPrecondition(`agent ${id} was revoked`);
    return agent;
  }

  createAgent = async (request: CreateAgentRequest): Promise<CreateAgentResponse> => {
    const name = request.name.trim();
    if (name.length < 1 || name.length > 63) throw invalidArgument("name: required, 1 to 63 characters");
    const id = newAgentId();
    const { token, stored } = issueSecret(AGENT_TOKEN_PREFIX, id);
    const record: AgentRecord = { id, name, createdAt: new Date(), tokens: [stored] };
    await this.store.agents.createAgent(record);
    return { agent: agentView(record), token };
  };

  listAgents = async (request: ListAgentsRequest): Promise<ListAgentsResponse> => {
    const now = Date.now();
    const agents = await this.store.agents.listAgents();
    const channel = this.updates.channel;
    return {
      agents: agents
        .filter((a) => request.includeRevoked || !a.revokedAt)
        .map((a) => agentView(a, now, channel.newerThan(a.hello?.version))),
      currentRelease: channel.current(),
    };
  };

  rotateAgentToken = async (request: RotateAgentTokenRequest): Promise<RotateAgentTokenResponse> => {
    if (request.previousTokenGraceSeconds > MAX_GRACE_SECONDS) {
      throw invalidArgument(`previous_token_grace_seconds: at most ${MAX_GRACE_SECONDS}`);
    }
    const agent = await this.active(request.id);
    const { token, stored } = issueSecret(AGENT_TOKEN_PREFIX, agent.id);
    const previous = agent.tokens[0];
    const tokens = [stored];
    if (previous && request.previousTokenGraceSeconds > 0) {
      tokens.push({ ...previous, expiresAt: new Date(Date.now() + request.previousTokenGraceSeconds * 1000) });
    }
    const updated = await this.store.agents.updateAgent(agent.id, { tokens });
    if (!updated) throw notFound(`agent ${agent.id} not found`);
    // The replica holding the agent's stream re-checks its token (and closes it when the grace ends).
    await this.store.bus.publish({ type: "agent-token-rotated", agentId: agent.id });
    return { agent: agentView(updated), token };
  };

  revokeAgent = async (request: RevokeAgentRequest): Promise<RevokeAgentResponse> => {
    const agent = await this.existing(request.id);
    const updated = agent.revokedAt
      ? agent
      : await this.store.agents.updateAgent(agent.id, { revokedAt: new Date(), tokens: [] });
    await this.store.bus.publish({ type: "agent-revoked", agentId: agent.id });
    return { agent: agentView(updated ?? agent) };
  };

  updateAgent = async (request: UpdateAgentRequest): Promise<UpdateAgentResponse> => {
    const agent = await this.active(request.id);
    const deployment = await this.updates.start(agent, request, "admin");
    return { commandId: deployment.id, deployment };
  };
}
