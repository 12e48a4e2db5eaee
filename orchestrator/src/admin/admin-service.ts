// AdminService: every method checks the admin token, then calls the feature that owns it.
import type { AdminAgents } from "../agents/admin-agents.js";
import type { Authenticator } from "../auth/authenticate.js";
import type { AdminDeployments } from "../deploy/admin-deployments.js";
import type { DescribeService } from "../describe/describe-service.js";
import type { AdminKeys } from "../keys/admin-keys.js";
import type { AdminWebhooks } from "../notify/admin-webhooks.js";
import type { CallContext, ServerStreamHandler, UnaryHandler } from "../rpc/handler.js";
import type { AdminTrust } from "../trust/admin-trust.js";

function adminUnary<Req, Res>(
  auth: Authenticator,
  handler: (req: Req, ctx: CallContext) => Promise<Res>,
): UnaryHandler<Req, Res> {
  return async (req, ctx) => {
    auth.requireAdmin(ctx.authorization);
    return handler(req, ctx);
  };
}

function adminStream<Req, Res>(
  auth: Authenticator,
  handler: ServerStreamHandler<Req, Res>,
): ServerStreamHandler<Req, Res> {
  return async function* (req, ctx) {
    auth.requireAdmin(ctx.authorization);
    yield* handler(req, ctx);
  };
}

export function adminHandlers(
  auth: Authenticator,
  agents: AdminAgents,
  keys: AdminKeys,
  deployments: AdminDeployments,
  describe: DescribeService,
  webhooks: AdminWebhooks,
  trust: AdminTrust,
) {
  return {
    createAgent: adminUnary(auth, agents.createAgent),
    listAgents: adminUnary(auth, agents.listAgents),
    rotateAgentToken: adminUnary(auth, agents.rotateAgentToken),
    revokeAgent: adminUnary(auth, agents.revokeAgent),
    updateAgent: adminUnary(auth, agents.updateAgent),
    createDeployKey: adminUnary(auth, keys.createDeployKey),
    listDeployKeys: adminUnary(auth, keys.listDeployKeys),
    revokeDeployKey: adminUnary(auth, keys.revokeDeployKey),
    listDeployments: adminUnary(auth, deployments.listDeployments),
    watchDeployments: adminStream(auth, deployments.watchDeployments),
    rollbackDeployment: adminUnary(auth, deployments.rollbackDeployment),
    listNamespaces: adminUnary(auth, describe.listNamespaces),
    listWorkloads: adminUnary(auth, describe.listWorkloads),
    // Notifications.
    createWebhook: adminUnary(auth, webhooks.createWebhook),
    listWebhooks: adminUnary(auth, webhooks.listWebhooks),
    deleteWebhook: adminUnary(auth, webhooks.deleteWebhook),
    listWebhookDeliveries: adminUnary(auth, webhooks.listWebhookDeliveries),
    // GitHub OIDC trust
    createTrustPolicy: adminUnary(auth, trust.createTrustPolicy),
    listTrustPolicies: adminUnary(auth, trust.listTrustPolicies),
    deleteTrustPolicy: adminUnary(auth, trust.deleteTrustPolicy),
  };
}

export type AdminHandlers = ReturnType<typeof adminHandlers>;
