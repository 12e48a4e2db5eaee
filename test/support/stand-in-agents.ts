// Test helper: many stand-in agents (grpc-js AgentService.Connect streams speaking the wire
// protocol by hand, no Kubernetes) that record the commands they get and finish each one at once
// (ack, then a SUCCEEDED result). For tests about the orchestrator under load; the real agent is
// exercised by the e2e suites. Named as a stand-in: it executes nothing.
import * as grpc from "@grpc/grpc-js";
import {
  AgentServiceClient,
  type ConnectRequest,
  type ConnectResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import { DeploymentState } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

export interface StandInAgent {
  readonly id: string;
  /** Ids of the commands received, each once (redeliveries are counted in `redeliveries`). */
  readonly received: Set<string>;
  redeliveries: number;
  welcomed: boolean;
  /** The status the stream ended with, once it ended. */
  ended: grpc.StatusObject | undefined;
  close(): void;
}

export interface StandInOptions {
  /** Own TCP connection per agent (default true), as real agents have. */
  ownConnection?: boolean;
  /** Send the result (default true); otherwise only ack. */
  finish?: boolean;
}

export function connectStandInAgent(
  address: string,
  agent: { id: string; token: string },
  options: StandInOptions = {},
): StandInAgent {
  const client = new AgentServiceClient(
    address,
    grpc.credentials.createInsecure(),
    options.ownConnection === false ? {} : { "grpc.use_local_subchannel_pool": 1 },
  );
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${agent.token}`);
  const call = client.connect(md);
  const self: StandInAgent = {
    id: agent.id,
    received: new Set(),
    redeliveries: 0,
    welcomed: false,
    ended: undefined,
    close: () => {
      call.cancel();
      client.close();
    },
  };
  const write = (m: ConnectRequest) => call.write(m);
  call.on("data", (m: ConnectResponse) => {
    if (m.msg?.$case === "welcome") self.welcomed = true;
    if (m.msg?.$case !== "command") return;
    const id = m.msg.value.id;
    if (self.received.has(id)) self.redeliveries++;
    self.received.add(id);
    write({ msg: { $case: "ack", value: { commandId: id } } });
    if (options.finish === false) return;
    write({
      msg: {
        $case: "result",
        value: {
          commandId: id,
          state: DeploymentState.DEPLOYMENT_STATE_SUCCEEDED,
          failure: undefined,
          message: "stand-in: nothing was executed",
          replicas: undefined,
          previousImages: [],
          appliedImages: [],
          resolvedDigest: "",
        },
      },
    });
  });
  call.on("error", () => {});
  call.on("status", (s: grpc.StatusObject) => {
    self.ended = s;
  });
  write({
    msg: {
      $case: "hello",
      value: {
        agentVersion: "0.0.0-stand-in",
        arch: process.arch,
        kubernetesVersion: "v1.36.3",
        capabilities: [1, 2, 4],
        autoUpdateEnabled: false,
        instance: `stand-in-${agent.id}`,
        namespace: "k8sdeploy",
        runningCommandIds: [],
        agentDeployment: "",
      },
    },
  });
  return self;
}

export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
