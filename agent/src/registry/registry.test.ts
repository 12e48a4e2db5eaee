// Unit tests of the pure parts of registry/: references, dockerconfig matching, challenges,
// registry answers, node eligibility and the platform verdict. The HTTP client itself is tested
// against the test bed's real registry (preflight.integration.test.ts).
import type { V1Node, V1PodSpec } from "@kubernetes/client-node";
import test from "ava";
import { isPrivateAddress, parseChallenge, registryAnswer } from "./client.js";
import { keyMatch, matchingCredentials, parseDockerConfig } from "./credentials.js";
import { canLand, checkPlatforms, mismatchMessage } from "./platforms.js";
import { isLoopbackRegistry, pinnedImage, registryImage } from "./reference.js";

test("registryImage: Docker Hub, ports, tags and digests", (t) => {
  t.like(registryImage("nginx"), {
    registry: "docker.io",
    apiHost: "registry-1.docker.io",
    repository: "library/nginx",
    reference: "latest",
    display: "docker.io/library/nginx:latest",
  });
  t.like(registryImage("127.0.0.1:5000/a/b:2"), { registry: "127.0.0.1:5000", repository: "a/b", reference: "2" });
  const d = `sha256:${"a".repeat(64)}`;
  t.like(registryImage(`ghcr.io/acme/web:1@${d}`), { tag: "1", digest: d, reference: d });
  t.is(pinnedImage("ghcr.io/acme/web:1", d), `ghcr.io/acme/web:1@${d}`);
  t.is(pinnedImage(`ghcr.io/acme/web:1@sha256:${"b".repeat(64)}`, d), `ghcr.io/acme/web:1@${d}`);
});

test("isLoopbackRegistry: only loopback hosts", (t) => {
  for (const r of ["localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000"]) t.true(isLoopbackRegistry(r), r);
  for (const r of ["10.0.0.1:5000", "registry.local", "localhost.example.com", "128.0.0.1"]) {
    t.false(isLoopbackRegistry(r), r);
  }
});

test("keyMatch: kubelet-style host globs, exact ports, path prefixes, Docker Hub spellings", (t) => {
  const img = (registry: string, repository = "team/app") => ({ registry, repository });
  t.true(keyMatch("ghcr.io", img("ghcr.io")) >= 0);
  t.true(keyMatch("https://ghcr.io", img("ghcr.io")) >= 0);
  t.is(keyMatch("ghcr.io", img("ghcr.io:443")), -1, "a port in the image must be in the key");
  t.is(keyMatch("ghcr.io:5000", img("ghcr.io")), -1);
  t.true(keyMatch("*.example.com", img("r.example.com")) >= 0);
  t.is(keyMatch("*.example.com", img("a.r.example.com")), -1, "a glob covers one label");
  t.true(keyMatch("r.example.com/team", img("r.example.com")) > keyMatch("r.example.com", img("r.example.com")));
  t.is(keyMatch("r.example.com/other", img("r.example.com")), -1);
  for (const key of ["https://index.docker.io/v1/", "docker.io", "index.docker.io", "registry-1.docker.io"]) {
    t.true(keyMatch(key, img("docker.io", "library/nginx")) >= 0, key);
  }
  t.is(keyMatch("quay.io", img("docker.io")), -1);
});

test("parseDockerConfig + matchingCredentials: auth and username/password, most specific first", (t) => {
  const json = {
    auths: {
      "r.example.com": { auth: Buffer.from("general:pw1").toString("base64") },
      "r.example.com/team": { username: "team", password: "pw:2" },
      "other.example.com": { auth: Buffer.from("x:y").toString("base64") },
      "empty.example.com": {},
    },
  };
  const data = { ".dockerconfigjson": Buffer.from(JSON.stringify(json)).toString("base64") };
  const auths = parseDockerConfig("kubernetes.io/dockerconfigjson", data);
  const creds = matchingCredentials(
    auths,
    { registry: "r.example.com", repository: "team/app" },
    "ns/s",
    "imagePullSecrets",
  );
  t.deepEqual(
    creds.map((c) => [c.username, c.password]),
    [
      ["team", "pw:2"],
      ["general", "pw1"],
    ],
  );
  t.throws(() => parseDockerConfig("kubernetes.io/dockerconfigjson", {}), { message: /no .dockerconfigjson/ });
  t.throws(
    () =>
      parseDockerConfig("kubernetes.io/dockerconfigjson", { ".dockerconfigjson": Buffer.from("{").toString("base64") }),
    { message: /no valid JSON/ },
  );
});

test("parseChallenge: Bearer with quoted parameters, Basic", (t) => {
  t.deepEqual(
    parseChallenge('Bearer realm="https://auth.example/token",service="reg, x",scope="repository:a/b:pull"'),
    {
      scheme: "bearer",
      params: { realm: "https://auth.example/token", service: "reg, x", scope: "repository:a/b:pull" },
    },
  );
  t.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: "basic", params: { realm: "Registry Realm" } });
  t.is(parseChallenge(undefined), undefined);
});

test("registryAnswer: the spec's error body, or the text, cut", (t) => {
  const body = Buffer.from(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
  t.is(registryAnswer({ status: 404, body }), "HTTP 404 MANIFEST_UNKNOWN: manifest unknown");
  t.is(
    registryAnswer({ status: 502, body: Buffer.from("<html>Bad Gateway</html>") }),
    "HTTP 502 <html>Bad Gateway</html>",
  );
  t.true(registryAnswer({ status: 500, body: Buffer.from("x".repeat(1000)) }).length < 220);
});

function node(
  name: string,
  arch: string,
  extra: Partial<V1Node["spec"]> = {},
  labels: Record<string, string> = {},
): V1Node {
  return {
    metadata: { name, labels: { "kubernetes.io/os": "linux", "kubernetes.io/arch": arch, ...labels } },
    spec: extra,
  };
}

const nodes = [
  node("x1", "amd64"),
  node("pi-1", "arm64", {}, { pool: "pi" }),
  node("pi-2", "arm64", {}, { pool: "pi" }),
  node("cp", "amd64", { taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }] }),
  node("cordoned", "s390x", { unschedulable: true }),
  node("booting", "riscv64", { taints: [{ key: "node.kubernetes.io/not-ready", effect: "NoSchedule" }] }),
];

test("canLand: nodeSelector, required affinity, taints and tolerations, cordons, nodeName", (t) => {
  const names = (spec: V1PodSpec | undefined) => nodes.filter((n) => canLand(n, spec)).map((n) => n.metadata!.name);
  const base = { containers: [] } as V1PodSpec;
  t.deepEqual(names(base), ["x1", "pi-1", "pi-2", "booting"], "tainted control plane and cordoned node excluded");
  t.deepEqual(names({ ...base, nodeSelector: { "kubernetes.io/arch": "arm64" } }), ["pi-1", "pi-2"]);
  t.deepEqual(
    names({
      ...base,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: "pool", operator: "In", values: ["pi"] }] },
              { matchFields: [{ key: "metadata.name", operator: "In", values: ["x1"] }] },
            ],
          },
        },
      },
    }),
    ["x1", "pi-1", "pi-2"],
  );
  t.deepEqual(
    names({
      ...base,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: "kubernetes.io/arch", operator: "NotIn", values: ["arm64"] }] },
            ],
          },
        },
      },
    }),
    ["x1", "booting"],
  );
  t.deepEqual(names({ ...base, tolerations: [{ operator: "Exists" }] }), ["x1", "pi-1", "pi-2", "cp", "booting"]);
  t.deepEqual(
    names({
      ...base,
      tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
    }),
    ["x1", "pi-1", "pi-2", "cp", "booting"],
  );
  t.deepEqual(names({ ...base, nodeName: "cordoned" }), ["cordoned"]);
});

test("checkPlatforms + mismatchMessage: the issue's example", (t) => {
  const spec = { containers: [], nodeSelector: { pool: "pi" } } as V1PodSpec;
  const amd64 = [{ os: "linux", architecture: "amd64" }];
  const v = checkPlatforms(amd64, nodes, spec);
  t.deepEqual([...v.missing.entries()], [["linux/arm64", ["pi-1", "pi-2"]]]);
  t.is(
    mismatchMessage("example.com/app:2", amd64, v.missing),
    "example.com/app:2 has linux/amd64 only; the pods can land on linux/arm64 nodes pi-1, pi-2",
  );
  const both = [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ];
  t.is(checkPlatforms(both, nodes.slice(0, 3), { containers: [] }).missing.size, 0, "variants do not matter for nodes");
  t.is(
    mismatchMessage("a:1", both, new Map([["linux/s390x", ["z"]]])),
    "a:1 has linux/amd64, linux/arm64/v8; the pods can land on linux/s390x node z",
  );
});

test("isPrivateAddress: loopback, RFC 1918, link-local, ULA; not public addresses or names", (t) => {
  for (const h of [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "[::1]",
    "fd00::1",
    "fe80::1",
  ]) {
    t.true(isPrivateAddress(h), h);
  }
  for (const h of ["8.8.8.8", "172.32.0.1", "ghcr.io", "localhost", "2001:db8::1"]) t.false(isPrivateAddress(h), h);
});
