import { Deployment } from "@k8sdeploy/proto/node/k8sdeploy/v1/types.js";

const d = Deployment.fromPartial({
  id: "dep_0mx4p46kj0wv6dqd36q",
  agentId: "agt_3854rd1l9n3id",
  keyId: "key_2sspq83ad9pq9",
  namespace: "shop",
  kind: 1,
  workload: "web-frontend",
  containers: ["app"],
  image: "ghcr.io/acme/web:1.2.3",
  timeoutSeconds: 300,
  state: 3,
  createdAt: new Date(),
  updatedAt: new Date(),
  message: "rolling out: 1 of 2 updated",
  origin: {
    repository: "acme/web",
    sha: "0123456789abcdef0123456789abcdef01234567",
    ref: "refs/heads/main",
    actor: "octocat",
    runUrl: "https://github.com/acme/web/actions/runs/1",
    workflow: "Deploy",
  },
  queueDeadline: new Date(),
  replicas: { desired: 2, updated: 1, ready: 1, available: 1 },
  previousImages: [{ container: "app", image: "ghcr.io/acme/web:1.2.2" }],
  appliedImages: [{ container: "app", image: "ghcr.io/acme/web:1.2.3" }],
});
const N = 50_000;
const time = (label: string, fn: () => void) => {
  for (let i = 0; i < 2000; i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn();
  console.log(label, `${(((performance.now() - t0) / N) * 1000).toFixed(2)} µs`);
};
const json = JSON.stringify(Deployment.toJSON(d));
const bin = Buffer.from(Deployment.encode(d).finish()).toString("base64");
time("json encode", () => JSON.stringify(Deployment.toJSON(d)));
time("json decode", () => Deployment.fromJSON(JSON.parse(json)));
time("bin encode ", () => Buffer.from(Deployment.encode(d).finish()).toString("base64"));
time("bin decode ", () => Deployment.decode(Buffer.from(bin, "base64")));
time("fromPartial", () => Deployment.fromPartial(d));
time("structuredClone", () => structuredClone(d));
console.log("sizes", json.length, bin.length);
