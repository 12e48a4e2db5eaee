// Registers the transport-neutral handlers on grpc-js. The Connect adapter serves the same
// handler objects over HTTP.
import type * as grpc from "@grpc/grpc-js";
import { AdminServiceService } from "@k8sdeploy/proto/node/k8sdeploy/v1/admin.js";
import { AgentServiceService } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeployServiceService } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import type { Logger } from "pino";
import type { AdminHandlers } from "../admin/admin-service.js";
import type { AgentHub } from "../agents/agent-hub.js";
import type { DeployService } from "../deploy/deploy-service.js";

/** DeployService's handlers (possibly behind the admission limit). */
export type DeployHandlers = Pick<DeployService, "deploy" | "getDeployment" | "watchDeployment" | "cancelDeployment">;

import { grpcServerStream, grpcUnary } from "./grpc-adapter.js";

export interface GrpcService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface GrpcServices {
  agent: GrpcService;
  deploy: GrpcService;
  admin: GrpcService;
}

export function grpcServices(log: Logger, hub: AgentHub, deploy: DeployHandlers, admin: AdminHandlers): GrpcServices {
  const u = <Req, Res>(name: string, h: (req: Req, ctx: import("./handler.js").CallContext) => Promise<Res>) =>
    grpcUnary(log, name, h);
  const s = <Req, Res>(name: string, h: import("./handler.js").ServerStreamHandler<Req, Res>) =>
    grpcServerStream(log, name, h);
  return {
    agent: { definition: AgentServiceService, implementation: { connect: hub.connect } },
    deploy: {
      definition: DeployServiceService,
      implementation: {
        deploy: u("Deploy", deploy.deploy),
        getDeployment: u("GetDeployment", deploy.getDeployment),
        watchDeployment: s("WatchDeployment", deploy.watchDeployment),
        cancelDeployment: u("CancelDeployment", deploy.cancelDeployment),
      },
    },
    admin: {
      definition: AdminServiceService,
      implementation: {
        createAgent: u("CreateAgent", admin.createAgent),
        listAgents: u("ListAgents", admin.listAgents),
        rotateAgentToken: u("RotateAgentToken", admin.rotateAgentToken),
        revokeAgent: u("RevokeAgent", admin.revokeAgent),
        updateAgent: u("UpdateAgent", admin.updateAgent),
        createDeployKey: u("CreateDeployKey", admin.createDeployKey),
        listDeployKeys: u("ListDeployKeys", admin.listDeployKeys),
        revokeDeployKey: u("RevokeDeployKey", admin.revokeDeployKey),
        listDeployments: u("ListDeployments", admin.listDeployments),
        watchDeployments: s("WatchDeployments", admin.watchDeployments),
        rollbackDeployment: u("RollbackDeployment", admin.rollbackDeployment),
        listNamespaces: u("ListNamespaces", admin.listNamespaces),
        listWorkloads: u("ListWorkloads", admin.listWorkloads),
        // Notifications.
        createWebhook: u("CreateWebhook", admin.createWebhook),
        listWebhooks: u("ListWebhooks", admin.listWebhooks),
        deleteWebhook: u("DeleteWebhook", admin.deleteWebhook),
        listWebhookDeliveries: u("ListWebhookDeliveries", admin.listWebhookDeliveries),
        createTrustPolicy: u("CreateTrustPolicy", admin.createTrustPolicy),
        listTrustPolicies: u("ListTrustPolicies", admin.listTrustPolicies),
        deleteTrustPolicy: u("DeleteTrustPolicy", admin.deleteTrustPolicy),
      },
    },
  };
}
