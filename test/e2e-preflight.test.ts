// Image pre-flight end to end: the bundled action (pin-digest) → orchestrator → the agent bundle as
// a real process, which resolves the image against the test bed's registry (htpasswd + TLS with
// the test bed's CA) using the workload's imagePullSecrets, and pins the digest.
import test from "ava";
import { runBundledAction } from "./support/action.js";
import { githubEnv, node24, waitConnected } from "./support/e2e.js";
import { createNamespace, deleteNamespace, deploymentImages, kube, waitFor } from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type PushedImage, pushTestImage, testRegistry } from "./support/registry.js";
import { type Stack, startStack } from "./support/stack.js";

const registry = testRegistry();
let stack: Stack;
let namespace: string;
let key: string;
let agentToken: string;
let image: PushedImage;
const repo = `e2e-preflight-${Date.now().toString(36)}/web`;

test.before(async () => {
  agentBundleCheck();
  image = await pushTestImage(repo, "2");
  stack = await startStack();
  namespace = await createNamespace("e2e-preflight");
  const auth = Buffer.from(`${registry.user}:${registry.password}`).toString("base64");
  await kube().core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: "regcred" },
      type: "kubernetes.io/dockerconfigjson",
      data: {
        ".dockerconfigjson": Buffer.from(JSON.stringify({ auths: { [registry.host]: { auth } } })).toString("base64"),
      },
    },
  });
  await kube().apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name: "web" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            imagePullSecrets: [{ name: "regcred" }],
            containers: [{ name: "web", image: `${registry.host}/${repo}:1` }],
          },
        },
      },
    },
  });
  const agent = await stack.createAgent("e2e-preflight");
  agentToken = agent.token;
  key = (await stack.createKey(agent.id, { namespaces: [namespace] })).key;
  const [a] = stack.replicas;
  if (!a) throw new Error("no replica");
  stack.startAgent({
    token: agent.token,
    servers: [a.grpcAddress],
    env: { K8SDEPLOY_REGISTRY_CA_FILE: registry.caFile },
  });
  await waitConnected(stack, agent.id);
  await waitFor(async () => {
    const d = await kube().apps.readNamespacedDeployment({ name: "web", namespace });
    return d.status?.availableReplicas === 1;
  }, "web to be available");
});

test.after.always(async () => {
  await stack?.stop();
  if (namespace) await deleteNamespace(namespace);
});

function deployWithAction(inputs: Record<string, string>, run: string) {
  const a = stack.replicas[0];
  if (!a) throw new Error("no replica");
  return runBundledAction({
    inputs: { server: `http://${a.grpcAddress}`, key, namespace, deployment: "web", timeout: "60", ...inputs },
    env: githubEnv(run),
    node: node24(),
    timeoutMs: 150_000,
  });
}

test.serial(
  "pin-digest: the workload runs repo:tag@sha256:…, and the output and job summary show tag and digest",
  async (t) => {
    const result = await deployWithAction({ image: image.tagged, "pin-digest": "true" }, "3001");
    t.is(result.code, 0, result.stdout);
    t.is(result.outputs.status, "succeeded");
    t.is(result.outputs.digest, image.digest);
    t.deepEqual(await deploymentImages(namespace, "web"), { web: `${image.tagged}@${image.digest}` });
    t.true(result.summary.includes(image.tagged), "the summary shows the tag");
    t.true(result.summary.includes(image.digest), "the summary shows the digest");
    t.regex(result.summary, /pinned/);
    t.regex(
      result.summary,
      /image pre-flight: .* is sha256:[0-9a-f]{64} \(linux\/amd64, linux\/arm64; resolved with secret/,
    );
  },
);

test.serial("a tag that does not exist fails in seconds with IMAGE_NOT_FOUND and changes nothing", async (t) => {
  const before = await deploymentImages(namespace, "web");
  const started = Date.now();
  const result = await deployWithAction({ image: `${registry.host}/${repo}:does-not-exist` }, "3002");
  const ms = Date.now() - started;
  t.is(result.code, 1);
  t.is(result.outputs.status, "failed");
  t.regex(
    result.outputs.message ?? "",
    /not found: registry 127\.0\.0\.1:\d+ has no tag "does-not-exist" in repository/,
  );
  t.regex(result.summary, /IMAGE_NOT_FOUND/);
  t.true(ms < 20_000, `took ${ms} ms (action start-up included)`);
  t.deepEqual(await deploymentImages(namespace, "web"), before);
});

test.serial("no secret appears in any log, event, output or summary", async (t) => {
  const result = await deployWithAction({ image: image.tagged }, "3003");
  t.is(result.outputs.status, "succeeded", result.stdout);
  const stdout = result.stdout
    .split("\n")
    .filter((l) => !l.startsWith("::add-mask::"))
    .join("\n");
  const everything = `${stack.allOutput()}\n${stdout}\n${result.stderr}\n${result.summary}`;
  const basic = Buffer.from(`${registry.user}:${registry.password}`).toString("base64");
  t.false(everything.includes(registry.password), "the registry password appears");
  t.false(everything.includes(basic), "the registry's basic credentials appear");
  t.false(everything.includes(agentToken));
  t.false(everything.includes(key));
});
