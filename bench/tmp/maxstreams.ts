import * as grpc from "@grpc/grpc-js";
import { DeployServiceClient, DeployServiceService } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import { deployRequest } from "../lib/clients.js";

const server = new grpc.Server({ "grpc.max_concurrent_streams": 10 });
let active = 0;
let maxActive = 0;
server.addService(DeployServiceService, {
  deploy: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
    active++;
    maxActive = Math.max(maxActive, active);
    setTimeout(() => {
      active--;
      cb(null, { created: true });
    }, 20);
  },
} as never);
const port = await new Promise<number>((r) =>
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (_e, p) => r(p)),
);
const client = new DeployServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const results: Record<string, number> = {};
const t0 = Date.now();
await Promise.all(
  Array.from(
    { length: 200 },
    () =>
      new Promise<void>((resolve) =>
        client.deploy(deployRequest("w", "i:1"), new grpc.Metadata(), { deadline: Date.now() + 2000 }, (err) => {
          const k = err ? grpc.status[err.code] : "OK";
          results[k] = (results[k] ?? 0) + 1;
          resolve();
        }),
      ),
  ),
);
console.log(results, "maxActive", maxActive, "ms", Date.now() - t0);
process.exit(0);
