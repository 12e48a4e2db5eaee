// GitHub OIDC trust end to end on real processes. GitHub cannot be reached here, so a STAND-IN
// issuer (orchestrator/src/trust/testing/stand-in-github-issuer.ts: a real HTTP server on
// loopback) serves the JWKS and the runner's ACTIONS_ID_TOKEN_REQUEST_URL endpoint. Everything
// else is real: the bundled action runs @actions/core's getIDToken on Node 24, the orchestrator
// verifies with jose against the stand-in's JWKS, Redis holds queues and one-time markers, and the
// agent bundle changes the image on the test bed's kube-apiserver.
import * as grpc from "@grpc/grpc-js";
import { GetDeploymentResponse } from "@k8sdeploy/proto/node/k8sdeploy/v1/deploy.js";
import test from "ava";
import { createClient } from "redis";
import { StandInGithubIssuer } from "../orchestrator/src/trust/testing/stand-in-github-issuer.js";
import { runBundledAction } from "./support/action.js";
import { adminClient, deployClient, deployRequest, isGrpcError } from "./support/clients.js";
import { githubEnv, node24, waitConnected } from "./support/e2e.js";
import { createDeployment, createNamespace, deleteNamespace, deploymentImages } from "./support/kube.js";
import { agentBundleCheck } from "./support/preflight.js";
import { type Stack, startStack } from "./support/stack.js";

let issuer: StandInGithubIssuer;
let other: StandInGithubIssuer;
let stack: Stack;
let namespace: string;
let agentId: string;
/** An agent that never connects: whatever is queued for it stays in its stream. */
let offlineId: string;
let offlinePolicy: string;
const outputs: string[] = [];

test.before(async () => {
  agentBundleCheck();
  issuer = await StandInGithubIssuer.start();
  other = await StandInGithubIssuer.start();
  stack = await startStack({ env: { K8SDEPLOY_OIDC_ISSUER: issuer.url } });
  namespace = await createNamespace("e2e-oidc");
  const agent = await stack.createAgent("e2e-oidc");
  agentId = agent.id;
  offlineId = (await stack.createAgent("e2e-oidc-offline")).id;
  stack.startAgent({ token: agent.token, servers: [stack.replicas[0]?.grpcAddress ?? ""] });
  await waitConnected(stack, agent.id);
  const policy = JSON.parse(
    await stack.cli([
      "trust",
      "create",
      "--agent",
      offlineId,
      "--repository",
      "acme/offline",
      "--ref",
      "refs/heads/main",
      "--namespace",
      "shop",
      "--output",
      "json",
    ]),
  ) as { id: string };
  offlinePolicy = policy.id;
});

test.after.always(async () => {
  await stack?.stop();
  await issuer?.stop();
  await other?.stop();
  if (namespace) await deleteNamespace(namespace);
});

const grpcAddress = () => stack.replicas[0]?.grpcAddress ?? "";

function action(inputs: Record<string, string>, run: string, env: Record<string, string> = {}) {
  return runBundledAction({
    inputs: { server: `http://${grpcAddress()}`, namespace, timeout: "60", ...inputs },
    env: { ...githubEnv(run), ...issuer.runnerEnv(), ...env },
    node: node24(),
    timeoutMs: 150_000,
  }).then((result) => {
    outputs.push(result.stdout, result.stderr, result.summary);
    return result;
  });
}

async function offlineQueueLength(): Promise<number> {
  const redis = createClient({ url: stack.redis.url });
  redis.on("error", () => {});
  await redis.connect();
  try {
    return await redis.xLen(`k8sd:{${offlineId}}:queue`);
  } finally {
    redis.destroy();
  }
}

async function offlineDeployments(): Promise<number> {
  const admin = adminClient(grpcAddress(), stack.adminToken);
  try {
    return (await admin.listDeployments({ agentId: offlineId })).deployments.length;
  } finally {
    admin.close();
  }
}

test.serial(
  "the bundled action deploys with the job's OIDC token and no key, through a real agent; the audit trail names the policy and claims",
  async (t) => {
    const policy = JSON.parse(
      await stack.cli([
        "trust",
        "create",
        "--agent",
        agentId,
        "--repository",
        "acme/web",
        "--ref",
        "refs/heads/main",
        "--namespace",
        namespace,
        "--json",
      ]),
    ) as { id: string; issuer: string; audience: string };
    t.regex(policy.id, /^tp_/);
    t.is(policy.issuer, issuer.url);
    t.is(policy.audience, "k8sdeploy");
    await createDeployment(namespace, "web", [{ name: "web", image: "registry.example/acme/web:1.0.0" }]);
    const before = issuer.issued.length;

    const result = await action({ deployment: "web", image: "registry.example/acme/web:2.0.0" }, "2001");
    t.is(result.code, 0, result.stdout + result.stderr);
    t.is(result.outputs.status, "succeeded");
    t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:2.0.0" });
    t.regex(result.stdout, /Authenticating with this job's GitHub OIDC token \(audience "k8sdeploy"\), no deploy key/);
    const tokens = issuer.issued.slice(before);
    t.true(tokens.length >= 2, "a fresh token for Deploy and for the watch");
    for (const token of tokens) t.true(result.stdout.includes(`::add-mask::${token}`), "every token is masked");
    t.regex(result.summary, new RegExp(`GitHub OIDC, trust policy <code>${policy.id}</code>`));
    t.regex(result.summary, /acme\/web@refs\/heads\/main/);

    const id = result.outputs["deployment-id"] ?? "";
    const got = GetDeploymentResponse.fromJSON(
      JSON.parse(await stack.cli(["deployments", "get", id, "--output", "json"])),
    );
    t.is(got.deployment?.trustPolicyId, policy.id);
    t.is(got.deployment?.keyId, "");
    t.is(got.deployment?.agentId, agentId);
    t.is(got.deployment?.oidcClaims?.repository, "acme/web");
    t.is(got.deployment?.oidcClaims?.ref, "refs/heads/main");
    t.is(got.deployment?.oidcClaims?.workflowRef, "acme/web/.github/workflows/deploy.yml@refs/heads/main");
    t.is(got.deployment?.oidcClaims?.issuer, issuer.url);
    t.regex(got.deployment?.oidcClaims?.tokenId ?? "", /^[0-9a-f-]{36}$/);
    const human = await stack.cli(["deployments", "get", id]);
    t.regex(
      human,
      new RegExp(
        `^REQUESTED BY +GitHub OIDC via trust policy ${policy.id} \\(acme/web@refs/heads/main, by octocat\\)$`,
        "m",
      ),
    );
    const accepted = stack.replicas[0]?.logEntries().find((e) => e.msg === "deploy accepted" && e.deploymentId === id);
    t.is(accepted?.trustPolicyId, policy.id);
    const listed = JSON.parse(await stack.cli(["trust", "list", "--agent", agentId, "--json"])) as {
      lastUsedAt?: string;
    }[];
    t.truthy(listed[0]?.lastUsedAt, "last used is recorded");

    // The CLI rolls it back through the same agent and follows it to the end.
    const rollback = await stack.cli(["deployments", "rollback", id, "--watch"]);
    t.regex(rollback, /^dep_\w+ queued: rollback of dep_/m);
    t.regex(rollback, /succeeded/);
    t.deepEqual(await deploymentImages(namespace, "web"), { web: "registry.example/acme/web:1.0.0" });

    const everything = `${stack.allOutput()}\n${outputs.join("\n")}`
      .split("\n")
      .filter((l) => !l.startsWith("::add-mask::"))
      .join("\n");
    for (const token of issuer.issued) t.false(everything.includes(token), "an ID token appears in a log");
    t.false(everything.includes(issuer.requestToken), "the runner's request token appears in a log");
  },
);

test.serial(
  "the action is refused for a ref the policy does not allow, with the reason, and nothing is queued",
  async (t) => {
    await stack.cli([
      "trust",
      "create",
      "--agent",
      offlineId,
      "--repository",
      "acme/other",
      "--ref",
      "refs/heads/main",
    ]);
    issuer.claims = { ...issuer.claims, repository: "acme/other", ref: "refs/heads/feature" };
    try {
      const result = await action(
        { namespace: "shop", deployment: "web", image: "registry.example/acme/web:3" },
        "2002",
      );
      t.is(result.code, 1);
      t.regex(
        result.stdout,
        /::error::UNAUTHENTICATED: no trust policy accepts this OIDC token \(repository acme\/other, ref refs\/heads\/feature.*requires ref "refs\/heads\/main".*k8sdeploy trust list/,
      );
    } finally {
      issuer.claims = { ...issuer.claims, repository: "acme/web", ref: "refs/heads/main" };
    }
    t.is(await offlineQueueLength(), 0);
    t.is(await offlineDeployments(), 0);
  },
);

test.serial(
  "refused, nothing queued: wrong repository, ref, audience, expired, replayed, unknown key id, alg none, HS256 with the public key, another issuer",
  async (t) => {
    const claims = { repository: "acme/offline", ref: "refs/heads/main" };
    const now = Math.floor(Date.now() / 1000);
    const valid = await issuer.mint("k8sdeploy", claims);
    const cases: [string, string, RegExp][] = [
      [
        "wrong repository",
        await issuer.mint("k8sdeploy", { ...claims, repository: "evil/offline" }),
        /no trust policy for repository evil\/offline/,
      ],
      [
        "wrong ref",
        await issuer.mint("k8sdeploy", { ...claims, ref: "refs/heads/x" }),
        /requires ref "refs\/heads\/main"/,
      ],
      ["wrong audience", await issuer.mint("sts.amazonaws.com", claims), /requires audience "k8sdeploy"/],
      [
        "expired",
        await issuer.mint("k8sdeploy", { ...claims, iat: now - 900, nbf: now - 900, exp: now - 300 }),
        /expired/,
      ],
      ["unknown key id", await issuer.mint("k8sdeploy", claims, { key: "unpublished" }), /unknown key id/],
      ["alg none", await issuer.mintUnsigned(), /algorithm "none" is not accepted/],
      ["HS256 signed with the public key", await issuer.mintHs256WithPublicKey(), /algorithm "HS256" is not accepted/],
      ["another issuer", await other.mint("k8sdeploy", claims), /trusts only/],
    ];
    const client = deployClient(grpcAddress(), valid);
    const first = await client.deploy(
      deployRequest({ namespace: "shop", workload: "web", image: "registry.example/x:1" }),
    );
    client.close();
    t.is(first.deployment?.trustPolicyId, offlinePolicy);
    t.is(await offlineQueueLength(), 1);
    t.is(await offlineDeployments(), 1);
    cases.push(["replayed", valid, /was already used/]);

    for (const [name, token, pattern] of cases) {
      const c = deployClient(grpcAddress(), token);
      const err = await t.throwsAsync(
        c.deploy(deployRequest({ namespace: "shop", workload: "web", image: "registry.example/x:2" })),
        undefined,
        name,
      );
      c.close();
      t.true(isGrpcError(err), name);
      if (isGrpcError(err)) {
        t.is(err.code, grpc.status.UNAUTHENTICATED, `${name}: ${err.details}`);
        t.regex(err.details, pattern, name);
        t.false(err.details.includes(token), `${name}: the token is echoed`);
      }
    }
    // A valid token outside the policy's namespaces: PERMISSION_DENIED.
    const scoped = deployClient(grpcAddress(), await issuer.mint("k8sdeploy", claims));
    const denied = await t.throwsAsync(scoped.deploy(deployRequest({ namespace: "prod", workload: "web" })));
    scoped.close();
    t.true(isGrpcError(denied) && denied.code === grpc.status.PERMISSION_DENIED, String(denied));
    t.regex(String(denied), /namespace "prod" is not allowed for trust policy tp_/);

    t.is(await offlineQueueLength(), 1, "nothing more was queued");
    t.is(await offlineDeployments(), 1);

    // The one accepted deployment is readable with a new token of the policy, and not by another repository's.
    const reader = deployClient(grpcAddress(), await issuer.mint("k8sdeploy", claims));
    const read = await reader.get(first.deployment?.id ?? "");
    reader.close();
    t.is(read.deployment?.id, first.deployment?.id);
    const stranger = deployClient(grpcAddress(), await issuer.mint("k8sdeploy"));
    const hidden = await t.throwsAsync(stranger.get(first.deployment?.id ?? ""));
    stranger.close();
    t.true(isGrpcError(hidden) && hidden.code === grpc.status.NOT_FOUND, String(hidden));

    // Failures are counted as OIDC authentication failures, and no token reached a log.
    const metrics = await (await fetch(`http://${stack.replicas[0]?.httpAddress}/metrics`)).text();
    t.regex(metrics, /k8sdeploy_auth_failures_total\{kind="oidc"\} \d+/);
    const logs = stack.allOutput();
    for (const [name, token] of cases) t.false(logs.includes(token), `${name}: the token appears in a log`);
    t.true(
      stack.replicas[0]?.logEntries().some((e) => e.msg === "authentication failed" && e.credential === "oidc") ??
        false,
    );
  },
);

test.serial("trust delete: the policy's tokens stop working at once", async (t) => {
  const claims = { repository: "acme/offline", ref: "refs/heads/main" };
  await stack.cli(["trust", "delete", offlinePolicy]);
  const c = deployClient(grpcAddress(), await issuer.mint("k8sdeploy", claims));
  const err = await t.throwsAsync(c.deploy(deployRequest({ namespace: "shop", workload: "web" })));
  c.close();
  t.true(isGrpcError(err) && err.code === grpc.status.UNAUTHENTICATED, String(err));
  const all = JSON.parse(await stack.cli(["trust", "list", "--include-deleted", "--json"])) as {
    id: string;
    deletedAt?: string;
  }[];
  t.truthy(all.find((p) => p.id === offlinePolicy)?.deletedAt);
  const active = JSON.parse(await stack.cli(["trust", "list", "--json"])) as { id: string }[];
  t.false(active.some((p) => p.id === offlinePolicy));
});
