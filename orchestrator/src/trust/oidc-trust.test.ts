// The OIDC verifier and trust-policy matching against a stand-in GitHub issuer (a real HTTP server
// on loopback: GitHub cannot be reached here) and the memory store.
import test from "ava";
import { Code, RpcError } from "../rpc/rpc-error.js";
import { MemoryStore } from "../store/memory-store.js";
import type { TrustPolicyRecord } from "../store/store.js";
import { OidcTrust } from "./oidc-trust.js";
import { looksLikeJwt, OidcVerifier } from "./oidc-verifier.js";
import { patternMatches } from "./policy-match.js";
import { StandInGithubIssuer } from "./testing/stand-in-github-issuer.js";

let issuer: StandInGithubIssuer;
let other: StandInGithubIssuer;

test.before(async () => {
  issuer = await StandInGithubIssuer.start();
  other = await StandInGithubIssuer.start();
});

test.after.always(async () => {
  await issuer?.stop();
  await other?.stop();
});

function policy(extra: Partial<TrustPolicyRecord> = {}): TrustPolicyRecord {
  return {
    id: `tp_${Math.random().toString(36).slice(2, 10)}`,
    name: "web",
    agentId: "agt_one",
    issuer: issuer.url,
    audience: "k8sdeploy",
    repository: "acme/web",
    repositoryId: "",
    ref: "",
    environment: "",
    workflowRef: "",
    namespaces: [],
    workloads: [],
    createdAt: new Date(),
    ...extra,
  };
}

async function setup(policies: Partial<TrustPolicyRecord>[] = [{}], verifierOptions: { jwksCooldownMs?: number } = {}) {
  const store = new MemoryStore();
  await store.agents.createAgent({ id: "agt_one", name: "one", createdAt: new Date(), tokens: [] });
  const created = policies.map((p) => policy(p));
  for (const p of created) await store.trust.createPolicy(p);
  const trust = new OidcTrust(store, new OidcVerifier({ issuer: issuer.url, ...verifierOptions }));
  return { store, trust, policies: created };
}

async function refused(
  t: import("ava").ExecutionContext,
  promise: Promise<unknown>,
  pattern: RegExp,
  code = Code.UNAUTHENTICATED,
) {
  const err = await t.throwsAsync(promise);
  t.true(err instanceof RpcError, String(err));
  t.is((err as RpcError).code, code, err?.message);
  t.regex(err?.message ?? "", pattern);
  return err;
}

test.serial(
  "a valid token is accepted once, with its claims and the matching policy; a replay is refused",
  async (t) => {
    const { trust, policies } = await setup([{ namespaces: ["shop"] }, { repository: "acme/other" }]);
    const token = await issuer.mint();
    const identity = await trust.authenticate(token);
    t.deepEqual(
      identity.policies.map((p) => p.id),
      [policies[0]?.id],
    );
    t.is(identity.claims.repository, "acme/web");
    t.is(identity.claims.ref, "refs/heads/main");
    t.is(identity.claims.issuer, issuer.url);
    t.is(identity.claims.workflowRef, "acme/web/.github/workflows/deploy.yml@refs/heads/main");
    t.regex(identity.claims.tokenId, /^[0-9a-f-]{36}$/);
    t.true(identity.claims.issuedAt instanceof Date);
    const replay = await refused(t, trust.authenticate(token), /was already used/);
    t.false(replay?.message.includes(token), "the token is not echoed");
  },
);

test.serial(
  "claim conditions: repository (case-insensitive), repository_id, ref patterns, environment, workflow_ref",
  async (t) => {
    const { trust } = await setup([
      { repository: "ACME/Web", repositoryId: "424242", ref: "refs/tags/v*", environment: "production" },
    ]);
    issuer.claims = { ...issuer.claims, ref: "refs/tags/v1.2.0", environment: "production" };
    try {
      t.is((await trust.authenticate(await issuer.mint())).policies.length, 1);
      issuer.claims = { ...issuer.claims, ref: "refs/heads/main" };
      await refused(
        t,
        trust.authenticate(await issuer.mint()),
        /requires ref "refs\/tags\/v\*", the token has "refs\/heads\/main"/,
      );
      issuer.claims = { ...issuer.claims, ref: "refs/tags/v2", environment: "staging" };
      await refused(
        t,
        trust.authenticate(await issuer.mint()),
        /requires environment "production", the token has "staging"/,
      );
      issuer.claims = { ...issuer.claims, environment: "production", repository_id: "1" };
      await refused(t, trust.authenticate(await issuer.mint()), /requires repository_id 424242/);
    } finally {
      issuer.claims = { ...issuer.claims, ref: "refs/heads/main", repository_id: "424242", environment: undefined };
    }
    const wf = await setup([{ workflowRef: "acme/web/.github/workflows/deploy.yml@*" }]);
    t.is((await wf.trust.authenticate(await issuer.mint())).policies.length, 1);
    await refused(
      t,
      wf.trust.authenticate(
        await issuer.mint("k8sdeploy", { workflow_ref: "acme/web/.github/workflows/evil.yml@refs/heads/x" }),
      ),
      /requires workflow_ref/,
    );
    t.true(patternMatches("refs/heads/main", "refs/heads/main"));
    t.false(patternMatches("refs/heads/main", "refs/heads/main2"));
    t.true(patternMatches("refs/heads/release/*", "refs/heads/release/1"));
  },
);

test.serial(
  "refused: wrong repository, wrong audience, expired, not yet valid, too old, from another issuer",
  async (t) => {
    const { trust } = await setup([{}]);
    await refused(
      t,
      trust.authenticate(await issuer.mint("k8sdeploy", { repository: "evil/web" })),
      /no trust policy for repository evil\/web/,
    );
    await refused(
      t,
      trust.authenticate(await issuer.mint("sts.amazonaws.com")),
      /requires audience "k8sdeploy", the token has "sts.amazonaws.com"/,
    );
    const now = Math.floor(Date.now() / 1000);
    await refused(
      t,
      trust.authenticate(await issuer.mint("k8sdeploy", { iat: now - 600, nbf: now - 600, exp: now - 120 })),
      /expired/,
    );
    await refused(t, trust.authenticate(await issuer.mint("k8sdeploy", { nbf: now + 600 })), /nbf/);
    await refused(t, trust.authenticate(await issuer.mint("k8sdeploy", { iat: now - 7200, exp: now + 60 })), /too old/);
    await refused(t, trust.authenticate(await issuer.mint("k8sdeploy", { jti: undefined })), /jti/);
    const foreign = await other.mint();
    await refused(
      t,
      trust.authenticate(foreign),
      new RegExp(`from issuer "${other.url}": this orchestrator trusts only ${issuer.url}`),
    );
    // A token claiming our issuer but signed by the other issuer's key: the signature decides.
    await refused(
      t,
      trust.authenticate(await other.mint("k8sdeploy", { iss: issuer.url })),
      /unknown key id|signature/,
    );
  },
);

test.serial("refused: alg none, HS256 signed with the public key, an unknown key id, garbage", async (t) => {
  const { trust, store } = await setup([{}]);
  await refused(t, trust.authenticate(await issuer.mintUnsigned()), /algorithm "none" is not accepted/);
  await refused(t, trust.authenticate(await issuer.mintHs256WithPublicKey()), /algorithm "HS256" is not accepted/);
  await refused(t, trust.authenticate(await issuer.mint("k8sdeploy", {}, { key: "unpublished" })), /unknown key id/);
  // A real token whose signature was tampered with.
  const [h, p, s] = (await issuer.mint()).split(".");
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p ?? "", "base64url").toString()), repository: "acme/web", ref: "refs/heads/evil" })).toString("base64url")}.${s}`;
  await refused(t, trust.authenticate(tampered), /signature does not verify/);
  await refused(t, trust.authenticate("a.b.c"), /not a well-formed JWT/);
  t.false(looksLikeJwt("kdk_key_abc"));
  t.true(looksLikeJwt(await issuer.mint()));
  // None of these consumed a marker: a valid token still works.
  t.is((await trust.authenticate(await issuer.mint())).policies.length, 1);
  t.truthy(store);
});

test.serial(
  "key rotation: a token signed with a new key is accepted after one JWKS refetch; unknown kids refetch at most once per cooldown",
  async (t) => {
    const { trust } = await setup([{}], { jwksCooldownMs: 2_000 });
    await trust.authenticate(await issuer.mint());
    const before = issuer.jwksFetches();
    // Minted ahead, so that presenting them takes a few milliseconds, well inside the cooldown.
    const burst = await Promise.all(
      Array.from({ length: 10 }, async () => issuer.mint("k8sdeploy", {}, { key: "unpublished" })),
    );
    await issuer.rotate();
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    t.is((await trust.authenticate(await issuer.mint())).policies.length, 1);
    t.is(issuer.jwksFetches(), before + 1, "one refetch for the new kid");
    // A burst of tokens with unknown kids inside the cooldown: no refetch at all.
    for (const token of burst) await refused(t, trust.authenticate(token), /unknown key id/);
    t.is(issuer.jwksFetches(), before + 1, "the cooldown bounds JWKS fetches");
  },
);

test.serial("a deleted policy, a policy of a revoked agent and an unreachable issuer", async (t) => {
  const { trust, store, policies } = await setup([{}]);
  const id = policies[0]?.id ?? "";
  await store.trust.updatePolicy(id, { deletedAt: new Date() });
  await refused(t, trust.authenticate(await issuer.mint()), /no trust policy for repository acme\/web/);
  await store.trust.updatePolicy(id, { deletedAt: undefined });
  await store.agents.updateAgent("agt_one", { revokedAt: new Date() });
  await refused(
    t,
    trust.authenticate(await issuer.mint()),
    /agent of trust policy .* was revoked/,
    Code.PERMISSION_DENIED,
  );

  const down = new OidcTrust(store, new OidcVerifier({ issuer: "http://127.0.0.1:9", timeoutMs: 1_000 }));
  await refused(
    t,
    down.authenticate(await issuer.mint("k8sdeploy", { iss: "http://127.0.0.1:9" })),
    /cannot read the OIDC discovery document/,
    Code.UNAVAILABLE,
  );
});
