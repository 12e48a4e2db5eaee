// Child process: the floor the orchestrator is compared with. A bare grpc-js server with the
// orchestrator's keepalive settings that implements the same two services with no store, no auth
// and no logging: DeployService/Deploy answers a fixed QUEUED deployment at once, and
// AgentService/Connect answers hello with welcome and each heartbeat with a heartbeat.
//   node --import tsx bench/floors/bare-server.ts <port>   → prints {"port": N} on stdout
import * as grpc from "@grpc/grpc-js";
import {
  AgentServiceService,
  type ConnectRequest,
  type ConnectResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeployServiceService } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { Deployment, DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

const server = new grpc.Server({
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 20_000,
  "grpc.keepalive_permit_without_calls": 1,
});
let n = 0;
server.addService(DeployServiceService, {
  deploy: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    void call;
    n++;
    callback(null, {
      deployment: Deployment.fromPartial({
        id: `dep_stub${n}`,
        state: DeploymentState.DEPLOYMENT_STATE_QUEUED,
        createdAt: new Date(),
      }),
      created: true,
    });
  },
} as never);
server.addService(AgentServiceService, {
  connect: (call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) => {
    call.on("data", (m: ConnectRequest) => {
      if (m.msg?.$case === "hello") {
        call.write({
          msg: {
            $case: "welcome",
            value: { agentId: "agt_bare", replicaId: "bare", heartbeatIntervalSeconds: 20, acksResults: true },
          },
        });
      } else if (m.msg?.$case === "heartbeat") {
        call.write({ msg: { $case: "heartbeat", value: { sentAt: new Date() } } });
      }
    });
    call.on("error", () => {});
    call.on("end", () => call.end());
  },
} as never);

server.bindAsync(`127.0.0.1:${process.argv[2] ?? "0"}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
process.on("SIGTERM", () => server.forceShutdown());
