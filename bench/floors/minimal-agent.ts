// The agent's floor: Node + grpc-js and the generated AgentService client, nothing else. Bundled by
// the bench with the agent's own esbuild settings and run on the same Node 24. Opens the stream,
// sends hello, prints `{"connected": true}` on welcome, then answers nothing and sends heartbeats,
// as an agent with no work would.
//   K8SDEPLOY_SERVER=host:port K8SDEPLOY_AGENT_TOKEN=kda_… node minimal-agent.mjs
import * as grpc from "@grpc/grpc-js";
import { AgentServiceClient, type ConnectResponse } from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";

const client = new AgentServiceClient(process.env.K8SDEPLOY_SERVER ?? "", grpc.credentials.createInsecure(), {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
});
const md = new grpc.Metadata();
md.set("authorization", `Bearer ${process.env.K8SDEPLOY_AGENT_TOKEN ?? ""}`);
const call = client.connect(md);
call.on("data", (m: ConnectResponse) => {
  if (m.msg?.$case === "welcome") {
    process.stderr.write(`${JSON.stringify({ connected: true })}\n`);
    const interval = (m.msg.value.heartbeatIntervalSeconds || 20) * 1000;
    setInterval(() => call.write({ msg: { $case: "heartbeat", value: { sentAt: new Date() } } }), interval);
  }
});
call.on("error", (e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
call.write({
  msg: {
    $case: "hello",
    value: {
      agentVersion: "0.0.0-minimal",
      arch: process.arch,
      kubernetesVersion: "",
      capabilities: [1],
      autoUpdateEnabled: false,
      instance: "minimal",
      namespace: "k8sdeploy",
      runningCommandIds: [],
      agentDeployment: "",
    },
  },
});
process.on("SIGTERM", () => process.exit(0));
