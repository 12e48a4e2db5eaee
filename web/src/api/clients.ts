// Connect clients for the orchestrator's HTTP port (same origin as this page). JSON on the wire,
// HTTP/1.1: unary and server-streaming calls only, as browsers allow.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AdminService } from "@k8sdeploy/proto/es/k8sdeploy/v1/admin_pb.js";
import { DeployService } from "@k8sdeploy/proto/es/k8sdeploy/v1/deploy_pb.js";
import { authInterceptor } from "./auth-interceptor.js";

export const transport = createConnectTransport({
  baseUrl: location.origin,
  useBinaryFormat: false,
  interceptors: [authInterceptor],
});

export const admin = createClient(AdminService, transport);
export const deploy = createClient(DeployService, transport);
