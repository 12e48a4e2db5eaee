// Audit events for the AdminService calls that change something, on both transports (the
// wrapped handlers are what the gRPC and the Connect adapters serve). Each picks the ids and
// names worth recording, never a token, key, webhook secret or webhook URL. Calls refused as
// UNAUTHENTICATED are not logged here: the AuthGuard logs them as `auth.failed`.
import type { Logger } from "pino";
import { audit, outcomeOf, reasonOf } from "../audit/audit.js";
import { stateName } from "../deploy/lifecycle.js";
import type { CallContext } from "../rpc/handler.js";
import type { AdminHandlers } from "./admin-service.js";

// biome-ignore lint/suspicious/noExplicitAny: each picker reads the fields of its own method's messages
type Picker = (request: any, response: any) => Record<string, unknown>;

const AUDITED: Record<string, { event: string; fields: Picker }> = {
  createAgent: { event: "agent.create", fields: (q, r) => ({ name: q.name, agentId: r?.agent?.id }) },
  rotateAgentToken: {
    event: "agent.rotate_token",
    fields: (q, r) => ({
      agentId: q.id,
      graceSeconds: q.previousTokenGraceSeconds,
      tokenPrefix: r?.agent?.tokenPrefix,
    }),
  },
  revokeAgent: { event: "agent.revoke", fields: (q) => ({ agentId: q.id }) },
  updateAgent: {
    event: "agent.update",
    fields: (q, r) => ({ agentId: q.id, image: q.image, commandId: r?.commandId }),
  },
  createDeployKey: {
    event: "deploy_key.create",
    fields: (q, r) => ({
      agentId: q.agentId,
      name: q.name,
      namespaces: q.namespaces,
      workloads: q.workloads,
      keyId: r?.deployKey?.id,
    }),
  },
  revokeDeployKey: { event: "deploy_key.revoke", fields: (q) => ({ keyId: q.id }) },
  rollbackDeployment: {
    event: "deployment.rollback",
    fields: (q, r) => ({ deploymentId: q.id, rollbackDeploymentId: r?.deployment?.id }),
  },
  createWebhook: {
    event: "webhook.create",
    fields: (q, r) => ({
      agentId: q.agentId,
      name: q.name,
      format: q.format,
      states: (q.states as number[] | undefined)?.map(stateName),
      webhookId: r?.webhook?.id,
      urlPreview: r?.webhook?.urlPreview,
    }),
  },
  deleteWebhook: { event: "webhook.delete", fields: (q) => ({ webhookId: q.id }) },
  createTrustPolicy: {
    event: "trust_policy.create",
    fields: (q, r) => ({
      agentId: q.agentId,
      name: q.name,
      repository: q.repository,
      ref: q.ref,
      environment: q.environment,
      namespaces: q.namespaces,
      workloads: q.workloads,
      trustPolicyId: r?.trustPolicy?.id,
    }),
  },
  deleteTrustPolicy: { event: "trust_policy.delete", fields: (q) => ({ trustPolicyId: q.id }) },
};

/** `handlers` with the changing calls wrapped in audit logging. */
export function auditAdmin(log: Logger, handlers: AdminHandlers): AdminHandlers {
  const out: Record<string, unknown> = { ...handlers };
  for (const [name, spec] of Object.entries(AUDITED)) {
    const handler = handlers[name as keyof AdminHandlers] as unknown as (
      req: unknown,
      ctx: CallContext,
    ) => Promise<unknown>;
    if (!spec || !handler) continue;
    out[name] = async (request: unknown, ctx: CallContext) => {
      try {
        const response = await handler(request, ctx);
        audit(log, {
          event: spec.event,
          actor: "admin",
          peer: ctx.peer,
          outcome: "ok",
          ...spec.fields(request, response),
        });
        return response;
      } catch (err) {
        const outcome = outcomeOf(err);
        if (outcome !== "UNAUTHENTICATED") {
          audit(log, {
            event: spec.event,
            actor: "admin",
            peer: ctx.peer,
            outcome,
            reason: reasonOf(err),
            ...spec.fields(request, undefined),
          });
        }
        throw err;
      }
    };
  }
  return out as AdminHandlers;
}
