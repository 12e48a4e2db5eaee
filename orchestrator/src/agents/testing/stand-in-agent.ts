// Test support: an in-process orchestrator (createAppWith on a real grpc-js server, memory or
// Redis store) and a scripted stand-in agent that speaks the wire protocol by hand. The real agent
// is exercised in test/e2e-*.test.ts. Kept under testing/ so it stays out of the build's entry points.
import * as grpc from "@grpc/grpc-js";
import {
  AgentServiceClient,
  type ConnectRequest,
  type ConnectResponse,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/agent.js";
import {
  type DeployRequest,
  type DeployResponse,
  DeployServiceClient,
} from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { WorkloadKind } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";
import pino from "pino";
import { type App, type AppOptions, createAppWith } from "../../app.js";

export const ADMIN = "admin-token-for-protocol-tests-0123456789";
export const adminCtx = { authorization: `Bearer ${ADMIN}`, signal: new AbortController().signal };

export async function setup(options: Partial<AppOptions> = {}, log = pino({ level: "silent" })) {
  const app = await createAppWith({ replicaId: "r1", adminToken: ADMIN, describeTimeoutSeconds: 2, ...options }, log);
  const server = new grpc.Server();
  for (const s of app.grpcServices) server.addService(s.definition, s.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const address = `127.0.0.1:${port}`;
  const { agent, token } = await app.admin.createAgent({ name: "stand-in" }, adminCtx);
  const { key } = await app.admin.createDeployKey(
    { agentId: agent!.id, name: "", namespaces: [], workloads: [] },
    adminCtx,
  );
  return { app, server, address, agentId: agent!.id, token, key };
}

export function md(token: string) {
  const m = new grpc.Metadata();
  m.set("authorization", `Bearer ${token}`);
  return m;
}

/** A scripted stand-in agent: collects what the orchestrator sends. */
export function connectStandIn(address: string, token: string) {
  const client = new AgentServiceClient(address, grpc.credentials.createInsecure());
  const stream = client.connect(md(token));
  const received: ConnectResponse[] = [];
  const waiters: (() => void)[] = [];
  let error: grpc.ServiceError | undefined;
  stream.on("data", (m: ConnectResponse) => {
    received.push(m);
    for (const w of waiters.splice(0)) w();
  });
  stream.on("error", (e: grpc.ServiceError) => {
    error = e;
    for (const w of waiters.splice(0)) w();
  });
  const write = (m: ConnectRequest) => stream.write(m);
  write({
    msg: {
      $case: "hello",
      value: {
        agentVersion: "0.0.0-test",
        arch: "arm64",
        kubernetesVersion: "v1.36.3",
        capabilities: [1, 2],
        autoUpdateEnabled: false,
        instance: "stand-in",
        namespace: "k8sdeploy",
        agentDeployment: "k8sdeploy-agent",
        runningCommandIds: [],
      },
    },
  });
  return {
    write,
    received,
    error: () => error,
    async next(pred: (m: ConnectResponse) => boolean, timeoutMs = 5000): Promise<ConnectResponse> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find(pred);
        if (found) {
          received.splice(received.indexOf(found), 1);
          return found;
        }
        if (error) throw error;
        if (Date.now() > deadline) throw new Error("timed out waiting for a message");
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
    close() {
      stream.cancel();
      client.close();
    },
  };
}

export function deploy(address: string, key: string, namespace = "default", init: Partial<DeployRequest> = {}) {
  const client = new DeployServiceClient(address, grpc.credentials.createInsecure());
  return new Promise<DeployResponse>((resolve, reject) =>
    client.deploy(
      {
        namespace,
        kind: WorkloadKind.WORKLOAD_KIND_DEPLOYMENT,
        workload: "web",
        containers: [],
        image: "nginx:1.27",
        timeoutSeconds: 0,
        rollbackOnFailure: false,
        pinDigest: false,
        idempotencyKey: "",
        queueTimeoutSeconds: 0,
        origin: undefined,
        ...init,
      },
      md(key),
      (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res);
      },
    ),
  );
}

export const isCommand = (m: ConnectResponse) => m.msg?.$case === "command";

export async function teardown(app: App, server: grpc.Server) {
  await app.shutdown();
  server.forceShutdown();
}

export type StandIn = ReturnType<typeof connectStandIn>;
export type { App };
